"""The three prctl(2) calls pyinit needs: child subreaper, process name, parent-death signal.

python-prctl is used when installed (the `pyinit-pid1[prctl]` extra). It is optional because it is
GPL-3.0-or-later and ships source only (gcc and libcap-dev to build), which a slim image lacks;
without it, a ctypes call into libc does the same three things. `BACKEND` says which one is live.

Only python-prctl's C module `_prctl` is loaded, not its `prctl` wrapper: the wrapper generates a
function for every option at import, and costs about 1 ms more than the C module alone (0.5 ms);
ctypes costs about 2.5 ms (docs/startup.md). None of it is loaded as PID 1, which needs no prctl,
and the name is set through /proc/self/comm first (cli.py).
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
    """prctl(option, arg2, 0, 0, 0) through ctypes; raises OSError like the C call fails."""
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [
        ctypes.c_int,
        ctypes.c_ulong,
        ctypes.c_ulong,
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    result: int = libc.prctl(option, arg2, 0, 0, 0)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def set_child_subreaper() -> None:
    """Make orphaned descendants come to us instead of the real PID 1 (Linux >= 3.4)."""
    if _prctl is not None:
        _prctl.prctl(PR_SET_CHILD_SUBREAPER, 1)
    else:
        _libc_prctl(PR_SET_CHILD_SUBREAPER, 1)


def is_child_subreaper() -> bool:
    if _prctl is not None:
        return bool(_prctl.prctl(PR_GET_CHILD_SUBREAPER))
    import ctypes

    flag = ctypes.c_int(0)
    _libc_prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(flag))
    return bool(flag.value)


def set_name(name: str) -> None:
    """Set the kernel's name for this process (`/proc/self/comm`, what ps and pidof show)."""
    if _prctl is not None:
        _prctl.prctl(PR_SET_NAME, name)
        return
    import ctypes

    buf = ctypes.create_string_buffer(name.encode()[:15])  # the kernel keeps 15 bytes + NUL
    _libc_prctl(PR_SET_NAME, ctypes.addressof(buf))


def set_parent_death_signal(signum: int) -> None:
    """Have the kernel send us `signum` when our parent dies (tini's `-p`)."""
    if _prctl is not None:
        _prctl.prctl(PR_SET_PDEATHSIG, signum)
    else:
        _libc_prctl(PR_SET_PDEATHSIG, signum)
