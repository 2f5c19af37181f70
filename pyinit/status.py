"""The exit-status vocabulary, in one place (spec §8).

A status is what a shell would show in `$?`: 0..255, with 128+N for "killed by signal N" because
an 8-bit exit code cannot say "killed" (dumb-init#59 returned 0 there, a bug users hit).
"""

import os

OK = 0
WARNINGS = 1  # --check: the plan runs, but something in it deserves a look
USAGE = 2  # bad input: nothing was started
TIMEOUT = 124  # --timeout expired, as timeout(1)
CANNOT_EXECUTE = 126  # the command exists but exec failed (EACCES, ENOEXEC, a directory), as sh
NOT_FOUND = 127  # the command does not exist, as sh and tini
INTERNAL_ERROR = 70  # a bug in pyinit itself (EX_SOFTWARE, sysexits.h)


def from_wait_status(wait_status: int) -> int:
    """Turn a raw `waitpid` status into 0..255: the exit code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


def killed_by(signum: int) -> int:
    """The status of a process that signal `signum` killed (TERM -> 143)."""
    return 128 + signum


def start_failure(step: str, errno_value: int) -> int:
    """Why a task could not start: 127 when exec found no program, 126 for anything else (it is
    there but cannot run, or the set-up before exec failed), as sh and tini."""
    import errno  # only on the failure path

    if step == "exec" and errno_value in (errno.ENOENT, errno.ENOTDIR):
        return NOT_FOUND
    return CANNOT_EXECUTE


def remap(status: int, expected: frozenset[int]) -> int:
    """tini's `-e CODE`: a status the user declared expected becomes 0 (applied last)."""
    return OK if status in expected else status
