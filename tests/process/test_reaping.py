"""Every zombie is reaped, orphans included, and nothing outlives pyinit (spec §6)."""

from __future__ import annotations

import signal
import sys
import time

import psutil
import pytest

from conftest import StartPyinit, child

pytestmark = pytest.mark.timeout(30)


def children_of(pid: int) -> list[psutil.Process]:
    children: list[psutil.Process] = psutil.Process(pid).children()
    return children


@pytest.mark.timeout(180)
def test_a_thousand_orphans_are_reaped(mode: str, run_pyinit: StartPyinit) -> None:
    """1000 orphaned zombies should all be reaped while the command keeps running, and the
    command's status should not be mixed up with theirs (they exit 7, it exits 143)."""
    run = run_pyinit(mode, ["--", sys.executable, child("orphans_at_once.py"), "1000"])
    run.expect("^orphaned 1000", "stdout", timeout=90)  # 2000 forks: slow on a busy host
    # Released orphans may still be exiting: wait until the command is pyinit's only child
    # (every orphan has exited and been reaped), which only holds once they all are.
    deadline = time.monotonic() + 30
    while len(children_of(run.pid)) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    (command,) = children_of(run.pid)
    assert command.status() != psutil.STATUS_ZOMBIE
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


LEFTOVERS = r"""
trap '' HUP
sleep 1000 &                                   # stays in the command's group
setsid sh -c 'sleep 1000' &                    # a new session: out of the group
(sh -c 'sleep 1000 & echo $! > /dev/null' &)   # double fork: an orphan
echo started
exit 5
"""


def test_nothing_outlives_pyinit(mode: str, run_pyinit: StartPyinit) -> None:
    """When the command exits, its group, processes that left it and orphans should all be
    stopped before pyinit exits with the command's status."""
    run = run_pyinit(mode, ["-v", "--grace", "2", "--", "sh", "-c", LEFTOVERS])
    run.expect("^started", "stdout")
    assert run.wait() == 5
    if mode == "subreaper":
        assert run.left_running() == 0, run.text()


def test_leftovers_that_ignore_sigterm_are_killed(mode: str, run_pyinit: StartPyinit) -> None:
    """An escaped process that ignores SIGTERM should get SIGKILL at the end of the grace."""
    script = "setsid sh -c \"trap '' TERM; while :; do sleep 0.1; done\" & echo started; exit 0"
    run = run_pyinit(mode, ["--grace", "1", "--", "sh", "-c", script])
    run.expect("^started", "stdout")
    start = time.monotonic()
    assert run.wait() == 0
    assert time.monotonic() - start < 5
    if mode == "subreaper":
        assert run.left_running() == 0, run.text()


def test_idle_pyinit_makes_no_system_calls(mode: str, run_pyinit: StartPyinit) -> None:
    """An idle pyinit should sleep in one epoll_wait: no wake-ups at all (tini polls every
    second). Counted with the kernel's context-switch counters over 1.5 s."""
    run = run_pyinit(mode, ["--", "sleep", "30"])
    pid = run.pid
    time.sleep(0.5)  # start-up work done; what follows is measured, not waited for

    def switches() -> int:
        with open(f"/proc/{pid}/status") as f:
            return sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)

    before = switches()
    time.sleep(1.5)
    assert switches() == before
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


def test_an_internal_error_kills_everything_and_exits_70(
    mode: str, run_pyinit: StartPyinit
) -> None:
    """A bug in pyinit itself should not leave processes behind: pyinit says so (with the
    traceback), SIGKILLs every task and leftover, and exits 70 (EX_SOFTWARE)."""
    args = ["-D", "exec sleep 1000", "--", "sh", "-c", "setsid sleep 1000 & exec sleep 1000"]
    run = run_pyinit(mode, args, python_args=[child("buggy_pyinit.py")])
    assert run.wait() == 70
    assert "internal error" in run.text()
    assert "a planted bug" in run.text()
    if mode == "subreaper":
        assert run.left_running() == 0, run.text()
