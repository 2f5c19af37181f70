"""`podman run -it IMAGE pyinit -- sh` on a terminal: Ctrl-C reaches the shell's job, not pyinit.

The test is the user at a terminal: podman runs on the slave side of a pseudo-terminal (as
`script` would run it), and the test types into the master side and reads the screen from it.
"""

import os
import pty
import re
import select
import signal
import time

import pytest

from .harness import WAIT, Images, Podman

# The body only: the session's preparation (conftest.py) has a time limit on every step.
pytestmark = pytest.mark.timeout(180, func_only=True)


class Terminal:
    """podman on a pseudo-terminal: what it shows, and keys typed into it."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: podman, on the terminal (its stdin, stdout, stderr)
            try:
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.screen = ""
        self.cursor = 0
        self.status: int | None = None

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def _read(self, timeout: float) -> bool:
        """Read what the terminal shows within timeout; False at its end (podman exited)."""
        if not select.select([self.fd], [], [], max(timeout, 0))[0]:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the slave side is closed
            return False
        self.screen += data.decode(errors="replace")
        return bool(data)

    def expect(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        """Wait for pattern to show after the previous match; what follows it is next."""
        deadline = time.monotonic() + timeout
        while not (match := re.compile(pattern).search(self.screen, self.cursor)):
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                raise AssertionError(f"{pattern!r} not shown; the terminal:\n{self.screen}")
        self.cursor = match.end()
        return match

    def wait(self, timeout: float = WAIT) -> int:
        """podman's exit status, once the session has ended."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.1)  # keep the terminal drained
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        raise AssertionError(f"podman still running after {timeout}s:\n{self.screen}")

    def close(self) -> None:
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = -9
        os.close(self.fd)


def test_ctrl_c_reaches_the_interactive_shell(images: Images, podman: Podman) -> None:
    """should give sh the terminal: Ctrl-C stops its job (130) and the container goes on"""
    image = images.get("example")
    name = podman.new_name()
    argv = [
        "podman",
        "run",
        "-it",
        "--rm",
        *podman.run_args(name),
        "--entrypoint",
        "pyinit",
        image,
        "--",
        "sh",
    ]
    term = Terminal(argv, podman.env)
    try:
        term.expect(r"# $", timeout=60)  # sh's prompt (root)
        term.type("echo ready-$((40+2))\r")
        term.expect(r"ready-42")
        term.expect(r"# $")
        term.type("sleep 60\r")
        deadline = time.monotonic() + WAIT  # the job runs: then Ctrl-C
        while "sleep" not in podman("exec", name, "ps", "-eo", "comm=").stdout:
            assert time.monotonic() < deadline, "sleep 60 never started:\n" + term.screen
            time.sleep(0.2)
        typed = time.monotonic()
        term.type("\x03")  # Ctrl-C: the terminal sends SIGINT to its foreground group
        term.expect(r"# $", timeout=20)
        assert time.monotonic() - typed < 15, "the job was not interrupted"
        term.type("echo status=$?\r")
        term.expect(r"status=130")  # 128 + SIGINT: sleep died of Ctrl-C; sh and pyinit did not
        term.expect(r"# $")
        # The terminal's foreground group is sh's job, never pyinit's group (PID 1's).
        term.type('ps -o pgid=,tpgid= -p 1 | awk \'{print "pid1:" $1 "/" $2}\'\r')
        pgid, tpgid = term.expect(r"pid1:(\d+)/(\d+)").groups()
        assert pgid == "1", term.screen
        assert tpgid not in ("1", "-1"), term.screen
        term.type("exit 5\r")
        assert term.wait() == 5, "sh's status, through pyinit and podman:\n" + term.screen
    finally:
        term.close()
