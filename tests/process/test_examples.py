"""The docker/ examples, run black-box the way their Dockerfiles run them: pyinit as PID 1.

Each test copies an example directory (docker/trc-way, docker/pyinit-way) to tmp_path and starts
`unshare --pid --fork --mount-proc --kill-child python -m pyinit ... -w COPY`, so pyinit is
PID 1 of a fresh PID namespace, as in a container. The programs are the stand-ins from
docker/bin (fake-nc, fake-ss), and the FIFOs of the TrivialRC way go to tmp_path
(PM_RUN_DIR), so tests never share anything.

The output (stdout and stderr on one pipe) is read as it comes, and every step waits for
the line it expects, with a deadline: no fixed sleeps.
"""

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from conftest import ROOT

STAND_INS = ROOT / "docker" / "bin"
WAIT = 20.0  # seconds for any one expected line: generous for a loaded CI machine
# pyinit's own lines: `2026-11-27 10:00:00 pyinit [async/123]: message` (spec §7).
LOG = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d pyinit \[(main|async|sync|halt)/(\d+)\]: "
TASK_LOG = LOG.replace("(main|async|sync|halt)", "(async)")  # a task's log/warn line
# The variables that would change what the examples do, whatever the caller's environment has.
CLEAN_ENV = (
    "NETLISTENER_CMD",
    "NETMON_CMD",
    "NETSENDER_CMD",
    "PM_RUN_DIR",
    "NOTIFY_SOCKET",
    "RC_WORK_DIR",
    "RC_WAIT_POLICY",
    "RC_VERBOSE",
    "RC_VERBOSE_EXTRA",
    "RC_DEBUG",
)


def _can_unshare() -> bool:
    try:
        probe = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "true"]
        return subprocess.run(probe, check=False, capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not _can_unshare(), reason="needs unshare --pid --mount-proc (root or user namespaces)"
    ),
]


class Pid1Run:
    """pyinit as PID 1 of a new PID namespace, with its output read line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        argv = [
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "--kill-child",
            sys.executable,
            "-m",
            "pyinit",
            *args,
        ]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.lines: list[str] = []
        self._partial = b""
        self.eof = False
        self.cursor = 0

    def _read(self, timeout: float) -> None:
        """Wait up to `timeout` for output; append the complete lines that came."""
        if self.eof or not select.select([self.fd], [], [], max(timeout, 0))[0]:
            return
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:  # select said readable, but another reader was faster
            return
        if not data:
            self.eof = True
            data = b"\n" if self._partial else b""  # keep a last line without newline
        *complete, self._partial = (self._partial + data).split(b"\n")
        self.lines += [line.decode(errors="replace") for line in complete]

    def wait_for(self, pattern: str, since: int = 0, timeout: float = WAIT) -> re.Match[str]:
        """The first line at index >= `since` that matches; fail after `timeout` seconds.

        Afterwards `self.cursor` is the index just past that line: pass it as `since` to
        wait for something that must come after it.
        """
        deadline = time.monotonic() + timeout
        index = since
        while True:
            while index < len(self.lines):
                if match := re.search(pattern, self.lines[index]):
                    self.cursor = index + 1
                    return match
                index += 1
            if self.eof or time.monotonic() > deadline:
                pytest.fail(f"no line matching {pattern!r}; output:\n" + self.output())
            self._read(deadline - time.monotonic())

    def output(self) -> str:
        return "\n".join(self.lines)

    def init(self) -> psutil.Process:
        """pyinit itself: the child unshare forked, PID 1 inside the namespace."""
        deadline = time.monotonic() + WAIT
        while not (children := psutil.Process(self.proc.pid).children()):
            assert time.monotonic() < deadline, "unshare started no child"
            time.sleep(0.01)
        return children[0]

    def program(self, name: str, *args: str, not_pid: int = 0) -> psutil.Process:
        """The one running process (not `not_pid`) whose command line runs `name` with `args`."""
        deadline = time.monotonic() + WAIT
        while True:
            for proc in self.init().children(recursive=True):
                try:
                    cmdline = proc.cmdline()
                except psutil.NoSuchProcess:  # it ended while we looked: not the one
                    continue
                runs = any(Path(word).name == name for word in cmdline)
                if runs and set(args) <= set(cmdline) and proc.pid != not_pid:
                    return proc
            assert time.monotonic() < deadline, f"no {name} {args}:\n" + self.output()
            time.sleep(0.05)

    def finish(self, timeout: float = WAIT) -> int:
        """Read to the end of the output and return unshare's (= pyinit's) exit status."""
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        return self.proc.wait(max(deadline - time.monotonic(), 0.1))

    def kill(self) -> None:
        """Cleanup: SIGKILL to unshare kills pyinit (--kill-child), and so the namespace."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def copy_example(name: str, tmp_path: Path) -> Path:
    """docker/NAME copied to tmp_path/app (exec bits kept), as the Dockerfile copies it."""
    app = tmp_path / "app"
    shutil.copytree(ROOT / "docker" / name, app)
    return app


Start = Callable[..., Pid1Run]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """`start(args, **env)`: pyinit ARGS as PID 1, the stand-ins on PATH; killed at the end."""
    runs: list[Pid1Run] = []

    def _start(args: list[str], **env: str) -> Pid1Run:
        environ = {
            k: v
            for k, v in os.environ.items()
            if k not in CLEAN_ENV and not k.startswith("PYINIT_")
        }
        run_dir = tmp_path / "run"  # the TrivialRC way's FIFOs, instead of /tmp
        run_dir.mkdir()
        environ |= {
            "PATH": f"{STAND_INS}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
            "PYTHONPATH": str(ROOT),
            "PM_RUN_DIR": str(run_dir),
            **env,
        }
        runs.append(Pid1Run(args, environ))
        return runs[-1]

    yield _start
    for run in runs:
        run.kill()


def test_trc_way_runs_unchanged_in_trivialrc_mode(start: Start, tmp_path: Path) -> None:
    """should run the seed's hand-made trc.d as TrivialRC did: loops restart, halt cleans up"""
    app = copy_example("trc-way", tmp_path)
    run = start(["--compat=trc", "-w", str(app)], RC_VERBOSE="true")  # as its Dockerfile
    trcd = re.escape(str(app / "trc.d"))
    for task in ("netlistener", "netlistener-logger", "netmon", "netmon-logger", "netsender"):
        run.wait_for(TASK_LOG + rf"Launching in the background: {trcd}/async\.{task}$")
    fifos = [tmp_path / "run" / "netmon.pipe", tmp_path / "run" / "netlistener.pipe"]
    assert all(fifo.is_fifo() for fifo in fifos), "boot made the FIFOs in PM_RUN_DIR"
    # The logger tasks prefix the programs' lines themselves (TrivialRC mode adds nothing).
    run.wait_for(r"^netlistener: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d ")
    run.wait_for(r"^netmon: State +Recv-Q")
    first = run.wait_for(TASK_LOG + r"Start monitoring TCP activity\.\.\.$")
    after_first = run.cursor

    # Kill the monitor: the task's own loop warns, then starts it again, in the same task.
    run.program("fake-ss").terminate()
    run.wait_for(TASK_LOG + r"Monitoring tool has stopped working!$", since=after_first)
    again = run.wait_for(TASK_LOG + r"Start monitoring TCP activity\.\.\.$", run.cursor)
    assert again.group(2) == first.group(2), "restarted by the loop of the same async task"
    run.wait_for(r"^netmon: State +Recv-Q", since=run.cursor)

    # The same for the listener (not the sender, which runs fake-nc too).
    run.program("fake-nc", "-kl").terminate()
    run.wait_for(TASK_LOG + r"The network listener has stopped working!$")
    run.wait_for(TASK_LOG + r"Start a network listener on the port 1234\.\.\.$", run.cursor)
    run.wait_for(r"^netlistener: \w{3} ", since=run.cursor)

    # docker stop / systemctl stop: SIGTERM to PID 1.
    stop = len(run.lines)
    run.init().send_signal(signal.SIGTERM)
    run.wait_for(LOG + r"Trying to terminate sub-processes\.\.\.$", since=stop)
    run.wait_for(LOG + rf"Running the shutdown script: {trcd}/halt\.remove-logs$", run.cursor)
    run.wait_for(LOG + r"Exited \(exitcode=143\)$", since=run.cursor)
    assert run.finish() == 143, run.output()
    assert not any(fifo.exists() for fifo in fifos), "halt removed the FIFOs"


def test_pyinit_way_restarts_and_prefixes(start: Start, tmp_path: Path) -> None:
    """should restart a killed program itself, prefix its lines and stop with 143 on TERM"""
    app = copy_example("pyinit-way", tmp_path)
    run = start(["-w", str(app), "--"])  # as its Dockerfile's ENTRYPOINT
    run.wait_for(r"^netlistener: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d ")
    run.wait_for(r"^netmon: State +Recv-Q")

    victim = run.program("fake-ss")
    for _ in range(2):
        killed = len(run.lines)
        victim.terminate()
        # pyinit logs each restart at the default verbosity (spec §5). The wording is the
        # engine's: a line of pyinit's that says "restart" and names the task or its pid.
        line = run.wait_for(LOG + r"(?i:.*restart)", since=killed)
        assert "netmon" in line.string or line.group(2) == str(victim.pid), line.string
        run.wait_for(r"^netmon: State +Recv-Q", since=run.cursor)  # the new run prints again
        victim = run.program("fake-ss", not_pid=victim.pid)

    stop = len(run.lines)
    run.init().send_signal(signal.SIGTERM)
    # No main command: stopped by signal 15 gives 128+15 (spec §8), and pyinit (PID 1) says
    # so by default: the final status is one of the lines printed at any verbosity (spec §7).
    assert run.finish() == 143, run.output()
    run.wait_for(r"pyinit \[main/1\]: .*\(exitcode=143\)$", since=stop, timeout=0)


def test_one_file_way_restarts_and_prefixes(start: Start, tmp_path: Path) -> None:
    """the group declared in one pyinit.toml (docker/one-file, no trc.d/) should run the same:
    prefixed lines, a killed program restarted, and 143 on TERM"""
    app = copy_example("one-file", tmp_path)
    assert not (app / "trc.d").exists()
    run = start(["-w", str(app), "--"])
    run.wait_for(r"^netlistener: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d ")
    run.wait_for(r"^netmon: State +Recv-Q")
    victim = run.program("fake-ss")
    killed = len(run.lines)
    victim.terminate()
    run.wait_for(LOG + r"netmon exited .*: restart 1 in 1s", since=killed)
    run.wait_for(r"^netmon: State +Recv-Q", since=run.cursor)
    stop = len(run.lines)
    run.init().send_signal(signal.SIGTERM)
    assert run.finish() == 143, run.output()
    run.wait_for(r"pyinit \[main/1\]: .*\(exitcode=143\)$", since=stop, timeout=0)
