"""How a bash item runs, and how boot state reaches later items (docs/boot-state.md).

A non-executable stage file is sourced by bash inside a function (so `local` and `return` work),
and a `-B/-D/-F/-H` string is `eval`ed the same way, with TrivialRC's integrated functions
(`say log warn err debug run pyinit_set_args`, in `trc_functions.sh`) defined first:

    bash -c '. "$PYINIT_FUNCTIONS"; _pyinit_item "$@"' NAME file|code PATH|CODE [ARG]...

TrivialRC runs boot items inside its own shell, so what one defines (variables, functions,
`cd`) the next sees. pyinit runs each item in a process of its own, so after each successful
boot item bash writes what later items need: `STATE.sh` (variables and functions, sourced by
every later bash item) when a bash item follows, and the exported environment and directory
(`STATE.env`, `STATE.cwd`, for pyinit to start every later item with) when any item follows.
The command line changes only through `pyinit_set_args` (`STATE.args`); in TrivialRC mode a
boot item's `set --` changes it, as in trc.

STATE is in a private directory of the run's own, one for each user the bash items run as
(`user =`): pyinit, as root, copies the latest `STATE.sh` into the directory of the next
item's user, so that a `user = "postgres"` item reads and writes only its own.

The integrated logging functions write to a pipe pyinit reads (fd `LOG_FD` in the item), one
line per message: `level TAB ns TAB pid TAB task TAB message`. Lines up to PIPE_BUF bytes are
written atomically, so messages from concurrent items never mix.
"""

from __future__ import annotations

import os
import stat
import sys

from pyinit import config, workdir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.config import Item, Plan

#: The fd the integrated functions write to, high enough not to collide with the fds 3-9
#: scripts use for themselves (TrivialRC's process-manager example uses 5 and 6).
LOG_FD = 63
DRIVER = '. "$PYINIT_FUNCTIONS"; _pyinit_item "$@"'
#: What pyinit gives one bash item for itself: not boot state for the items after it.
INTERNAL = frozenset(
    (
        b"PYINIT_FUNCTIONS",
        b"PYINIT_LOG_FD",
        b"PYINIT_LOG_NS",
        b"PYINIT_LOG_PID",
        b"PYINIT_PYTHON",
        b"PYINIT_READY_FD",
        b"PYINIT_STATE",
        b"PYINIT_STATE_OUT",
        b"PYINIT_STATE_SAVE",
        b"PYINIT_TASK",
        b"PYINIT_STAGE",
        b"_",
        b"SHLVL",
        b"PWD",
        b"OLDPWD",
    )
)
FUNCTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trc_functions.sh")


def needs_bash(plan: Plan) -> bool:
    """Bash items, or TrivialRC mode's main command (run as "$@" by bash)."""
    return any(item.how != workdir.EXEC for item in plan.items()) or (
        plan.mode.main_via_bash and plan.main is not None
    )


class StateError(Exception):
    """No directory for the boot state could be made: the message says where it looked."""


class Shell:
    """Builds argv for items and keeps the boot state between them."""

    def __init__(self, plan: Plan, env: dict[str, str]) -> None:
        self.plan = plan
        self.bash = ""
        self.log_read = -1
        self.log_write = -1
        self.state = ""  # the latest STATE.sh's common path, once one is saved
        self.out = ""  # where the boot item running now writes its state
        self.dirs: dict[int, str] = {}  # uid -> the state directory of items run as that user
        self.args = plan.args  # the command line's item words: boot's "$@"
        self.tmpdir = env.get("TMPDIR")  # where the boot state goes, first choice
        if needs_bash(plan):
            self.bash = config.find_program("bash", env) or "bash"
            self.log_read, self.log_write = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(self.log_read, False)

    def command(
        self, item: Item, env: dict[str, str], uid: int | None = None, gid: int | None = None
    ) -> tuple[list[str], dict[int, int]]:
        """argv and extra fds for `item`, run as `uid`/`gid` (None: pyinit's own); adds what
        bash needs to `env`. Raises StateError when a boot item's state has nowhere to go."""
        trc_main = item.stage == "main" and self.plan.mode.main_via_bash
        if item.how == workdir.EXEC and not trc_main:
            return list(item.argv), {}
        env["PYINIT_FUNCTIONS"] = FUNCTIONS
        env["PYINIT_PYTHON"] = sys.executable  # for `ready` without systemd-notify
        env["PYINIT_LOG_FD"] = str(LOG_FD)
        env["PYINIT_LOG_NS"] = item.ns
        if item.stage == "boot" and self.plan.mode.boot_in_main and "MAINPID" in env:
            env["PYINIT_LOG_PID"] = env["MAINPID"]  # TrivialRC: [main/MAINPID]
        boot = item.stage == "boot"
        parts = self._needed_after(item) if boot else ""
        if self.state or boot:  # a boot item may call pyinit_set_args: it needs a place
            where = self._state_for(uid, gid, required=bool(parts))
            if where and self.state:
                env["PYINIT_STATE"] = self._share(where, uid, gid)
            if where and boot:
                self.out = where
                env["PYINIT_STATE_OUT"] = where
                env["PYINIT_STATE_SAVE"] = parts
                for suffix in (".env", ".cwd", ".args", ".done"):  # this item's, or none
                    _unlink(where + suffix)
        if trc_main:
            # TrivialRC runs its trailing command as "$@" inside bash: still an argv vector
            # (no eval), but builtins and boot's functions work (`trc exit 5`).
            argv = [self.bash, "-c", DRIVER, self.plan.self_name, "argv", *item.argv]
            return argv, {LOG_FD: self.log_write}
        kind = "file" if item.how == workdir.BASH_FILE else "code"
        argv = [self.bash, "-c", DRIVER, self.plan.self_name, kind, item.argv[0], *self.args]
        return argv, {LOG_FD: self.log_write}

    def _needed_after(self, item: Item) -> str:
        """What of a boot item's state later items need, as `_pyinit_save_state` reads it:
        `sh` when a bash item follows, `env` when any item does; TrivialRC mode saves all,
        its positional parameters (`args`) too."""
        if self.plan.mode.set_rewrites_args:
            return "sh env args"
        items = list(self.plan.items())
        later = items[items.index(item) + 1 :]
        if not later:
            return ""
        bash_follows = any(other.how != workdir.EXEC for other in later)
        return "sh env" if bash_follows else "env"

    def _state_for(self, uid: int | None, gid: int | None, *, required: bool) -> str:
        """The state files' common path for items run as `uid`, in a new directory of this
        run's own (mode 0700, owned by that user); "" when there is none and none is needed.

        Not a fixed name: every pyinit that is PID 1 (or 2) of its own namespace on one /tmp
        would share it, and a planted symlink could redirect root's writes. Not only TMPDIR:
        a read-only root file system (`docker run --read-only`) still has /dev/shm.
        """
        key = os.geteuid() if uid is None else uid
        if key in self.dirs:
            return os.path.join(self.dirs[key], "boot-state")
        tried: list[str] = []
        bases = list(dict.fromkeys(b for b in (self.tmpdir, "/tmp", "/dev/shm", "/run") if b))
        for base in bases:
            directory = os.path.join(base, f"pyinit-{os.getpid()}-{os.urandom(6).hex()}")
            try:
                os.mkdir(directory, 0o700)
                if key != os.geteuid():
                    os.chown(directory, key, -1 if gid is None else gid)
            except OSError as e:  # missing, read-only, full: try the next place
                tried.append(f"{base} ({e.strerror})")
                _rmdir(directory)
                continue
            self.dirs[key] = directory
            return os.path.join(directory, "boot-state")
        if not required:
            return ""
        raise StateError(
            f"no directory for the boot state: tried {', '.join(tried)}; set "
            f"TMPDIR to a writable directory (a tmpfs: docker run --tmpfs /tmp)"
        )

    def _share(self, where: str, uid: int | None, gid: int | None) -> str:
        """The latest STATE.sh, copied to `where` (another user's directory) if it is not
        there: that user could not read pyinit's own, nor pyinit's items its."""
        if where == self.state or not os.path.exists(self.state + ".sh"):
            return self.state
        data = _read_own(self.state + ".sh")
        if data is None:
            return self.state
        tmp = f"{where}.sh.{os.urandom(4).hex()}"
        # O_EXCL|O_NOFOLLOW: the directory is the item's user's, who could plant a link.
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            os.write(fd, data)
            if uid is not None and uid != os.geteuid():
                os.fchown(fd, uid, -1 if gid is None else gid)
        finally:
            os.close(fd)
        os.replace(tmp, where + ".sh")
        return where

    def exited_early(self, item: Item) -> bool:
        """A bash boot item that ended through `exit` instead of returning: in TrivialRC, an
        `exit` in boot ends trc itself (with 0 too), skipping everything after it."""
        return (
            item.how != workdir.EXEC and bool(self.out) and not os.path.exists(self.out + ".done")
        )

    def load_state(self, env: dict[str, str]) -> str | None:
        """After a boot item: take its exported environment and arguments; return its cwd."""
        where, self.out = self.out, ""
        if not where:
            return None  # an executable item, or nothing needs its state
        if os.path.exists(where + ".sh"):
            self.state = where
        exported = _read_own(where + ".env")
        if exported is not None:
            env.clear()
            for entry in exported.split(b"\0"):
                key, eq, value = entry.partition(b"=")
                if eq and key not in INTERNAL:
                    env[os.fsdecode(key)] = os.fsdecode(value)
        words = _read_own(where + ".args")
        if words is not None:
            self.args = tuple(os.fsdecode(w) for w in words.split(b"\0")[:-1])
        cwd = _read_own(where + ".cwd")
        return os.fsdecode(cwd) if cwd else None

    def read_messages(self) -> list[tuple[str, str, int, str, str]]:
        """(level, ns, pid, task, message) for every complete line the items sent."""
        data = b""
        while True:
            try:
                chunk = os.read(self.log_read, 65536)
            except BlockingIOError:  # drained
                break
            if not chunk:
                break
            data += chunk
        messages = []
        for line in data.split(b"\n"):
            parts = line.split(b"\t", 4)
            if len(parts) == 5 and parts[2].isdigit():
                messages.append(
                    (
                        parts[0].decode(errors="replace"),
                        parts[1].decode(errors="replace"),
                        int(parts[2]),
                        parts[3].decode(errors="replace"),
                        parts[4].decode(errors="surrogateescape"),
                    )
                )
        return messages

    def cleanup(self) -> None:
        for directory in self.dirs.values():
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                if name.startswith("boot-state."):
                    _unlink(os.path.join(directory, name))
            _rmdir(directory)


def _read_own(path: str) -> bytes | None:
    """A state file's bytes; None if it is missing or not a plain file (an item's user owns
    its directory and could plant a link to a file only root may read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:  # that item did not write it
        pass


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:  # missing, or not empty (something else was put there): leave it
        pass
