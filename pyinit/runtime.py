"""The parts of a run, built and wired together in one place.

    EventLoop (loop.py)      epoll, fd -> handler, deadlines; knows no task
    Streams (streams.py)     task pipes -> splitter -> pyinit's sinks, with back-pressure
    Probes (probes.py)       how each task tells it is ready: notify socket, fd, log, polls
    Tasks (tasks.py)         start, reap, restart decisions, leftovers, bash log lines
    Outcome (outcome.py)     the stop signal and the timeout, and who they reached
    Shutdown (shutdown.py)   stop signal, grace, SIGKILL, sweep
    StartOrder (startorder.py)  who may start now (`after`), and the group's readiness
    Health (health.py)       the health checks of the tasks that declare them, and their verdict
    Control (control.py)     pyinitctl's socket;  Endpoint (endpoint.py)  --http, for probes

stages.py drives them through this record; none of them drives another's state.
"""

from __future__ import annotations

import time

from pyinit import reaper, shell
from pyinit.loop import EventLoop
from pyinit.notify import Notifier
from pyinit.outcome import Outcome
from pyinit.shutdown import Shutdown
from pyinit.startorder import StartOrder
from pyinit.streams import Streams
from pyinit.tasks import Tasks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyinit.config import Plan
    from pyinit.control import Control
    from pyinit.endpoint import Endpoint
    from pyinit.health import Health
    from pyinit.log import Log
    from pyinit.probes import Probes
    from pyinit.scheduler import Scheduler
    from pyinit.sink import Sink


#: Seconds from the start of the tasks to the control socket (open_control).
CONTROL_DELAY = 0.05


class Runtime:
    """The parts of one run (a record of references: it does nothing itself but hand them
    a new plan, and close them at the end)."""

    __slots__ = (
        "control",
        "core",
        "endpoint",
        "health",
        "log",
        "notifier",
        "order",
        "outcome",
        "probes",
        "scheduler",
        "shell",
        "shutdown",
        "streams",
        "tasks",
    )

    def __init__(
        self,
        plan: Plan,
        log: Log,
        sinks: dict[int, Sink],
        env: dict[str, str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.core = core = EventLoop(clock)
        self.notifier = Notifier(env)
        self.shell = shell.Shell(plan, env)
        self.streams = Streams(core, plan, sinks, env)
        # Readiness probes exist only when a task declares `ready` (an import saved otherwise).
        self.probes: Probes | None = None
        settings = [plan.defaults, *plan.tasks.values()]
        watchdog = any(s.health is not None and s.health.check.kind == "watchdog" for s in settings)
        if watchdog or any(s.ready is not None for s in plan.tasks.values()):
            from pyinit.probes import Probes

            self.probes = Probes(core, log)
        self.tasks = Tasks(
            core, self.streams, plan, log, env, self.shell, self.notifier, self.probes
        )
        self.outcome = Outcome(self.tasks, plan, log, clock())
        self.shutdown = Shutdown(core, self.tasks, self.outcome, log)
        self.order = StartOrder(self.tasks, plan, log, self.notifier)
        self.control: Control | None = None
        self.endpoint: Endpoint | None = None
        self.scheduler: Scheduler | None = None
        # Health checks exist only when a task has a [task.NAME.health] table.
        self.health: Health | None = None
        if any(s.health is not None for s in settings):
            from pyinit.health import Health

            self.health = Health(core, self.tasks, self.tasks.run_check)
            self.tasks.on_watchdog = self.health.watchdog
            core.deadlines(self.health.next_deadline)
        # A signal's byte on this fd wakes the loop; the hooks below do the rest.
        core.watch(reaper.install(plan.mode.stop_signals, plan.rewrite), reaper.drain_wakeup)
        core.deadlines(self.outcome.next_deadline)
        core.deadlines(self.tasks.next_deadline)
        if self.probes is not None:
            core.deadlines(self.probes.next_deadline)
        # After every wake-up, in this order: signals first (a stop signal that came with a
        # death is the reason for it), then deaths, then the timeout, then what is due
        # (restarts, leftovers, ready timeouts), the polled readiness probes, who may start
        # now (a task just ready lets its dependents go), and last the sinks, with everything
        # written.
        core.after_each_wake(self.outcome.take_signals)
        core.after_each_wake(self.tasks.reap)
        core.after_each_wake(self.outcome.check_timeout)
        core.after_each_wake(self.tasks.tick)
        if self.probes is not None:
            core.after_each_wake(self.probes.tick)
        core.after_each_wake(self.order.check)
        if self.health is not None:
            core.after_each_wake(self.health.tick)
        core.after_each_wake(self.streams.watch_sinks)

    def open_control(self, plan: Plan) -> None:
        """The control socket (control.py), CONTROL_DELAY after the first tasks started: it
        is an operator's tool, so neither its import nor its bind delays the main command's
        exec, and a run shorter than that (`pyinit -- make -q`) never pays for it."""
        if plan.control == "off":
            return
        due = self.core.clock() + CONTROL_DELAY

        def when(now: float) -> float | None:
            return due if self.control is None else None

        def open_if_due() -> None:
            if self.control is None and self.core.clock() >= due:
                from pyinit.control import Control

                self.control = Control(
                    self.core, self.tasks, self.order, plan, self.log, self.health
                )
                self.control.open()

        self.core.deadlines(when)
        self.core.after_each_wake(open_if_due)

    def start_schedules(self, plan: Plan) -> None:
        """Scheduled tasks (scheduler.py), once boot has run and the others are started."""
        if not plan.scheduled:
            return
        from pyinit.schedule import zone
        from pyinit.scheduler import Scheduler

        tz = zone(plan.tz, "TZ")
        self.scheduler = Scheduler(self.core, self.tasks, plan, self.log, tz)

    def open_http(self, plan: Plan) -> None:
        """The HTTP endpoint for probes (endpoint.py), when --http asks for it."""
        if plan.http is None:
            return
        from pyinit.endpoint import Endpoint

        self.endpoint = Endpoint(self.core, self.tasks, self.order, plan, self.log, self.health)
        self.endpoint.open(*plan.http)

    def replan(self, plan: Plan) -> None:
        """Go on with a plan read again after boot (a boot item's `set --`)."""
        self.shell.plan = plan
        self.streams.plan = plan
        self.tasks.replan(plan)
        self.order.plan = plan

    def close(self) -> None:
        """At the end, whatever happened: what tasks wrote is flushed, bash state removed."""
        if self.control is not None:
            self.control.close()
        if self.endpoint is not None:
            self.endpoint.close()
        self.streams.close_all()
        if self.probes is not None:
            self.probes.close()
        self.shell.cleanup()
        self.streams.flush_sinks()
