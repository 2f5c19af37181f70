"""[task.NAME] tables for tasks this run does not have, and [task.main] (README "Supervision
and pyinit.toml"): `docker run IMAGE other-cmd` must start; `--check` keeps typos visible."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(60)
TOML = (
    '[task.main]\nrestart = "on-failure"\nmax_restarts = 0\n'
    '[task.gunicorn]\nsignal_target = "pid"\n'
)


def pyinit(workdir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pyinit", "-w", str(workdir), *args],
        capture_output=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_another_main_command_starts_with_a_warning(tmp_path: Path) -> None:
    """An image's pyinit.toml with [task.gunicorn] should not stop `... -- sh -c 'exit 4'`:
    it runs (status 4) and a warning names the table."""
    (tmp_path / "pyinit.toml").write_text(TOML)
    done = pyinit(tmp_path, "--", "sh", "-c", "exit 4")
    assert done.returncode == 4, done.stderr
    assert b"[task.gunicorn]: no task named 'gunicorn' in this run" in done.stderr


def test_check_lists_the_warning_and_exits_1(tmp_path: Path) -> None:
    """--check should print the plan, then the warning on stderr, and exit 1 (errors: 2)."""
    (tmp_path / "pyinit.toml").write_text(TOML)
    done = pyinit(tmp_path, "--check", "--", "sh")
    assert done.returncode == 1
    assert b"pyinit: warning: " in done.stderr
    assert b"restart on-failure" in done.stdout  # [task.main] reached the main command


def test_check_speaks_like_a_person_and_hides_env_values(tmp_path: Path) -> None:
    """--check should show a task's settings as written: signal names, seconds, and env keys
    with their values masked (no secret in a CI log), never Python reprs."""
    (tmp_path / "pyinit.toml").write_text(
        '[task.main]\nstop_signal = "QUIT"\nrestart_delay = 0.5\nsignals = ["HUP"]\n'
        'env = { SECRET_TOKEN = "hunter2" }\n'
    )
    done = pyinit(tmp_path, "--check", "--", "sh")
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.decode().splitlines() if ln.startswith("task sh:"))
    assert "stop_signal=SIGQUIT" in line
    assert "restart_delay=0.5s" in line
    assert "signals=[SIGHUP]" in line
    assert "env={SECRET_TOKEN=***}" in line
    assert b"hunter2" not in done.stdout
