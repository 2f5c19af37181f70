"""Health checks that act: restart (or stop) the sick task, not the whole container.

One `Checker` per task that has `[task.NAME.health]`, for each run of it: its clock starts when
the task is ready (or started, without `ready`); every `interval` it makes one check, never two
at once; a check that takes longer than `timeout` has failed (a command's whole group is
killed, a socket closed). `retries` failures in a row make the task unhealthy, and Tasks.sick
does what `action` says; failures before the first success are not counted during
`start_period`. A command's output (stdout and stderr) goes to a pipe whose last 4 KiB are
kept for the log line and `pyinitctl status TASK`. `check = "watchdog"` makes no check at
all: the task must send WATCHDOG=1 on its notify socket at least every `timeout` seconds, and
WATCHDOG=trigger makes it unhealthy at once. All of it is fds and deadlines of the event core
(docs/health.md).
"""

from __future__ import annotations

import os

from pyinit import probes
from pyinit.attempt import Attempt

#: How much of a failing command check's output is kept.
OUTPUT_TAIL = 4096

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyinit.loop import EventLoop
    from pyinit.ready import HealthSettings
    from pyinit.tasks import Task, Tasks


class Checker:
    """The health of one run of one task."""

    def __init__(self, task: Task, settings: HealthSettings, now: float) -> None:
        self.task = task
        self.run = task.since  # which run it watches
        self.settings = settings
        self.since = now  # ready (or started) then
        self.due = now + settings.interval
        self.failures = 0
        self.passed = False  # a check has succeeded in this run
        self.deadline: float | None = None  # the check in flight has failed then
        self.attempt: Attempt | None = None  # a tcp or http check in flight
        self.check_pid = 0
        self.serial = 0  # which check: a late exit of a timed-out one is not the next one's
        self.out = -1  # the read end of a command check's output pipe
        self.output = b""  # its last OUTPUT_TAIL bytes
        self.last = ""  # the last failure, in words
        self.pinged = now  # watchdog: the last WATCHDOG=1 (or the start of the clock)
        self.reported = False  # watchdog: this silence has been reported

    def watchdog_due(self) -> float:
        """When silence makes the task unhealthy: `timeout` after the last WATCHDOG=1, and not
        before `start_period` has passed when none has come yet."""
        due = self.pinged + self.settings.timeout
        if not self.passed:
            due = max(due, self.since + self.settings.start_period)
        return due


class Health:
    """Every checker; one deadline source and one after-wake hook."""

    def __init__(self, core: EventLoop, tasks: Tasks, run_check: Callable[..., int]) -> None:
        self.core = core
        self.tasks = tasks
        self.run_check = run_check  # Tasks.run_check: a command as the task, reaped by Tasks
        self.checkers: dict[str, Checker] = {}
        # A start or a ready is news: the next wake-up makes the run's checker (its clock).
        self.news = False
        tasks.on_event(self._event)

    def _event(self, kind: str, task: Task, text: str) -> None:
        if kind in ("start", "ready"):
            self.news = True

    def next_deadline(self, now: float) -> float | None:
        if self.news:
            return now
        times = []
        for c in self.checkers.values():
            if c.settings.check.kind == "watchdog":
                if not c.reported:
                    times.append(c.watchdog_due())
            else:
                times.append(c.deadline if c.deadline is not None else c.due)
        return min(times, default=None)

    def watchdog(self, task: Task, what: str) -> None:
        """The task sent WATCHDOG=1 ("1") or WATCHDOG=trigger on its notify socket."""
        checker = self._checker(task, self.core.clock())
        if checker is None:
            return  # not watched now (not ready yet, stopping, held)
        if what == "trigger":
            checker.failures, checker.last = checker.settings.retries, "WATCHDOG=trigger"
            checker.reported = True
            self.tasks.sick(task, "it sent WATCHDOG=trigger", "WATCHDOG=trigger")
            return
        checker.pinged, checker.reported = self.core.clock(), False
        self._result(checker, True, "")

    def word(self, task: Task) -> str | None:
        """healthy, unhealthy, or starting (no check has passed in this run yet); None for a
        task without checks."""
        if task.settings.health is None:
            return None
        if task.unhealthy:
            return "unhealthy"
        checker = self.checkers.get(task.name)
        if checker is not None and checker.task is task and checker.passed:
            return "healthy"
        return "starting"

    def _checker(self, task: Task, now: float) -> Checker | None:
        """The checker of `task`'s current run, made when the run is first watched."""
        if task not in self._watched():
            return None
        checker = self.checkers.get(task.name)
        if checker is None or checker.task is not task or checker.run != task.since:
            if checker is not None:
                self._abort(checker)
            settings = task.settings.health
            assert settings is not None
            checker = self.checkers[task.name] = Checker(task, settings, now)
        return checker

    def tick(self) -> None:
        now = self.core.clock()
        self.news = False
        watched = self._watched()
        for task in watched:
            checker = self.checkers.get(task.name)
            if checker is None or checker.task is not task or checker.run != task.since:
                self._checker(task, now)
                continue
            if checker.settings.check.kind == "watchdog":
                if not checker.reported and now >= checker.watchdog_due():
                    checker.reported = True
                    timeout = checker.settings.timeout
                    checker.last = f"no WATCHDOG=1 for {timeout:g}s"
                    self.tasks.sick(task, checker.last, checker.last)
            elif checker.deadline is not None:
                if now >= checker.deadline:
                    self._abort(checker)
                    self._result(checker, False, f"timed out after {checker.settings.timeout:g}s")
            elif now >= checker.due:
                self._start(checker, now)
        # A run no longer watched (over, being stopped, held, unready, or pyinit stopping) has
        # no checker: a stale one's deadline in the past would spin the loop.
        for name, checker in list(self.checkers.items()):
            if checker.task not in watched or checker.run != checker.task.since:
                self._abort(checker)
                del self.checkers[name]

    def _watched(self) -> list[Task]:
        return [
            t
            for t in self.tasks.latest_runs()
            if t.settings.health is not None
            and t.item.stage in ("async", "sync", "main")  # boot and halt items run once
            and t.running
            and t.ready
            and not t.held
            and not self.tasks.stopping
            and not t.kill_at
        ]

    # -- one check --------------------------------------------------------------------------

    def _start(self, checker: Checker, now: float) -> None:
        settings, form = checker.settings, checker.settings.check
        checker.due = now + settings.interval
        task = checker.task
        if form.kind == "file":
            ok = os.path.exists(
                os.path.join(
                    task.settings.cwd or self.tasks.cwd or self.tasks.plan.start_dir, form.path
                )
            )
            self._result(checker, ok, f"no file {form.path}")
            return
        if form.kind == "listen":
            ok = probes.listening(task.pid, form.port)
            self._result(checker, ok, f"nothing listens on port {form.port}")
            return
        checker.deadline = now + settings.timeout
        if form.kind == "command":
            read, write = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(read, False)
            checker.serial += 1
            serial = checker.serial
            try:
                pid = self.run_check(
                    task, form.argv, lambda code: self._exited(checker, serial, code), write
                )
            finally:
                os.close(write)
            checker.output, checker.out = b"", read
            if not pid:
                self._read(checker, drain=True)
                checker.deadline = None
                self._result(checker, False, f"{form.argv[0]} could not start")
                return
            checker.check_pid = pid
            self.core.watch(read, lambda fd: self._read(checker))
            return
        path = form.path if form.kind == "http" else None
        checker.attempt = Attempt(
            self.core,
            form.host,
            form.port,
            path,
            "pyinit-health",
            lambda ok, why: self._answered(checker, ok, why),
        )

    def _answered(self, checker: Checker, ok: bool, why: str) -> None:
        checker.attempt, checker.deadline = None, None
        self._result(checker, ok, why)

    def _read(self, checker: Checker, drain: bool = False) -> None:
        """A command check wrote: keep the tail; EOF closes the pipe. With `drain` (the check
        has ended), read all there is now: whatever it forked may hold the write end still, so
        no EOF is awaited."""
        while checker.out >= 0:
            try:
                data = os.read(checker.out, 65536)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"" or (data is None and drain):
                self._close_output(checker)
            if not data:
                return
            checker.output = (checker.output + data)[-OUTPUT_TAIL:]
            if not drain:
                return

    def _close_output(self, checker: Checker) -> None:
        if checker.out >= 0:
            self.core.forget(checker.out)
            os.close(checker.out)
            checker.out = -1

    def _exited(self, checker: Checker, serial: int, code: int) -> None:
        if serial != checker.serial or not checker.check_pid:
            return  # it had already timed out (and was killed), or its run is over
        checker.check_pid = 0
        self._read(checker, drain=True)
        checker.deadline = None
        self._result(checker, code == 0, f"{checker.settings.check.argv[0]} exited {code}")

    def _close(self, checker: Checker) -> None:
        if checker.attempt is not None:
            checker.attempt.cancel()
            checker.attempt = None

    def _abort(self, checker: Checker) -> None:
        """A check in flight is dropped: its socket closed, its command's group killed."""
        self._close(checker)
        self._read(checker, drain=True)
        if checker.check_pid:
            try:
                os.killpg(checker.check_pid, 9)  # its own session: the whole group goes
            except OSError:
                pass
            checker.check_pid = 0
        checker.deadline = None

    # -- the verdict ------------------------------------------------------------------------

    def _result(self, checker: Checker, ok: bool, why: str) -> None:
        task, settings = checker.task, checker.settings
        now = self.core.clock()
        if checker.due <= now:  # it took longer than `interval`: the checks due meanwhile are
            missed = (now - checker.due) // settings.interval + 1  # skipped, not run late
            checker.due += missed * settings.interval
        if ok:
            checker.passed = True
            checker.failures = 0
            self.tasks.healthy_again(task)
            return
        in_start = not checker.passed and now < checker.since + settings.start_period
        if in_start:
            return
        checker.failures += 1
        checker.last = why
        if settings.check.kind == "command":
            task.health_output = checker.output
            tail = checker.output.rstrip().rpartition(b"\n")[2][-200:]
            if tail:  # the check's last line says why, as often as not
                why = f"{why}: {tail.decode(errors='replace')}"
        if checker.failures == settings.retries:
            count = f"{settings.retries} check{'s' * (settings.retries > 1)} failed"
            brief = f"{checker.last} x{settings.retries}" if settings.retries > 1 else checker.last
            self.tasks.sick(task, f"{count} ({why})", brief)

    def healthy(self) -> tuple[bool, list[str]]:
        """The group's health for `pyinitctl health`: no critical task unhealthy, in backoff
        after an unhealthy run, or failed for good."""
        sick: list[str] = []
        for task in self.tasks.latest_runs():
            health = task.settings.health
            if health is not None and not health.critical:
                continue
            if task.unhealthy or task.life.failed:
                sick.append(task.name)
        return not sick, sick
