"""Scheduled tasks (docs/schedules.md): the cron and @every rules with a fake clock, DST in a
real time zone, the scheduler's skip and no-run-twice rules with fakes, and real runs of
`@every 1s`, PID 1 and subreaper.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit import schedule
from pyinit.errors import ConfigError
from pyinit.scheduler import Scheduler

from conftest import StartPyinit, assert_usage_error, must, pyinit_once

pytestmark = pytest.mark.timeout(60)
UTC = dt.UTC
NY = ZoneInfo("America/New_York")


def nxt(text: str, after: dt.datetime) -> dt.datetime | None:
    return schedule.parse(text, "x").next_after(after)


def at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    tz: dt.tzinfo = UTC,
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=tz)


def test_cron_next_times() -> None:
    assert nxt("*/15 * * * *", at(2026, 12, 4, 10, 7)) == at(2026, 12, 4, 10, 15)
    assert nxt("*/15 * * * *", at(2026, 12, 4, 10, 15)) == at(2026, 12, 4, 10, 30)  # strictly after
    assert nxt("0 9-17/4 * * mon-fri", at(2026, 12, 4, 10, 0)) == at(2026, 12, 4, 13, 0)  # a Friday
    assert nxt("0 9 * * mon", at(2026, 12, 4, 10, 0)) == at(2026, 12, 7, 9, 0)
    assert nxt("0 0 1 jan *", at(2026, 12, 4)) == at(2027, 1, 1)
    assert nxt("0 0 * * 7", at(2026, 12, 4)) == at(2026, 12, 6)  # 7 is Sunday too
    assert nxt("0 0 29 2 *", at(2026, 3, 1)) == at(2028, 2, 29)
    assert nxt("@hourly", at(2026, 12, 4, 10, 7)) == at(2026, 12, 4, 11, 0)
    assert nxt("@daily", at(2026, 12, 4, 10, 7)) == at(2026, 12, 5)
    assert nxt("0 0 31 2 *", at(2026, 1, 1)) is None  # never


def test_day_of_month_or_day_of_week() -> None:
    """both restricted: either day runs (Vixie cron); one restricted: that one."""
    assert nxt("0 0 13 * fri", at(2026, 12, 4, 1)) == at(2026, 12, 11)  # Friday the 11th
    assert nxt("0 0 13 * fri", at(2026, 12, 11, 1)) == at(2026, 12, 13)  # the 13th, a Sunday
    assert nxt("0 0 13 * *", at(2026, 12, 4)) == at(2026, 12, 13)


def test_dst_skips_a_time_that_does_not_exist_and_runs_a_double_one_once() -> None:
    # 2026-03-08: New York goes from 01:59 EST to 03:00 EDT; 02:30 does not exist that day.
    assert nxt("30 2 * * *", at(2026, 3, 7, 12, tz=NY)) == at(2026, 3, 9, 2, 30, tz=NY)
    # 2026-11-01: 01:00-01:59 happens twice (EDT, then EST); 01:30 runs at its first only.
    first = nxt("30 1 * * *", at(2026, 11, 1, 0, 0, tz=NY))
    assert first is not None
    assert first.astimezone(UTC) == at(2026, 11, 1, 5, 30)  # 01:30 EDT
    again = schedule.parse("30 1 * * *", "x").next_after(first)
    assert again == at(2026, 11, 2, 1, 30, tz=NY)
    # Asked during the second 01:xx hour (EST): 01:45 has had its (first) run, so 02:45.
    second = at(2026, 11, 1, 6, 40).astimezone(NY)  # 01:40 EST
    assert must(nxt("45 * * * *", second)).astimezone(UTC) == at(2026, 11, 1, 7, 45)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute '60' is not in 0-59"),
        ("* 24 * * *", "hour '24' is not in 0-23"),
        ("* * 0 * *", "day of month '0' is not in 1-31"),
        ("* * * 13 *", "month '13' is not in 1-12"),
        ("* * * * 8", "day of week '8' is not in 0-7"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "minute '0' is not in 1-59"),
        ("@sometimes", "not a schedule pyinit knows"),
        ("@every 0s", "expected @every N"),
        ("@every 5x", "expected @every N"),
        ("@reboot", "not a schedule pyinit knows"),
        ("", "expected a schedule"),
    ],
)
def test_bad_schedules(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        schedule.parse(text, "task.x.schedule")
    assert says in str(caught.value)


def test_every() -> None:
    assert schedule.parse("@every 30s", "x").every == 30
    assert schedule.parse("@every 2h", "x").every == 7200


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789*/,- @abcdefghijklmnopqrstuvwxyz", max_size=30))
def test_fuzz_schedules(text: str) -> None:
    """any text gives a schedule or one ConfigError line; a schedule's next time is after."""
    try:
        parsed = schedule.parse(text, "x")
    except ConfigError as e:
        assert "\n" not in str(e)  # noqa: PT017 - the message is what is checked
        return
    if not parsed.every:
        start = at(2026, 12, 4, 10, 7)
        got = parsed.next_after(start)
        assert got is None or got > start


# -- the scheduler, with fakes -----------------------------------------------------------------


class Core:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sources: list[Callable[[float], float | None]] = []
        self.hooks: list[Callable[[], None]] = []

    def clock(self) -> float:
        return self.now

    def deadlines(self, source: Callable[[float], float | None]) -> None:
        self.sources.append(source)

    def after_each_wake(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)


class Run:
    def __init__(self) -> None:
        self.running = True
        self.pid = 42


class Tasks:
    def __init__(self) -> None:
        self.all: list[Run] = []
        self.stopping = False
        self.started: list[Run] = []

    def start(self, item: object, index: int = 0) -> Run:
        run = Run()
        self.started.append(run)
        return run


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warn(self, message: str, *args: object) -> None:
        self.lines.append(message)


class Item:
    name = "job"
    ns = "async"


class Plan:
    def __init__(self, text: str) -> None:
        self.scheduled = (Item(),)
        self._settings = type("S", (), {"schedule": schedule.parse(text, "x")})()

    def settings(self, name: str) -> object:
        return self._settings


def make(text: str, wall: list[float]) -> tuple[Core, Tasks, Log, Scheduler]:
    core, tasks, log = Core(), Tasks(), Log()
    scheduler = Scheduler(core, tasks, Plan(text), log, UTC, wall=lambda: wall[0])  # type: ignore[arg-type]
    return core, tasks, log, scheduler


def wake(core: Core, scheduler: Scheduler) -> None:
    for hook in core.hooks:
        hook()


def test_every_runs_on_time_skips_while_running_and_never_twice() -> None:
    core, tasks, log, scheduler = make("@every 10s", [0.0])
    assert scheduler.next_deadline(core.now) == 1010.0
    core.now = 1010.0
    wake(core, scheduler)
    assert len(tasks.started) == 1
    core.now = 1020.0
    wake(core, scheduler)  # the first still runs: skipped, with a warning
    assert len(tasks.started) == 1
    assert "still goes on: this one is skipped" in log.lines[0]
    tasks.started[0].running = False
    core.now = 1095.0  # the loop was busy for 75 s: one run, not seven
    wake(core, scheduler)
    assert len(tasks.started) == 2
    assert scheduler.next_deadline(core.now) == 1100.0


def test_cron_follows_the_wall_clock_and_runs_missed_times_once() -> None:
    wall = [at(2026, 12, 4, 10, 7, 30).timestamp()]
    core, tasks, _log, scheduler = make("*/5 * * * *", wall)
    assert scheduler.next_deadline(core.now) == core.now + 60  # looks again within a minute
    wall[0] += 60
    core.now += 60
    wake(core, scheduler)
    assert tasks.started == []  # 10:08:30: not yet
    wall[0] = at(2026, 12, 4, 10, 31).timestamp()  # the clock jumped over 10:10 ... 10:30
    core.now += 1
    wake(core, scheduler)
    assert tasks.started == []  # noticed at the next look, within a minute
    core.now += 59
    wake(core, scheduler)
    assert len(tasks.started) == 1  # once, not five times
    tasks.started[0].running = False
    wall[0] = at(2026, 12, 4, 10, 34).timestamp()
    core.now += 180
    wake(core, scheduler)
    assert len(tasks.started) == 1
    wall[0] = at(2026, 12, 4, 10, 35).timestamp()
    core.now += 60
    wake(core, scheduler)
    assert len(tasks.started) == 2


# -- real runs ----------------------------------------------------------------------------------


def test_every_second_for_real(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """runs with the group's environment and prefixed output; a failed run is a warning and
    the run goes on; the main command's status is the run's."""
    (tmp_path / "pyinit.toml").write_text(
        '[defaults]\nenv = { GREETING = "hi" }\n'
        '[task.tick]\nrun = "echo $GREETING from $PYINIT_TASK; exit 3"\nschedule = "@every 1s"\n'
    )
    run = run_pyinit(mode, ["-w", str(tmp_path), "--", "sleep", "3.5"])
    run.expect(r"^tick: hi from tick$", stream="stdout")
    run.expect(r"^tick: hi from tick$", stream="stdout", count=2)
    run.expect(r"tick: a scheduled run failed \(exitcode=3\); the next one runs as scheduled")
    assert run.wait() == 0, run.text()


def test_on_failure_exit_ends_the_run(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    (tmp_path / "pyinit.toml").write_text(
        '[task.job]\ncommand = ["sh", "-c", "exit 4"]\n'
        'schedule = "@every 1s"\non_failure = "exit"\n'
    )
    run = run_pyinit(mode, ["-w", str(tmp_path), "--", "sleep", "30"])
    assert run.wait() == 4, run.text()


@pytest.mark.parametrize(
    ("toml", "env", "says"),
    [
        ('[task.x]\nrun = "a"\nschedule = "61 * * * *"\n', {}, "task.x.schedule: minute '61'"),
        ('[defaults]\nschedule = "@hourly"\n', {}, "schedule belongs in [task.NAME]"),
        (
            '[task.x]\nrun = "a"\nstage = "boot"\nschedule = "@hourly"\n',
            {},
            "goes with command or run",
        ),
        (
            '[task.x]\nrun = "a"\nschedule = "@hourly"\n',
            {"TZ": "Mars/Olympus"},
            "TZ='Mars/Olympus'",
        ),
    ],
)
def test_bad_schedules_are_status_2(
    tmp_path: Path, toml: str, env: dict[str, str], says: str
) -> None:
    (tmp_path / "pyinit.toml").write_text(toml)
    done = pyinit_once("-w", str(tmp_path), "--", "true", env=env)
    assert_usage_error(done, says)


def test_check_shows_the_next_three_runs(tmp_path: Path) -> None:
    (tmp_path / "pyinit.toml").write_text('[task.backup]\nrun = "backup"\nschedule = "0 3 * * *"\n')
    done = pyinit_once("--check", "-w", str(tmp_path), env={"TZ": "Europe/Berlin"})
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("  backup:"))
    assert line.count(" 03:00 CE") == 3, line
