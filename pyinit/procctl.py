"""The three prctl(2) calls pyinit needs: child subreaper, process name, parent-death signal.

python-prctl is used when installed (the `pyinit-pid1[prctl]` extra). It is optional because it is
GPL-3.0-or-later and ships source only (gcc and libcap-dev to build), which a slim image lacks;
without it, a call into libc through `_ctypes` (the C module under ctypes) does the same three
things. `BACKEND` says which one is live.

Only python-prctl's C module `_prctl` is loaded, not its `prctl` wrapper: the wrapper generates a
function for every option at import, and costs about 1 ms more than the C module alone (0.5 ms);
the `ctypes` package costs about 2.5 ms, `_ctypes` alone about 0.7 ms (docs/startup.md). None
of it is loaded as PID 1, which needs no prctl, and the name is set through /proc/self/comm
first (cli.py).
"""

from __future__ import annotations

# prctl(2) option numbers, from <linux/prctl.h>.
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_GET_NAME = 16
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

try:
    import _prctl  # python-prctl's C module: prctl(option[, arg]) -> int, OSError on failure
except ImportError:
    _prctl = None

BACKEND = "python-prctl" if _prctl is not None else "ctypes"


def _libc_prctl(option: int, arg2: int = 0) -> int:
    """prctl(option, arg2, 0, 0, 0) in libc; raises OSError like the C call fails."""
    import os

    result: int = _libc().prctl(option, arg2, 0, 0, 0)
    if result < 0:
        err = _libc().get_errno()
        raise OSError(err, os.strerror(err))
    return result


class _Libc:
    """libc's prctl through `_ctypes`, the C module under ctypes, used directly: the `ctypes`
    package costs about 1.8 ms more to import (docs/startup.md), for the three C types that
    ctypes/__init__.py defines the same way (`c_int`, `c_ulong`, `c_char`)."""

    def __init__(self) -> None:
        import _ctypes

        class Int(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "i"

        class ULong(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "L"

        class Char(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "c"

        class Program:  # what a function is looked up in: the handle of the program itself
            _handle = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)  # type: ignore[arg-type]

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = Int

        self.prctl = Function(("prctl", Program()))  # type: ignore[arg-type]
        self.prctl.argtypes = (Int, ULong, ULong, ULong, ULong)
        self.get_errno = _ctypes.get_errno
        self.addressof = _ctypes.addressof
        self.Int, self.Char = Int, Char


_LIBC: list[_Libc] = []


def _libc() -> _Libc:
    if not _LIBC:
        _LIBC.append(_Libc())
    return _LIBC[0]


def set_child_subreaper() -> None:
    """Make orphaned descendants come to us instead of the real PID 1 (Linux >= 3.4)."""
    if _prctl is not None:
        _prctl.prctl(PR_SET_CHILD_SUBREAPER, 1)
    else:
        _libc_prctl(PR_SET_CHILD_SUBREAPER, 1)


def is_child_subreaper() -> bool:
    if _prctl is not None:
        return bool(_prctl.prctl(PR_GET_CHILD_SUBREAPER))
    flag = _libc().Int(0)
    _libc_prctl(PR_GET_CHILD_SUBREAPER, _libc().addressof(flag))
    return bool(flag.value)


def set_name(name: str) -> None:
    """Set the kernel's name for this process (`/proc/self/comm`, what ps and pidof show)."""
    if _prctl is not None:
        _prctl.prctl(PR_SET_NAME, name)
        return
    buf = (_libc().Char * 16)()  # the kernel keeps 15 bytes and a NUL
    buf.value = name.encode()[:15]  # type: ignore[misc,assignment]
    _libc_prctl(PR_SET_NAME, _libc().addressof(buf))


def set_parent_death_signal(signum: int) -> None:
    """Have the kernel send us `signum` when our parent dies (tini's `-p`)."""
    if _prctl is not None:
        _prctl.prctl(PR_SET_PDEATHSIG, signum)
    else:
        _libc_prctl(PR_SET_PDEATHSIG, signum)
