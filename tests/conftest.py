"""The harness for black-box tests: run `python -m pyinit` for real, as PID 1 and as a subreaper.

Every process test runs in its own PID namespace (`unshare --pid --fork --mount-proc`), because
this machine's own PID 1 does not reap orphans: a zombie outside a namespace may not be pyinit's
fault. Two modes (the `mode` fixture):

* `pid1`: pyinit is the namespace's PID 1.
* `subreaper`: a stand-in PID 1 (`tests/ns_init.py`) runs pyinit as its child, so pyinit is not
  PID 1 and must register as the child subreaper; ns_init reports what was left running.

`Run` reads pyinit's stdout and stderr as they come, so tests wait for a line (`expect`) rather
than sleeping, and signals go to pyinit itself (its host pid), never to `unshare`.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
NS_INIT = Path(__file__).with_name("ns_init.py")
#: The programs the tests run as tasks: files, so that each can be read and run on its own.
CHILDREN = Path(__file__).with_name("children")
PYINIT = [sys.executable, "-m", "pyinit"]
MODES = ("pid1", "subreaper")


def child(name: str) -> str:
    """The path of tests/children/NAME, as a command line takes it."""
    path = CHILDREN / name
    assert path.is_file(), path
    return str(path)


def can_unshare() -> bool:
    try:
        return (
            subprocess.run(
                ["unshare", "--pid", "--fork", "--mount-proc", "true"],
                capture_output=True,
                timeout=10,
                check=False,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


UNSHARE_OK = can_unshare()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each test that takes `mode` runs twice: pyinit as PID 1, and as a subreaper."""
    if not UNSHARE_OK:
        pytest.skip("needs root for unshare --pid (PID namespaces)")
    return str(request.param)


def command(mode: str, args: list[str], launcher: list[str] = PYINIT) -> list[str]:
    """How to run pyinit (`launcher`: python -m pyinit, or a script standing for it) in `mode`."""
    base = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    if mode == "pid1":
        return [*base, *launcher, *args]
    if mode == "subreaper":
        return [*base, sys.executable, str(NS_INIT), *launcher, *args]
    return [*launcher, *args]  # "plain": no namespace, for tests that orphan nothing


class Run:
    """A running pyinit, its output collected line by line."""

    def __init__(
        self,
        mode: str,
        args: list[str],
        env: dict[str, str] | None = None,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = subprocess.PIPE,
        cwd: str | Path | None = None,
        python_args: list[str] | None = None,
    ) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = str(ROOT)
        full_env.pop("NOTIFY_SOCKET", None)
        # No control socket unless a test asks for one: concurrent runs would share /run/pyinit
        # and the abstract names of this network namespace (tests/process/test_control.py).
        full_env.setdefault("PYINIT_CONTROL", "off")
        if env:
            full_env.update(env)
        self.mode = mode
        launcher = [sys.executable, *python_args] if python_args else PYINIT
        self.proc = subprocess.Popen(
            command(mode, args, launcher),
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
        )
        self.lines: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
        self._queues: dict[str, queue.Queue[bytes | None]] = {}
        self._readers = []
        for name, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            if pipe is None:
                continue
            q: queue.Queue[bytes | None] = queue.Queue()
            self._queues[name] = q
            t = threading.Thread(target=self._pump, args=(pipe, name, q), daemon=True)
            t.start()
            self._readers.append(t)
        self._pid = 0

    def _pump(self, pipe: IO[bytes], name: str, q: queue.Queue[bytes | None]) -> None:
        for line in iter(pipe.readline, b""):
            self.lines[name].append(line)
            q.put(line)
        q.put(None)

    @property
    def pid(self) -> int:
        """pyinit's pid as seen from here (the host namespace)."""
        if not self._pid:
            self._pid = find_pyinit(self.proc.pid)
        return self._pid

    def expect(
        self, pattern: str | bytes, stream: str = "stderr", timeout: float = 10, count: int = 1
    ) -> bytes:
        """Wait for the `count`th line matching `pattern` (regex) on `stream`, counting the
        lines already seen, and return it."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        seen = matched = 0
        deadline = time.monotonic() + timeout
        while True:
            lines = self.lines[stream]
            for line in lines[seen:]:
                seen += 1
                if regex.search(line):
                    matched += 1
                    if matched == count:
                        return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no line {count} matching {pattern!r} on {stream} within "
                    f"{timeout}s; got:\n{self.text(stream)}"
                )
            try:
                item = self._queues[stream].get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if item is None and self.proc.poll() is not None:
                lines = self.lines[stream]
                if matched + sum(1 for line in lines[seen:] if regex.search(line)) < count:
                    raise AssertionError(
                        f"pyinit ended without line {count} matching "
                        f"{pattern!r} on {stream}; got:\n{self.text(stream)}"
                    )

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def wait(self, timeout: float = 20) -> int:
        """pyinit's exit status (through unshare, which passes it on)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._close()
        return code

    def _close(self) -> None:
        for t in self._readers:
            t.join(5)
        for pipe in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if pipe is not None:
                pipe.close()

    def text(self, stream: str = "stderr") -> str:
        return b"".join(self.lines[stream]).decode(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """pyinit's own JSON log lines on stderr (`--log-format=json`), in order; task lines
        and ns_init's plain report are skipped."""
        found = []
        for raw in self.lines["stderr"]:
            if not raw.startswith(b"{"):
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict) and "message" in event:
                found.append(event)
        return found

    def survivors(self) -> int:
        """What the `survivors_item` halt item counted: processes left in the namespace."""
        lines = [
            line
            for stream in ("stdout", "stderr")
            for line in self.lines[stream]
            if b"survivors " in line
        ]
        assert len(lines) == 1, self.text()[-3000:]
        match = re.search(rb"survivors (\d+)", lines[0])
        assert match, lines[0]
        return int(match.group(1))

    def left_running(self) -> int | None:
        """Subreaper mode: how many processes ns_init found alive after pyinit ended."""
        match = re.search(r"ns_init: left (\d+)", self.text())
        return int(match.group(1)) if match else None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()


#: A halt item: the processes left in the namespace but itself, pyinit and PID 1, printed as
#: `survivors N [cmdline, ...]` on stderr (so that as PID 1 too, where no ns_init can look,
#: a test sees what the stop and the sweep left).
SURVIVORS = r"""
import os, sys
skip = {os.getpid(), int(os.environ["MAINPID"]), 1}
found = []
for entry in os.listdir("/proc"):
    if entry.isdigit() and int(entry) not in skip:
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found.append(f.read().replace(b"\0", b" ").decode(errors="replace")[:50])
        except OSError:
            continue
print("survivors", len(found), found, file=sys.stderr, flush=True)
"""


def pyinit_once(
    *args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m pyinit ARGS` to its end, without a namespace (for runs that orphan nothing:
    bad input, --check), no control socket, text output."""
    return subprocess.run(
        [*PYINIT, *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYINIT_CONTROL": "off", **(env or {})},
        check=False,
    )


def assert_usage_error(done: subprocess.CompletedProcess[str], says: str) -> None:
    """Bad input: status 2 and one line on stderr that says `says`, never a traceback."""
    assert done.returncode == 2, done
    assert says in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


def survivors_item(tmp_path: Path) -> list[str]:
    """pyinit arguments adding the SURVIVORS halt item (read back with `Run.survivors()`)."""
    path = tmp_path / "survivors.py"
    path.write_text(SURVIVORS)
    return ["-H", f"exec {sys.executable} {path}"]


def figure(attack: str, mode: str, **values: object) -> None:
    """One line of figures for the README's reliability table (`pytest -s ... | grep FIGURE`)."""
    print(f"\nFIGURE {attack} [{mode}] " + " ".join(f"{k}={v}" for k, v in values.items()))


def find_pyinit(root_pid: int, timeout: float = 10) -> int:
    """The pyinit process below `root_pid` (unshare): the first descendant running -m pyinit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            candidates = {}
            for child in psutil.Process(root_pid).children(recursive=True):
                try:
                    if child.cmdline()[1:3] == ["-m", "pyinit"]:
                        candidates[child.pid] = child.ppid()
                except psutil.Error:
                    continue
        except psutil.NoSuchProcess:
            raise AssertionError("pyinit ended before it could be found") from None
        # A task forked but not yet exec'd looks like pyinit too: take the topmost one, once
        # its signal handlers are in (SigCgt has SIGTERM's bit).
        for pid, ppid in candidates.items():
            if ppid not in candidates and _catches(pid, signal.SIGTERM):
                return int(pid)
        time.sleep(0.005)
    raise AssertionError("pyinit did not start")


def _catches(pid: int, signum: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except OSError:
        return False
    return False


T = TypeVar("T")


def must(value: T | None) -> T:
    """`value`, which the test needs to be there (a regex match, a next run time)."""
    assert value is not None
    return value


class StartPyinit(Protocol):
    """The `run_pyinit` fixture: start(mode, args, **Run's keywords) -> Run."""

    def __call__(self, mode: str, args: list[str], **kwargs: Any) -> Run: ...


@pytest.fixture
def run_pyinit() -> Iterator[StartPyinit]:
    """start(mode, args, **kw) -> Run; every Run is killed at the end of the test."""
    runs: list[Run] = []

    def start(mode: str, args: list[str], **kwargs: Any) -> Run:
        run = Run(mode, args, **kwargs)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()


# -- helpers several tiers use --------------------------------------------------------------


def need(program: str, package: str) -> str:
    """The path of a real program a test runs, or a one-line skip naming its Debian package."""
    path = shutil.which(program) or (
        f"/usr/sbin/{program}" if os.path.exists(f"/usr/sbin/{program}") else None
    )
    if path is None:
        pytest.skip(f"needs {program} (apt-get install {package})")
    return path


def port_for(mode: str, offset: int) -> int:
    """A port of this test run's own: runs in two modes and two pytest processes at once."""
    return 17000 + (os.getpid() * 7 + offset * 31 + (500 if mode == "pid1" else 0)) % 2500


def pyinitctl(
    address: str, *args: str, python: str = sys.executable, user: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`pyinitctl ARGS` (as `python -m pyinit.ctl`) against the control socket at `address`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYINIT_CONTROL": address}
    argv = [*(user or []), python, "-m", "pyinit.ctl", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30, check=False)
