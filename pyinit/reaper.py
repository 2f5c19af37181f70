"""Everything process-global: signal dispositions, the wakeup fd, reaping, the final sweep.

This is the only module that calls `waitpid` or installs signal handlers (design rule 1).

How signals reach the loop. Each catchable signal gets a Python handler that forwards it to the
tasks (forwarding.py says how, and why that is race-free) and records the number;
`set_wakeup_fd` makes the C-level handler also write a byte to a pipe the loop's `epoll`
watches, so a signal always wakes the loop, which then does the rest (logging, the shutdown).
The wakeup fd is set with `warn_on_full_buffer=False`: with the default, a SIGCHLD flood can
deadlock CPython 3.11 inside its own warning path (bpo-30050). A full pipe only drops wakeup
bytes, never the recorded signals, because the Python handler runs regardless.

Why reap with `waitpid(-1, WNOHANG)` until nothing is left: SIGCHLD is a standard signal, so many
deaths can arrive as one, and orphans re-parented to us have no pid we know (tini, catatonit#4).

Not caught: KILL and STOP (cannot be), SEGV/BUS/FPE/ILL (a handler would return into the fault
and spin; they stay default, as in tini), PIPE (pyinit's own writes to a closed stdout must give
EPIPE, not a signal), TTIN/TTOU (ignored, so pyinit never stops when it writes to a terminal
whose foreground it handed to the main command, as tini).
"""

from __future__ import annotations

import os

from pyinit import signals
from pyinit.forwarding import ROUTER

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the typed face of the same C module
    from collections.abc import Mapping
else:
    import _signal

_pending: list[int] = []


def _record(signum: int, frame: object) -> None:
    # Runs in the main thread between bytecodes (for a signal that interrupts epoll_wait: at
    # once, inside the interrupted call, PEP 475), so appending to a list is safe here. The
    # signal is forwarded right here, before the loop sees it: that saves the loop's round trip,
    # half of the forwarding latency (bench/README.md). How that stays race-free with the task
    # table: forwarding.py.
    if signum != signals.SIGCHLD:
        ROUTER.on_signal(signum)
    _pending.append(signum)


def install(stop_signals: frozenset[int], rewrite: Mapping[int, int]) -> int:
    """Route every catchable signal to the loop; return the fd to poll for wake-ups
    (its handler: `drain_wakeup`).

    Signals are forwarded from the handler by `forwarding.ROUTER`, which starts with no
    routes; the loop still sees every signal (to log it and to start the shutdown).
    """
    ROUTER.owner = os.getpid()
    ROUTER.stop_signals = stop_signals
    ROUTER.rewrite = rewrite
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    _signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    for signum in signals.catchable():
        if signum in signals.FAULTS or signum == signals.SIGPIPE:
            continue
        if signum in (signals.SIGTTIN, signals.SIGTTOU):
            _signal.signal(signum, _signal.SIG_IGN)
            continue
        try:
            _signal.signal(signum, _record)
        except (OSError, ValueError):  # a signal this kernel or libc will not let us catch
            continue
    return r


def drain_wakeup(fd: int) -> None:
    """The loop's handler for the wakeup pipe, called when it is readable: empty it. Its bytes
    only wake the loop; what came is in `_pending` (take_signals)."""
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:  # empty: the expected end of the drain
        pass


def take_signals() -> list[int]:
    """The signals received since the last call, oldest first."""
    if not _pending:
        return []
    taken = _pending[:]
    del _pending[: len(taken)]
    return taken


def reap() -> list[tuple[int, int]]:
    """Collect every child that has ended: [(pid, wait status)], known tasks and orphans alike."""
    ended = []
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:  # no children at all
            break
        if pid == 0:  # children exist, none has ended
            break
        ended.append((pid, wait_status))
    return ended


def has_children() -> bool:
    """True while any child (task or adopted orphan) exists, dead or alive, unreaped."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def signal_leftovers(signum: int) -> int:
    """Signal every process left that is not pyinit: the final sweep (spec §6).

    As PID 1, `kill(-1)` reaches every process in the namespace but us. Otherwise every
    descendant, found with psutil (imported only here: it costs ~50 ms). Returns how many.
    """
    if os.getpid() == 1:
        try:
            os.kill(-1, signum)
        except ProcessLookupError:  # nobody left
            return 0
        return 1
    if not has_children():
        return 0
    import psutil

    try:
        found = psutil.Process().children(recursive=True)
    except psutil.Error:
        return 0
    count = 0
    groups = set()
    own_session = os.getsid(0)
    for process in found:
        try:
            if os.getsid(process.pid) != own_session:
                groups.add(os.getpgid(process.pid))
            process.send_signal(signum)
            count += 1
        except (psutil.Error, ProcessLookupError):  # it ended meanwhile
            continue
    # A process that keeps forking gets a new pid faster than the list above is made, but its
    # process group stays: signal the groups too. Only groups of sessions a descendant made
    # (every process in such a session descends from us), never one of pyinit's own session,
    # which may hold the shell that started pyinit.
    for pgid in groups:
        try:
            os.killpg(pgid, signum)
        except OSError:  # gone meanwhile
            continue
    return count


def become_subreaper() -> str | None:
    """Not PID 1: make orphans come to us (spec §6). Returns an error text on failure."""
    from pyinit import procctl

    try:
        procctl.set_child_subreaper()
    except OSError as e:
        return f"cannot become the child subreaper ({e.strerror}): orphans will go to PID 1"
    return None
