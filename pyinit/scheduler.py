"""Scheduled tasks in the loop: start each run when it is due, skip one while the last runs.

A `[task.NAME]` with `schedule` (schedule.py) is not started with the others: it runs at its
times, each run a task like any (the group's environment, prefixed output, pyinitctl status).
The due time is a wall-clock time, looked at again at every wake-up (at least once a minute),
so a clock that jumps is followed, and runs missed meanwhile are not run twice: after a run,
the next is the first time after now. `@every` intervals count on the monotonic clock from
pyinit's start. Its end is not the wait policy's business (stages.py): a failure is a warning,
unless `on_failure = "exit"` (docs/schedules.md).
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable

    from pyinit.config import Item, Plan
    from pyinit.log import Log
    from pyinit.loop import EventLoop
    from pyinit.schedule import Schedule
    from pyinit.tasks import Task, Tasks

#: The longest sleep before the wall clock is looked at again.
RECHECK = 60.0


class Entry:
    """One scheduled item: its schedule, its next time, its current run."""

    __slots__ = ("checked", "due", "due_wall", "item", "run", "schedule")

    def __init__(self, item: Item, schedule: Schedule) -> None:
        self.item = item
        self.schedule = schedule
        self.due = 0.0  # monotonic (for @every, exact; for cron, an estimate)
        self.due_wall: datetime.datetime | None = None  # cron: the wall time of the next run
        self.run: Task | None = None
        self.checked = 0.0  # cron: when the wall clock was last read (monotonic)


class Scheduler:
    def __init__(
        self,
        core: EventLoop,
        tasks: Tasks,
        plan: Plan,
        log: Log,
        zone: datetime.tzinfo,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.tasks = tasks
        self.log = log
        self.zone = zone
        self.wall = wall  # seconds since the epoch (a parameter for the tests)
        self.entries: list[Entry] = []
        now = core.clock()
        for item in plan.scheduled:
            schedule = plan.settings(item.name).schedule
            assert schedule is not None
            entry = Entry(item, schedule)
            if schedule.every:
                entry.due = now + schedule.every
            else:
                self._plan_next(entry, self._now())
                entry.checked = now
            self.entries.append(entry)
        core.deadlines(self.next_deadline)
        core.after_each_wake(self.tick)

    def owns(self, task: Task) -> bool:
        return any(entry.item is task.item for entry in self.entries)

    def _now(self) -> datetime.datetime:
        import datetime as dt

        seconds = self.wall()
        return dt.datetime.fromtimestamp(seconds, self.zone)

    def _plan_next(self, entry: Entry, after: datetime.datetime) -> None:
        entry.due_wall = entry.schedule.next_after(after)
        if entry.due_wall is None:
            entry.due = float("inf")
            return
        ahead = (entry.due_wall - after).total_seconds()
        entry.due = self.core.clock() + max(0.0, ahead)

    def next_deadline(self, now: float) -> float | None:
        times = [
            e.due if e.schedule.every else min(e.due, e.checked + RECHECK) for e in self.entries
        ]
        return min(times, default=None)

    def tick(self) -> None:
        if self.tasks.stopping:
            return
        now = self.core.clock()
        for entry in self.entries:
            if entry.schedule.every:
                if now < entry.due:
                    continue
                interval = entry.schedule.every
                missed = (now - entry.due) // interval + 1  # not run twice: the next in the future
                entry.due += missed * interval
            else:
                # The wall clock is read when the run is due by the monotonic estimate, and
                # at least once a minute, so that a clock that jumped is followed.
                if now < entry.due and now - entry.checked < RECHECK:
                    continue
                entry.checked = now
                wall = self._now()
                due = entry.due_wall is not None and wall >= entry.due_wall
                self._plan_next(entry, wall)
                if not due:
                    continue
            self._fire(entry)

    def _fire(self, entry: Entry) -> None:
        item = entry.item
        if entry.run is not None and entry.run.running:
            self.log.warn(
                f"{item.name}: its run <pid={entry.run.pid}> still goes on: this one is skipped",
                item.ns,
                entry.run.pid,
                item.name,
            )
            return
        entry.run = self.tasks.start(item, len(self.tasks.all))
