"""How a bash item runs, and how boot state reaches later items (SPEC §3).

A non-executable stage file is sourced by bash inside a function (so `local` and `return` work),
and a `-B/-D/-F/-H` string is `eval`ed the same way, with TrivialRC's integrated functions
(`say log warn err debug run`, in `trc_functions.sh`) defined first:

    bash -c '. "$PYINIT_FUNCTIONS"; _pyinit_item "$@"' NAME file|code PATH|CODE [ARG]...

TrivialRC runs boot items inside its own shell, so what one defines (variables, functions,
`cd`, `set --`) the next sees. pyinit runs each item in a process of its own, so after each
successful boot item bash writes its state to `STATE.sh` (to be sourced by every later bash
item) and the exported environment, directory and arguments to `STATE.env`/`STATE.args` (for
pyinit, to start later items, executables too, with them).

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
        if self.state:
            env["PYINIT_STATE"] = self.state
        if item.stage == "boot":
            env["PYINIT_STATE_OUT"] = self._state_path()
        if trc_main:
            # TrivialRC runs its trailing command as "$@" inside bash: still an argv vector
            # (no eval), but builtins and boot's functions work (`trc exit 5`).
            argv = [self.bash, "-c", DRIVER, self.plan.self_name, "argv", *item.argv]
            return argv, {LOG_FD: self.log_write}
        kind = "file" if item.how == config.BASH_FILE else "code"
        argv = [self.bash, "-c", DRIVER, self.plan.self_name, kind, item.argv[0], *self.args]
        return argv, {LOG_FD: self.log_write}

    def _state_path(self) -> str:
        if not self.state:
            directory = os.environ.get("TMPDIR") or "/tmp"
            self.state = os.path.join(directory, f"pyinit-{os.getpid()}-boot-state")
        return self.state

    def load_state(self, env: dict[str, str]) -> str | None:
        """After a boot item: take its exported environment and arguments; return its cwd."""
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
            if eq and key not in (b"PYINIT_STATE_OUT", b"PYINIT_STATE", b"_", b"SHLVL",
                                  b"PWD", b"OLDPWD"):
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
            for suffix in (".sh", ".env", ".args"):
                try:
                    os.unlink(self.state + suffix)
                except FileNotFoundError:  # that boot item did not write it
                    pass
