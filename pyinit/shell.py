"""How a bash item runs, and how boot state reaches later items (spec §3).

A non-executable stage file is sourced by bash inside a function (so `local` and `return` work),
and a `-B/-D/-F/-H` string is `eval`ed the same way, with TrivialRC's integrated functions
(`say log warn err debug run`, in `trc_functions.sh`) defined first:

    bash -c '. "$PYINIT_FUNCTIONS"; _pyinit_item "$@"' NAME file|code PATH|CODE [ARG]...

TrivialRC runs boot items inside its own shell, so what one defines (variables, functions,
`cd`, `set --`) the next sees. pyinit runs each item in a process of its own, so after each
successful boot item bash writes its state to `STATE.sh` (to be sourced by every later bash
item) and the exported environment, directory and arguments to `STATE.env`/`STATE.args` (for
pyinit, to start later items, executables too, with them). STATE is in a private directory of
the run's own (`_state_path`), removed at the end.

The integrated logging functions write to a pipe pyinit reads (fd `LOG_FD` in the item), one
line per message: `level TAB stage TAB pid TAB message`. Lines up to PIPE_BUF bytes are written
atomically, so messages from concurrent items never mix.
"""

from __future__ import annotations

import os

from pyinit import config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.config import Item, Plan

#: The fd the integrated functions write to, high enough not to collide with the fds 3-9
#: scripts use for themselves (TrivialRC's process-manager example uses 5 and 6).
LOG_FD = 63
DRIVER = '. "$PYINIT_FUNCTIONS"; _pyinit_item "$@"'
#: What pyinit gives one bash item for itself: not boot state for the items after it.
INTERNAL = frozenset((b"PYINIT_FUNCTIONS", b"PYINIT_LOG_FD", b"PYINIT_LOG_NS", b"PYINIT_LOG_PID",
                      b"PYINIT_STATE", b"PYINIT_STATE_OUT", b"PYINIT_TASK", b"PYINIT_STAGE",
                      b"_", b"SHLVL", b"PWD", b"OLDPWD"))
FUNCTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "trc_functions.sh")


def needs_bash(plan: Plan) -> bool:
    """Bash items, or TrivialRC mode's main command (run as "$@" by bash)."""
    return any(item.how != config.EXEC for item in plan.items()) or (
        plan.compat and plan.main is not None)


class Shell:
    """Builds argv for items and keeps the boot state between them."""

    def __init__(self, plan: Plan, env: dict[str, str]) -> None:
        self.plan = plan
        self.bash = ""
        self.log_read = -1
        self.log_write = -1
        self.state = ""                 # the state files' common path, once boot needs one
        self.args = plan.args           # what bash items see as "$@": pyinit's arguments
        self.tmpdir = env.get("TMPDIR")  # where the boot state goes, first choice
        if needs_bash(plan):
            self.bash = config.find_program("bash", env) or "bash"
            self.log_read, self.log_write = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(self.log_read, False)

    def command(self, item: Item, env: dict[str, str]) -> tuple[list[str], dict[int, int]]:
        """argv and extra fds for `item`; adds what bash needs to `env`."""
        trc_main = item.stage == "main" and self.plan.compat
        if item.how == config.EXEC and not trc_main:
            return list(item.argv), {}
        env["PYINIT_FUNCTIONS"] = FUNCTIONS
        env["PYINIT_LOG_FD"] = str(LOG_FD)
        env["PYINIT_LOG_NS"] = item.ns
        if item.stage == "boot" and self.plan.compat and "MAINPID" in env:
            env["PYINIT_LOG_PID"] = env["MAINPID"]  # TrivialRC: [main/MAINPID]
        if self.state:
            env["PYINIT_STATE"] = self.state
        if item.stage == "boot":
            env["PYINIT_STATE_OUT"] = self._state_path()
            # Written again only when the item returns: its absence afterwards means the item
            # left through `exit` (see `exited_early`).
            try:
                os.unlink(self.state + ".args")
            except FileNotFoundError:  # the first boot item
                pass
        if trc_main:
            # TrivialRC runs its trailing command as "$@" inside bash: still an argv vector
            # (no eval), but builtins and boot's functions work (`trc exit 5`).
            argv = [self.bash, "-c", DRIVER, self.plan.self_name, "argv", *item.argv]
            return argv, {LOG_FD: self.log_write}
        kind = "file" if item.how == config.BASH_FILE else "code"
        argv = [self.bash, "-c", DRIVER, self.plan.self_name, kind, item.argv[0], *self.args]
        return argv, {LOG_FD: self.log_write}

    def _state_path(self) -> str:
        """The state files' common path, in a new directory of this run's own (mode 0700).

        Not a fixed name: every pyinit that is PID 1 (or 2) of its own namespace on one /tmp
        would share it, and a planted symlink could redirect root's writes. Not only TMPDIR:
        a read-only root file system (`docker run --read-only`) still has /dev/shm.
        """
        if not self.state:
            for base in (self.tmpdir, "/tmp", "/dev/shm", "/run"):
                if not base:
                    continue
                directory = os.path.join(base, f"pyinit-{os.getpid()}-{os.urandom(6).hex()}")
                try:
                    os.mkdir(directory, 0o700)
                except OSError:  # missing, read-only, full: try the next place
                    continue
                self.state = os.path.join(directory, "boot-state")
                break
            else:
                # Nowhere to write: the boot item fails with bash's own message saying why.
                self.state = os.path.join("/tmp", f"pyinit-{os.getpid()}", "boot-state")
        return self.state

    def exited_early(self, item: Item) -> bool:
        """A bash boot item that ended through `exit` instead of returning: in TrivialRC, an
        `exit` in boot ends trc itself (with 0 too), skipping everything after it."""
        return item.how != config.EXEC and not os.path.exists(self.state + ".args")

    def load_state(self, env: dict[str, str]) -> str | None:
        """After a boot item: take its exported environment and arguments; return its cwd."""
        if not self.state:
            return None  # only executable boot items so far: they cannot change pyinit's state
        try:
            with open(self.state + ".env", "rb") as f:
                exported = f.read()
            with open(self.state + ".args", "rb") as f:
                words = f.read().split(b"\0")[:-1]
        except FileNotFoundError:
            return None  # an executable boot item: it cannot change pyinit's state
        env.clear()
        for entry in exported.split(b"\0"):
            key, eq, value = entry.partition(b"=")
            if eq and key not in INTERNAL:
                env[os.fsdecode(key)] = os.fsdecode(value)
        decoded = [os.fsdecode(w) for w in words]
        self.args = tuple(decoded[1:])
        return decoded[0] if decoded else None

    def read_messages(self) -> list[tuple[str, str, int, str]]:
        """(level, stage, pid, message) for every complete line the items sent."""
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
            parts = line.split(b"\t", 3)
            if len(parts) == 4 and parts[2].isdigit():
                messages.append((parts[0].decode(errors="replace"),
                                 parts[1].decode(errors="replace"), int(parts[2]),
                                 parts[3].decode(errors="surrogateescape")))
        return messages

    def cleanup(self) -> None:
        if self.state:
            for suffix in (".sh", ".env", ".args", ".sh.tmp", ".env.tmp", ".args.tmp"):
                try:
                    os.unlink(self.state + suffix)
                except FileNotFoundError:  # that boot item did not write it
                    pass
            try:
                os.rmdir(os.path.dirname(self.state))
            except OSError:  # not ours to remove, or not empty: leave it
                pass
