"""Start one process: the only place that forks (docs/design.md).

Why fork+exec in Python rather than `subprocess`: `subprocess` costs ~24 ms to import, its
`Popen` objects reap behind the loop's back if anyone calls `wait()` (a failed status turns into
0, docs/pid1.md §2b), and it cannot hand the terminal's foreground to the child. Why not
`os.posix_spawn`: it cannot `chdir`, drop privileges or call `tcsetpgrp`.

Every child gets, before exec (spec §3): its own session (or, for a main command on a
terminal, its own process group made the terminal's foreground, as tini does, so Ctrl-C and
Ctrl-Z reach it); default signal dispositions and an empty mask; stdin from /dev/null unless it
keeps pyinit's; stdout and stderr into pipes read by the loop, or inherited (pass-through);
working directory, supplementary groups, gid and uid. An exec failure travels back through a
close-on-exec pipe, so the caller learns 126/127 and why, as a shell would report it.
"""

from __future__ import annotations

import os

from pyinit import signals, status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Spawned:
    """What the caller gets back: the pid and the read ends of the output pipes (-1 if none)."""

    __slots__ = ("error", "pid", "stderr", "stdout")

    def __init__(self, pid: int, stdout: int, stderr: int, error: str) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.error = error  # why the exec failed ("" when it did not); the child exits 126/127


class Identity:
    """Who a task runs as: resolved uid, gid and supplementary groups; or why it cannot run
    (`error`: the child then fails at the privilege drop, status 126, and never runs as root)."""

    __slots__ = ("error", "gid", "groups", "uid")

    def __init__(
        self, uid: int | None, gid: int | None, groups: list[int] | None, error: str = ""
    ) -> None:
        self.uid = uid
        self.gid = gid
        self.groups = groups
        self.error = error


def resolve_identity(user: str | None, group: str | None) -> Identity | None:
    """`user`/`group` names (or numbers) to ids; the user's groups replace pyinit's."""
    if user is None and group is None:
        return None
    import grp
    import pwd

    uid = gid = None
    groups: list[int] | None = None
    if user is not None:
        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except KeyError:
            if not user.isdigit():
                raise
            uid = gid = int(user)  # an id with no passwd entry, as `docker run -u 1234`
        else:
            uid, gid = entry.pw_uid, entry.pw_gid
            groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    if group is not None:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        if groups is None:
            groups = [gid]  # drop pyinit's supplementary groups too
        elif gid not in groups:
            groups.append(gid)
    elif groups is None:
        groups = [gid] if gid is not None else None  # a bare uid: its own group only
    if (
        uid in (None, os.geteuid())
        and gid in (None, os.getegid())
        and (os.geteuid() != 0 or groups is None or set(groups) == set(os.getgroups()))
    ):
        # Nothing would change: skip the drop (without root, setgroups fails with EPERM even
        # when it changes nothing, so `user = "app"` could not run under `--user app`).
        return None
    return Identity(uid, gid, groups)


def spawn(
    argv: tuple[str, ...] | list[str],
    env: dict[str, str],
    *,
    capture: bool = True,
    keep_stdin: bool = False,
    foreground: bool = False,
    cwd: str | None = None,
    identity: Identity | None = None,
    pass_fds: dict[int, int] | None = None,
    on_fork: Callable[[int], None] | None = None,
    pid_var: str = "",
    rlimits: tuple[tuple[int, int, int], ...] = (),
    umask: int | None = None,
) -> Spawned:
    """Fork and exec `argv` (searched on the env's PATH).

    capture: give the child pipes on fds 1 and 2; otherwise it inherits pyinit's.
    keep_stdin: inherit pyinit's stdin instead of /dev/null.
    foreground: if stdin is our terminal, make the child's group its foreground group.
    pass_fds: {fd in the child: fd in pyinit} for extra descriptors (the log channel).
    on_fork: called in pyinit with the new pid while every signal is still blocked, so that a
    signal arriving around the fork is handled only once the caller knows the new task
    (forwarding.py). The child unblocks them once its dispositions are back to the defaults.
    pid_var: a variable the child sets to its own pid before the exec (systemd's WATCHDOG_PID).
    rlimits, umask: set in the child before it drops privileges (limits.py).
    """
    out_r = out_w = err_r = err_w = -1
    if capture:
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    on_tty = foreground and keep_stdin and _is_our_terminal(0)
    mask = signals.block_all()
    try:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            if pid_var:
                env = {**env, pid_var: str(os.getpid())}
            _exec_child(
                argv,
                env,
                out_w,
                err_w,
                status_w,
                keep_stdin,
                on_tty,
                cwd,
                identity,
                pass_fds or {},
                rlimits,
                umask,
            )
        if on_fork is not None:
            on_fork(pid)
    finally:
        signals.set_mask(mask)
    os.close(status_w)
    for fd in (out_w, err_w):
        if fd >= 0:
            os.close(fd)
    for fd in (out_r, err_r):
        if fd >= 0:
            os.set_blocking(fd, False)
    # Blocks only until the child execs (the pipe closes on exec) or fails: a millisecond.
    report = b""
    while chunk := os.read(status_r, 4096):
        report += chunk
    os.close(status_r)
    return Spawned(pid, out_r, err_r, report.decode(errors="replace"))


def _is_our_terminal(fd: int) -> bool:
    try:
        os.tcgetpgrp(fd)  # fails unless fd is our session's controlling terminal
    except OSError:
        return False
    return True


def _exec_child(
    argv: tuple[str, ...] | list[str],
    env: dict[str, str],
    out_w: int,
    err_w: int,
    status_w: int,
    keep_stdin: bool,
    on_tty: bool,
    cwd: str | None,
    identity: Identity | None,
    pass_fds: dict[int, int],
    rlimits: tuple[tuple[int, int, int], ...] = (),
    umask: int | None = None,
) -> None:
    step = "start"
    try:
        if on_tty:
            # tini's way: a new group in our session, handed the terminal. TTOU is still ignored
            # here (inherited from pyinit), so tcsetpgrp from the background cannot stop us.
            step = "take the terminal"
            os.setpgid(0, 0)
            os.tcsetpgrp(0, os.getpid())
        else:
            step = "setsid"
            os.setsid()
        signals.reset_for_exec()
        step = "set up file descriptors"
        if not keep_stdin:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
        if out_w >= 0:
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
        for target, source in pass_fds.items():
            os.dup2(source, target)  # dup2 clears close-on-exec on the copy
        if cwd is not None:
            step = f"change directory to {cwd}"
            os.chdir(cwd)
        if umask is not None:
            os.umask(umask)
        if rlimits:  # before dropping privileges: raising a hard limit needs root
            step = "set rlimits"
            from pyinit import limits

            problem = limits.apply(rlimits)
            if problem:
                raise PermissionError(1, problem)
        if identity is not None:
            step = "drop privileges"
            if identity.error:
                raise PermissionError(1, identity.error)
            if identity.groups is not None:
                os.setgroups(identity.groups)
            if identity.gid is not None:
                os.setgid(identity.gid)
            if identity.uid is not None:
                os.setuid(identity.uid)
        step = "exec"
        os.execvpe(argv[0], list(argv), env)
    except BaseException as e:  # noqa: BLE001 - the child must never return into pyinit's loop
        reason = getattr(e, "strerror", None) or str(e)
        try:
            os.write(status_w, f"{step} failed: {reason}".encode())
        finally:
            os._exit(status.start_failure(step, getattr(e, "errno", None) or 0))
