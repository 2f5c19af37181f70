"""Signals reach the whole group the command runs in, and the stop signals end the run (spec §6)."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from conftest import Run, StartPyinit, child

pytestmark = pytest.mark.timeout(30)


FORWARDED = [
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
    signal.SIGCONT,
    signal.SIGALRM,
    signal.SIGABRT,
    signal.SIGURG,
    signal.SIGXCPU,
    signal.SIGVTALRM,
    signal.SIGPROF,
    signal.SIGTSTP,
    signal.SIGPWR,
    signal.SIGSYS,
    signal.SIGTRAP,
    signal.SIGRTMIN,
    signal.SIGRTMIN + 5,
    signal.SIGRTMAX,
]
STOPPING = [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT]


def start_catcher(run_pyinit: StartPyinit, mode: str, extra: list[str] | None = None) -> Run:
    numbers = [str(int(s)) for s in FORWARDED + STOPPING]
    run = run_pyinit(
        mode, [*(extra or []), "--", sys.executable, child("signal_catcher.py"), *numbers]
    )
    run.expect(r"^parent ready", "stdout")
    run.expect(r"^child ready", "stdout")
    return run


@pytest.mark.timeout(60)
def test_every_signal_reaches_the_whole_group(mode: str, run_pyinit: StartPyinit) -> None:
    """Each catchable signal sent to pyinit should reach the command and its child (the group)."""
    run = start_catcher(run_pyinit, mode)
    for signum in FORWARDED:
        run.signal(signum)
        run.expect(rf"^parent {int(signum)}$", "stdout")
        run.expect(rf"^child {int(signum)}$", "stdout")
    run.signal(signal.SIGTERM)
    assert run.wait() == 0  # the command got TERM and chose its status (as with tini)
    assert run.expect(r"^child 15$", "stdout")


@pytest.mark.parametrize("signum", STOPPING)
def test_stop_signals_reach_the_command_which_decides_the_status(
    mode: str, run_pyinit: StartPyinit, signum: int
) -> None:
    """TERM, INT and QUIT should stop the run: the command gets the signal itself and its exit
    status becomes pyinit's. SIGINT must not kill pyinit with a KeyboardInterrupt."""
    run = start_catcher(run_pyinit, mode)
    run.signal(signum)
    assert run.wait() == 0
    run.expect(rf"^parent {int(signum)}$", "stdout")
    assert "Traceback" not in run.text()


def test_rewrite_maps_one_signal_to_another(mode: str, run_pyinit: StartPyinit) -> None:
    """--rewrite USR1:USR2 should forward USR2 when pyinit gets USR1; a target 0 drops it."""
    run = start_catcher(run_pyinit, mode, ["--rewrite", "USR1:USR2", "--rewrite", "HUP:0"])
    run.signal(signal.SIGHUP)
    run.signal(signal.SIGUSR1)
    run.expect(rf"^parent {int(signal.SIGUSR2)}$", "stdout")
    run.signal(signal.SIGTERM)
    run.wait()
    lines = run.text("stdout").splitlines()
    assert f"parent {int(signal.SIGHUP)}" not in lines
    assert f"parent {int(signal.SIGUSR1)}" not in lines


def test_single_child_signals_only_the_command(mode: str, run_pyinit: StartPyinit) -> None:
    """-c should send signals to the command's pid only, not to the rest of its group."""
    run = start_catcher(run_pyinit, mode, ["-c"])
    run.signal(signal.SIGUSR1)
    run.expect(rf"^parent {int(signal.SIGUSR1)}$", "stdout")
    run.signal(signal.SIGHUP)
    run.expect(rf"^parent {int(signal.SIGHUP)}$", "stdout")
    assert f"child {int(signal.SIGUSR1)}" not in run.text("stdout").splitlines()
    run.signal(signal.SIGTERM)
    run.wait()


def test_stubborn_command_is_killed_after_the_grace(mode: str, run_pyinit: StartPyinit) -> None:
    """A command that ignores SIGTERM should get SIGKILL after --grace, and the run still end,
    with status 137."""
    run = run_pyinit(
        mode,
        ["--grace", "1", "--", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
    )
    run.expect("^ready", "stdout")
    start = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait() == 137
    assert 0.9 < time.monotonic() - start < 5
    assert "SIGKILL" in run.text()


def test_timeout_gives_124(mode: str, run_pyinit: StartPyinit) -> None:
    """--timeout should stop everything when it expires and exit 124, as timeout(1)."""
    start = time.monotonic()
    run = run_pyinit(mode, ["--timeout", "0.5", "--", "sleep", "30"])
    assert run.wait() == 124
    assert time.monotonic() - start < 5
