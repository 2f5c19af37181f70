"""Signal names and numbers, without the `signal` module.

`import signal` costs ~4-10 ms at start-up because it builds enums; `_signal` is the C module
underneath it and has the same constants as plain ints. Every container start pays start-up time.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the typed face of the same C module
else:
    import _signal

SIGHUP = _signal.SIGHUP
SIGINT = _signal.SIGINT
SIGQUIT = _signal.SIGQUIT
SIGKILL = _signal.SIGKILL
SIGPIPE = _signal.SIGPIPE
SIGTERM = _signal.SIGTERM
SIGCHLD = _signal.SIGCHLD
SIGCONT = _signal.SIGCONT
SIGSTOP = _signal.SIGSTOP
SIGTSTP = _signal.SIGTSTP
SIGTTIN = _signal.SIGTTIN
SIGTTOU = _signal.SIGTTOU
SIGXFSZ = _signal.SIGXFSZ
SIGRTMIN = _signal.SIGRTMIN
SIGRTMAX = _signal.SIGRTMAX
NSIG = _signal.NSIG

#: Real faults: a Python-level handler would return into the faulting instruction and spin at
#: 100% CPU instead of crashing, so pyinit leaves them at their default, like tini.
FAULTS = frozenset(
    getattr(_signal, n) for n in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL") if hasattr(_signal, n)
)

_NAMES: dict[str, int] = {
    n[3:]: v
    for n, v in vars(_signal).items()
    if n.startswith("SIG") and not n.startswith("SIG_") and isinstance(v, int)
}
_NUMBERS: dict[int, str] = {}
for _name, _num in sorted(_NAMES.items()):
    _NUMBERS.setdefault(_num, _name)
# Aliases that share a number: show the usual name.
for _name in ("IOT", "POLL", "CLD"):
    if _name in _NAMES and _NUMBERS.get(_NAMES[_name]) == _name:
        del _NUMBERS[_NAMES[_name]]
for _name in ("ABRT", "IO", "CHLD"):
    if _name in _NAMES:
        _NUMBERS[_NAMES[_name]] = _name


def parse(text: str) -> int:
    """`TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+3` -> a signal number; ValueError otherwise."""
    word = text.strip().upper()
    if word.startswith("SIG"):
        word = word[3:]
    if word.isdigit():
        number = int(word)
    elif word.startswith(("RTMIN+", "RTMAX-")):
        base, _, offset = word.partition("+" if "+" in word else "-")
        if not offset.isdigit():
            raise ValueError(text)
        number = SIGRTMIN + int(offset) if base == "RTMIN" else SIGRTMAX - int(offset)
    elif word in _NAMES:
        number = _NAMES[word]
    else:
        raise ValueError(text)
    if not 1 <= number < NSIG:
        raise ValueError(text)
    return number


def name(signum: int) -> str:
    """15 -> `SIGTERM`; real-time ones as `SIGRTMIN+N`."""
    if signum in _NUMBERS and not _NUMBERS[signum].startswith("RT"):
        return "SIG" + _NUMBERS[signum]
    if SIGRTMIN <= signum <= SIGRTMAX:
        return f"SIGRTMIN+{signum - SIGRTMIN}"
    return f"signal {signum}"


def catchable() -> list[int]:
    """Every signal a handler can be installed for (all but KILL and STOP, and the 2 glibc
    reserves below SIGRTMIN for threads)."""
    numbers = set(_NUMBERS) | set(range(SIGRTMIN, SIGRTMAX + 1))
    return sorted(n for n in numbers if 0 < n < NSIG and n not in (SIGKILL, SIGSTOP))


def reset_for_exec() -> None:
    """In a forked child, before exec: no wakeup fd, default dispositions, an empty mask.

    spec §3: every task starts clean. Python ignores SIGPIPE and SIGXFSZ at start-up and pyinit
    ignores TTIN/TTOU; a child inheriting that misbehaves (`yes | head` would never end).
    """
    _signal.set_wakeup_fd(-1)
    for signum in catchable():
        try:
            _signal.signal(signum, _signal.SIG_DFL)
        except (OSError, ValueError):  # not settable on this system: nothing to reset
            continue
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def block_all() -> set[int]:
    """Block every signal in this thread; returns the mask before, for `set_mask`."""
    return set(_signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals()))


def set_mask(mask: set[int]) -> None:
    _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)


def pidfd_send(fd: int, signum: int) -> None:
    """Signal the process a pidfd refers to: unlike kill(), it cannot hit a reused pid."""
    _signal.pidfd_send_signal(fd, signum)
