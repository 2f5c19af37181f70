"""pyinit as a process: subreaper and name when not PID 1 (with python-prctl and with the
ctypes fallback), tini's -p, and a stdout that stalls or breaks (spec §6-§7)."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from conftest import NS_INIT, PYINIT, ROOT, UNSHARE_OK, Run, child

pytestmark = pytest.mark.timeout(30)

needs_ns = pytest.mark.skipif(not UNSHARE_OK, reason="needs root for unshare --pid")


@pytest.fixture(params=["python-prctl", "ctypes"])
def prctl_backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Environment that makes pyinit use python-prctl, or the ctypes fallback (prctl hidden)."""
    if request.param == "python-prctl":
        try:
            import _prctl  # noqa: F401
        except ImportError:
            pytest.skip("python-prctl is not installed (the prctl extra)")
        return {}
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['_prctl'] = None\n")
    return {"PYTHONPATH": f"{tmp_path}:{ROOT}"}


@needs_ns
def test_orphans_come_to_pyinit_when_it_is_not_pid1(prctl_backend: dict[str, str]) -> None:
    """Not PID 1, pyinit should make itself the child subreaper, so an orphan's new parent is
    pyinit and not the namespace's PID 1; and its process name should be `pyinit`."""
    run = Run(
        "subreaper", ["-vv", "--", sys.executable, child("adopted_reporter.py")], env=prctl_backend
    )
    try:
        with open(f"/proc/{run.pid}/comm") as f:
            assert f.read().strip() == "pyinit"
        line = run.expect("^adopted", "stdout")
        assert line.split()[1] == b"True", line
        assert run.wait() == 0
        assert "registered as the child subreaper" in run.text()
    finally:
        run.kill()


def test_procctl_backends_agree(prctl_backend: dict[str, str]) -> None:
    """Both prctl paths should set and read the subreaper flag and the name the same way, and
    neither should load the `ctypes` package (the fallback calls libc through `_ctypes`)."""
    code = (
        "import sys\n"
        "from pyinit import procctl\n"
        "procctl.set_child_subreaper(); procctl.set_name('pyinit-test-name-longer-than-15')\n"
        "print(procctl.BACKEND, procctl.is_child_subreaper(), open('/proc/self/comm').read(),"
        " 'ctypes' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), **prctl_backend}
    out = (
        subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, check=True, timeout=20
        )
        .stdout.decode()
        .split()
    )
    expected = "ctypes" if prctl_backend else "python-prctl"
    assert out == [expected, "True", "pyinit-test-nam", "False"]  # the kernel keeps 15 bytes


@needs_ns
def test_parent_death_signal() -> None:
    """tini's -p SIG: when pyinit's parent dies, pyinit gets SIG, as if sent to it."""
    main = "trap 'echo got HUP; exit 0' HUP; echo ready; while :; do sleep 0.1; done"
    inner = " ".join([*PYINIT, "-p", "SIGHUP", "--", "sh", "-c", repr(main)])
    parent = f"{inner} & sleep 1"  # the parent sh exits after 1 s; pyinit lives on
    cmd = [
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        sys.executable,
        str(NS_INIT),
        "sh",
        "-c",
        parent,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NS_INIT_WAIT_ALL": "1"}
    result = subprocess.run(cmd, capture_output=True, env=env, timeout=20, check=False)
    assert b"got HUP" in result.stdout, result


@pytest.mark.timeout(60)
def test_stalled_stdout_does_not_stop_signals(mode: str) -> None:
    """With pyinit's stdout a full pipe nobody reads, pyinit should still forward signals,
    and on SIGTERM still stop and exit with the command's status."""
    r, w = os.pipe()
    marker = f"/tmp/pyinit-test-stall-{os.getpid()}-{mode}"
    main = (
        f"trap 'touch {marker}' USR1; trap 'exit 7' TERM; echo ready >&2; "
        "while :; do sleep 0.05; done"
    )
    flood = "trap '' USR1; exec yes"  # floods stdout; USR1 is for the command only
    run = Run(mode, ["-vv", "--grace", "2", "-D", flood, "--", "sh", "-c", main], stdout=w)
    os.close(w)
    try:
        pid = run.pid
        run.expect("^ready")  # its traps are set
        deadline = time.monotonic() + 10
        buf = bytearray(4)
        while time.monotonic() < deadline:  # wait until the pipe is full: the stall is real
            fcntl.ioctl(r, termios.FIONREAD, buf)
            if int.from_bytes(buf, sys.byteorder) >= 65536:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("pyinit's stdout never filled up")
        os.kill(pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.path.exists(marker), "USR1 did not reach the command: " + run.text()
        os.kill(pid, signal.SIGTERM)
        assert run.wait(20) == 7
    finally:
        run.kill()
        os.close(r)
        if os.path.exists(marker):
            os.unlink(marker)


@pytest.mark.timeout(60)
def test_closed_stdout_does_not_kill_pyinit(mode: str) -> None:
    """With nobody reading pyinit's stdout (EPIPE), pyinit should keep supervising and exit
    with the command's status."""
    r, w = os.pipe()
    os.close(r)
    run = Run(mode, ["-D", "yes", "--", "sh", "-c", "sleep 1; exit 3"], stdout=w)
    os.close(w)
    try:
        assert run.wait() == 3
        assert "Traceback" not in run.text()
    finally:
        run.kill()


def test_terminal_foreground_and_ctrl_c(mode: str) -> None:
    """On a terminal, the command should be the terminal's foreground process group, so Ctrl-C
    reaches it (and it ends with 130), as in `docker run -it image pyinit -- sh`."""
    master, slave = os.openpty()

    def take_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    # `exec`: dash holds a ^C back while it starts a child; the sleep itself gets it at once.
    script = 'echo "fg $(ps -o tpgid= -p $$) $(ps -o pgid= -p $$)"; exec sleep 30'
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    from conftest import command

    proc = subprocess.Popen(
        command(mode, ["--", "sh", "-c", script]),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=take_terminal,  # noqa: PLW1509 - no threads here
        env=env,
    )
    os.close(slave)
    try:
        out = b""
        deadline = time.monotonic() + 10
        while not re.search(rb"fg +\d+ +\d+\s", out):
            assert time.monotonic() < deadline, out
            out += os.read(master, 1024)
        words = out[out.index(b"fg ") :].split()
        assert words[1] == words[2], f"not the foreground group: {out!r}"
        os.write(master, b"\x03")
        assert proc.wait(10) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
