"""What a task leaves behind when its main process exits: the processes that are still its.

systemd answers this with a cgroup per service (`KillMode=control-group`); a container init
has no cgroup of its own to give each task, so pyinit reads the process table instead, once,
when a task's main process has exited (docs/leftovers.md):

- Every process pyinit started is the leader of its own session, so the session id is the
  task's mark: whatever a task forks stays in its session unless it calls `setsid()`.
- When the main process dies, its children are re-parented to pyinit (PID 1, or a subreaper).
  So every leftover is a descendant of one of pyinit's children that is not a task: a *root*.
- A root that left the session (a daemon: fork, `setsid`, the parent exits 0) is the task's
  when its environment still says `PYINIT_TASK=<the task>`; when that is unreadable (nginx and
  redis write their process titles over it), when it started after the task's run did and no
  running task claims it by session or by environment.

Everything here is a pure function of a `scan_below()` snapshot, so the rules are tested with fake
process tables (tests/process/test_leftovers.py).
"""

from __future__ import annotations

import os
import time

from pyinit.record import Record

#: /proc/PID/stat counts start times in clock ticks since boot.
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: A start time is known to a tick; a process started in the same tick as the task is its.
SLACK = 2.0 / TICKS
#: How to run well-known daemons in the foreground, for the exit line's advice.
FOREGROUND = {
    "nginx": "nginx -g 'daemon off;'",
    "redis-server": "redis-server --daemonize no",
    "gunicorn": "gunicorn without --daemon",
    "postgres": "postgres -D DATADIR instead of pg_ctl start",
    "sshd": "sshd -D",
    "cron": "cron -f",
    "crond": "crond -f",
    "php-fpm": "php-fpm -F",
    "apache2": "apache2 -DFOREGROUND",
    "httpd": "httpd -DFOREGROUND",
    "memcached": "memcached without -d",
    "haproxy": "haproxy without -D",
    "rsyslogd": "rsyslogd -n",
    "dockerd": "dockerd (it stays in the foreground)",
}


class Proc(Record):
    """One line of the process table, as /proc/PID/stat gives it."""

    __slots__ = ("comm", "pgid", "pid", "ppid", "sid", "start")
    pid: int
    ppid: int
    pgid: int
    sid: int
    start: float  # seconds since boot
    comm: str

    def __init__(self, pid: int, ppid: int, pgid: int, sid: int, start: float, comm: str) -> None:
        self._set(pid=pid, ppid=ppid, pgid=pgid, sid=sid, start=start, comm=comm)


def now() -> float:
    """The clock /proc start times are on (seconds since boot, suspend included)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def parse_stat(data: bytes) -> Proc | None:
    """A Proc from the text of /proc/PID/stat, or None if it is not one."""
    # The name is in parentheses and may itself hold ") ": the fields start after the last.
    open_, close = data.find(b"("), data.rfind(b")")
    if open_ < 0 or close < open_:
        return None
    fields = data[close + 2 :].split()
    try:
        return Proc(
            int(data[:open_]),
            int(fields[1]),
            int(fields[2]),
            int(fields[3]),
            int(fields[19]) / TICKS,
            data[open_ + 1 : close].decode(errors="replace"),
        )
    except (ValueError, IndexError):
        return None


def scan() -> dict[int, Proc]:
    """Every process this pid namespace shows, by pid (zombies included)."""
    table: dict[int, Proc] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: nothing can be found, and nothing is cleaned
        return table
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                proc = parse_stat(f.read())
        except OSError:  # it ended while we looked
            continue
        if proc is not None:
            table[proc.pid] = proc
    return table


def read_proc(pid: int) -> Proc | None:
    """One process's line of the table; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return parse_stat(f.read())
    except OSError:
        return None


def scan_below(me: int) -> dict[int, Proc]:
    """pyinit's descendants, by pid: all `find` looks at. Walks the kernel's children lists
    (/proc/PID/task/TID/children) from `me` down, reading the stat of those processes only;
    where the kernel has no such lists (CONFIG_PROC_CHILDREN off), every process (`scan`).

    On a host's PID namespace with hundreds of processes this is the difference between a few
    reads and hundreds at every task exit (docs/leftovers.md, "Cost").
    """
    table: dict[int, Proc] = {}
    todo = [me]
    while todo:
        pid = todo.pop()
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:  # it ended while we looked
            continue
        for tid in threads:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    words = f.read().split()
            except FileNotFoundError:
                if pid == me:
                    return scan()  # no children lists in this kernel
                continue
            except OSError:
                continue
            for word in words:
                proc = read_proc(int(word))
                if proc is not None and proc.pid not in table:
                    table[proc.pid] = proc
                    todo.append(proc.pid)
    return table


def task_mark(pid: int) -> str | None:
    """The PYINIT_TASK a process was started with; None when that cannot be read."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(b"PYINIT_TASK="):
            return entry[12:].decode(errors="surrogateescape")
    return None


def find(
    table: dict[int, Proc],
    me: int,
    task: str,
    session: int,
    started: float,
    claimed: dict[int, str],
    mark: object = task_mark,
) -> list[Proc]:
    """The processes the task `task` left: its session's, and the daemons it started.

    `session` is the session id its run had (its main process's pid); `started` when that run
    began (`now()`); `claimed` maps the session ids of the running tasks to their names.
    `mark(pid)` reads a process's PYINIT_TASK (a parameter for the tests).
    """
    tasks_pids = set(claimed)
    roots: list[Proc] = []
    for proc in table.values():
        if proc.ppid != me or proc.pid in tasks_pids:
            continue
        if session in (proc.sid, proc.pgid):
            roots.append(proc)
            continue
        if proc.sid in claimed or proc.pgid in claimed:
            continue  # a running task's
        owner = mark(proc.pid)  # type: ignore[operator]
        if owner is not None:
            if owner == task:
                roots.append(proc)
        elif proc.start + SLACK >= started:
            roots.append(proc)
    return _with_descendants(table, roots)


def _with_descendants(table: dict[int, Proc], roots: list[Proc]) -> list[Proc]:
    children: dict[int, list[Proc]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    todo = list(roots)
    while todo:
        proc = todo.pop()
        found.append(proc)
        todo.extend(children.get(proc.pid, ()))
    return sorted(found, key=lambda p: p.pid)


def daemonized(code: int, found: list[Proc], me: int) -> bool:
    """The task went to the background: its main process exited 0 and left a process that is
    now pyinit's child (fork, exit; `setsid` too, usually).

    A daemon's child is not asked whether it has left the session yet: nginx forks, the parent
    exits, and only then does the child call `setsid()`, so a look in between sees it still in
    the task's session. An exit 0 that leaves a process running is going to the background
    either way; workers left by a crash come with a status that is not 0.
    """
    return code == 0 and any(p.ppid == me for p in found)


def main_process(found: list[Proc], me: int) -> Proc | None:
    """A forking task's main process: the oldest of the leftovers re-parented to pyinit."""
    roots = [p for p in found if p.ppid == me]
    return min(roots, key=lambda p: (p.start, p.pid)) if roots else None


def describe(found: list[Proc]) -> str:
    """`2 processes (nginx)`, `1 process (sleep)`: how an exit line names the leftovers."""
    names = ", ".join(dict.fromkeys(p.comm for p in found))
    return f"{len(found)} process{'es' if len(found) != 1 else ''} ({names})"


def advice(found: list[Proc], name: str) -> str:
    """What to do about a daemonizing task."""
    known = next((FOREGROUND[p.comm] for p in found if p.comm in FOREGROUND), "")
    how = f" ({known})" if known else ""
    return (
        f'it daemonized itself; run it in the foreground{how} or set type = "forking" '
        f"in [task.{name}]"
    )


def read_pid_file(path: str) -> int | None:
    """The pid a daemon wrote to its pid file, or None if there is no valid one."""
    try:
        with open(path, "rb") as f:
            text = f.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None
