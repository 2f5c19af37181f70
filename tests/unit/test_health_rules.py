"""The health rules with fakes and a fake clock (pyinit/health.py, docs/health.md): when a
check is due, how failures are counted (retries, start_period, a success resetting the
count), the watchdog's silence and trigger, and the group's verdict. No process, no socket:
`file:` checks and WATCHDOG messages are answered at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pyinit.health import Health
from pyinit.ready import HealthSettings, parse_health

pytestmark = pytest.mark.timeout(10)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Core:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock


class Item:
    stage = "async"


class Life:
    failed = False


class Settings:
    def __init__(self, health: HealthSettings, cwd: str) -> None:
        self.health = health
        self.cwd = cwd


class Task:
    def __init__(self, name: str, health: HealthSettings, cwd: str) -> None:
        self.name = name
        self.settings = Settings(health, cwd)
        self.item = Item()
        self.life = Life()
        self.since = 0.0
        self.running = self.ready = True
        self.held = False
        self.kill_at = None
        self.pid = 42
        self.unhealthy = ""
        self.health_output = b""


class Tasks:
    """What Health asks of tasks.py; `sick` and `healthy_again` are recorded."""

    def __init__(self) -> None:
        self.all: list[Task] = []
        self.stopping = False
        self.cwd = None
        self.said: list[tuple[str, str, str]] = []
        self.listeners: list[Callable[..., None]] = []

    def on_event(self, callback: Callable[..., None]) -> None:
        self.listeners.append(callback)

    def latest_runs(self) -> list[Task]:
        runs: dict[str, Task] = {}
        for task in self.all:
            runs[task.name] = task
        return list(runs.values())

    def sick(self, task: Task, reason: str, brief: str) -> None:
        task.unhealthy = reason
        self.said.append(("sick", reason, brief))

    def healthy_again(self, task: Task) -> None:
        if task.unhealthy:
            task.unhealthy = ""
            self.said.append(("healthy", "", ""))


def setup(tmp_path: Path, **table: object) -> tuple[Clock, Tasks, Health, Task]:
    clock = Clock()
    tasks = Tasks()
    health = Health(Core(clock), tasks, lambda *a: 0)  # type: ignore[arg-type]
    settings = parse_health({"check": "file:flag", **table}, "task.t.health")
    task = Task("t", settings, str(tmp_path))
    task.since = clock.now
    tasks.all.append(task)
    health.tick()  # the run is watched from now: its clock starts
    return clock, tasks, health, task


def run_until(clock: Clock, health: Health, until: float) -> None:
    """Wake at every deadline Health gives, as the loop does, until `until`."""
    while True:
        due = health.next_deadline(clock.now)
        if due is None or due > until:
            clock.now = until
            return
        assert due >= clock.now, "a deadline in the past would spin the loop"
        clock.now = due
        health.tick()


def test_retries_failures_in_a_row_make_it_unhealthy_once(tmp_path: Path) -> None:
    clock, tasks, health, _task = setup(tmp_path, interval=2, retries=3)
    assert health.next_deadline(clock.now) == clock.now + 2  # the first check: interval after
    run_until(clock, health, clock.now + 5.9)
    assert tasks.said == []  # two failures
    run_until(clock, health, clock.now + 0.2)
    assert tasks.said == [("sick", "3 checks failed (no file flag)", "no file flag x3")]
    run_until(clock, health, clock.now + 20)
    assert len(tasks.said) == 1  # said once, not at every failure after


def test_a_success_resets_the_count_and_says_healthy_again(tmp_path: Path) -> None:
    clock, tasks, health, task = setup(tmp_path, interval=1, retries=2)
    run_until(clock, health, clock.now + 1.5)  # one failure
    (tmp_path / "flag").write_text("")
    run_until(clock, health, clock.now + 1)  # a success
    (tmp_path / "flag").unlink()
    run_until(clock, health, clock.now + 1)  # one failure again: not two in a row
    assert tasks.said == []
    run_until(clock, health, clock.now + 1)
    assert [s[0] for s in tasks.said] == ["sick"]
    (tmp_path / "flag").write_text("")
    run_until(clock, health, clock.now + 1)
    assert [s[0] for s in tasks.said] == ["sick", "healthy"]
    assert health.word(task) == "healthy"  # type: ignore[arg-type]


def test_start_period_forgives_failures_before_the_first_success(tmp_path: Path) -> None:
    clock, tasks, health, _task = setup(tmp_path, interval=1, retries=1, start_period=5)
    run_until(clock, health, clock.now + 4.5)
    assert tasks.said == []  # four failures, all within the start period
    run_until(clock, health, clock.now + 1)
    assert [s[0] for s in tasks.said] == ["sick"]  # the start period is over


def test_start_period_ends_at_the_first_success(tmp_path: Path) -> None:
    clock, tasks, health, _task = setup(tmp_path, interval=1, retries=1, start_period=60)
    (tmp_path / "flag").write_text("")
    run_until(clock, health, clock.now + 1.5)
    (tmp_path / "flag").unlink()
    run_until(clock, health, clock.now + 1)
    assert [s[0] for s in tasks.said] == ["sick"]


def test_a_stopping_or_unready_task_is_not_checked(tmp_path: Path) -> None:
    clock, tasks, health, task = setup(tmp_path, interval=1, retries=1)
    task.ready = False
    clock.now += 10
    health.tick()
    assert health.next_deadline(clock.now) is None  # nothing watched: the loop may sleep
    task.ready = True
    task.since = clock.now  # a new run
    health.tick()
    run_until(clock, health, clock.now + 1.5)
    assert [s[0] for s in tasks.said] == ["sick"]


def test_the_watchdog(tmp_path: Path) -> None:
    clock, tasks, health, task = setup(tmp_path)
    settings = parse_health({"check": "watchdog", "timeout": 3}, "task.t.health")
    task.settings.health = settings
    task.since += 1  # a new run, with the watchdog table
    health.tick()
    start = clock.now
    assert health.next_deadline(clock.now) == start + 3
    for _ in range(5):  # a ping every 2 s keeps it healthy
        run_until(clock, health, clock.now + 2)
        health.watchdog(task, "1")  # type: ignore[arg-type]
    assert tasks.said == []
    run_until(clock, health, clock.now + 3.5)
    assert tasks.said == [("sick", "no WATCHDOG=1 for 3s", "no WATCHDOG=1 for 3s")]
    health.watchdog(task, "1")  # type: ignore[arg-type]
    assert tasks.said[-1][0] == "healthy"
    health.watchdog(task, "trigger")  # type: ignore[arg-type]
    assert tasks.said[-1] == ("sick", "it sent WATCHDOG=trigger", "WATCHDOG=trigger")


def test_the_watchdog_waits_for_start_period_before_the_first_ping(tmp_path: Path) -> None:
    clock, _tasks, health, task = setup(tmp_path)
    task.settings.health = parse_health(
        {"check": "watchdog", "timeout": 1, "start_period": 10}, "task.t.health"
    )
    task.since += 1
    health.tick()
    assert health.next_deadline(clock.now) == clock.now + 10


def test_the_groups_verdict(tmp_path: Path) -> None:
    clock, _tasks, health, task = setup(tmp_path, interval=1, retries=1)
    assert health.healthy() == (True, [])
    run_until(clock, health, clock.now + 1.5)
    assert health.healthy() == (False, ["t"])
    task.settings.health = parse_health({"check": "tcp:1", "critical": False}, "x")
    assert health.healthy() == (True, [])  # left out
    task.settings.health = parse_health({"check": "tcp:1"}, "x")
    task.unhealthy = ""
    task.life.failed = True  # failed for good while the run goes on
    assert health.healthy() == (False, ["t"])
