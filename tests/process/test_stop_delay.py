"""`stop_delay` (docs/tasks.md "stop_delay"): at shutdown, a task with a stop_delay keeps
running for that long before it gets its stop signal (Kubernetes' preStop sleep, built in),
its grace counting from then; a foreground item with one does not get the first SIGTERM from
the signal handler either. Real processes, PID 1 and subreaper.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Run, StartPyinit, pyinit_once

pytestmark = pytest.mark.timeout(60)
TRAP = "trap 'echo \"TERM $(date +%s.%N)\"; exit 0' TERM; echo up; while :; do sleep 0.05; done"


def term_time(run: Run, name: str) -> float:
    line = run.expect(rf"^{name}: TERM ", stream="stdout").decode()
    return float(line.split()[-1])


def test_a_stop_delay_holds_the_stop_signal(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    (tmp_path / "pyinit.toml").write_text("[task.D2]\nstop_delay = 1.0\n")
    run = run_pyinit(
        mode,
        ["-v", "-w", str(tmp_path), "--wait", "wait_forever", "-D", TRAP, "-D", TRAP],
    )
    run.expect(r"^D1: up", stream="stdout")
    run.expect(r"^D2: up", stream="stdout")
    run.signal(15)
    run.expect(r"D2 keeps running for its stop_delay of 1s")
    first, delayed = term_time(run, "D1"), term_time(run, "D2")
    assert 0.9 <= delayed - first < 3, (first, delayed)
    assert run.wait() == 143


def test_a_stop_delay_on_the_main_command(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """the handler's first SIGTERM must not reach it: it gets it from the shutdown, later."""
    (tmp_path / "pyinit.toml").write_text("[task.main]\nstop_delay = 1.0\n")
    run = run_pyinit(mode, ["-v", "-w", str(tmp_path), "-D", TRAP, "--", "bash", "-c", TRAP])
    run.expect(r"^D1: up", stream="stdout")
    run.expect(r"^up", stream="stdout")
    run.signal(15)
    first = term_time(run, "D1")
    line = run.expect(r"^TERM ", stream="stdout").decode()
    assert 0.9 <= float(line.split()[-1]) - first < 3, (first, line)
    assert run.wait() == 0, run.text()  # the main command's own status, as without a delay


def test_check_counts_the_stop_delay(tmp_path: Path) -> None:
    (tmp_path / "pyinit.toml").write_text("[task.D1]\nstop_delay = 10\n")
    done = pyinit_once("--check", "-w", str(tmp_path), "-D", "sleep 9")
    assert "stop budget: up to 15s (stop_delay + grace 15s)" in done.stdout, done.stdout
    assert "stop_delay=10s" in done.stdout
