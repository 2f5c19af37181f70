"""systemd's Type=notify and Kubernetes' termination log (spec §9)."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from conftest import StartPyinit

pytestmark = pytest.mark.timeout(30)


def bound_socket(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    return sock


def receive(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_notify_ready_then_stopping(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path, abstract: bool
) -> None:
    """With NOTIFY_SOCKET set, pyinit should send READY=1 once boot is done and the async tasks
    are started, STATUS= on a restart, and STOPPING=1 when it shuts down; the tasks must not
    inherit NOTIFY_SOCKET (only pyinit speaks for the service)."""
    name = f"pyinit-test-{tmp_path.name}"
    address = "\0" + name if abstract else str(tmp_path / "notify.sock")
    sock = bound_socket(address)
    marker = tmp_path / "booted"
    run = run_pyinit(
        mode,
        [
            "-B",
            f"touch {marker}",
            "-D",
            'echo "task sees [${NOTIFY_SOCKET:-}]"; exec sleep 1000',
            "-D",
            "exit 3",
            "--restart",
            "on-failure",
            "--restart-delay",
            "0.1",
            "--max-restarts",
            "1",
            "--wait",
            "wait_forever",
        ],
        env={"NOTIFY_SOCKET": "@" + name if abstract else address},
    )
    try:
        assert receive(sock) == "READY=1"
        assert marker.exists()  # boot was done before READY=1
        assert receive(sock).startswith("STATUS=D2 exited (exitcode=3), restart 1")
        run.expect(r"task sees \[\]", "stdout")
        run.signal(signal.SIGTERM)
        assert receive(sock) == "STOPPING=1"
        assert run.wait() == 143
    finally:
        sock.close()


def test_termination_log_names_the_task_and_status(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """When the termination-log file exists, pyinit should write one line there saying which
    task ended the run and with what status (what `kubectl describe pod` shows)."""
    log = tmp_path / "termination-log"
    log.write_text("")
    run = run_pyinit(
        mode, ["-D", "exit 4", "--", "sleep", "30"], env={"PYINIT_TERMINATION_LOG": str(log)}
    )
    assert run.wait() == 4
    text = log.read_text()
    assert text.count("\n") == 1
    assert "D1" in text
    assert "4" in text


def test_no_termination_log_when_the_file_is_absent(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """pyinit should not create the termination log: only Kubernetes decides it exists."""
    log = tmp_path / "termination-log"
    run = run_pyinit(mode, ["--", "sh", "-c", "exit 6"], env={"PYINIT_TERMINATION_LOG": str(log)})
    assert run.wait() == 6
    assert not log.exists()
