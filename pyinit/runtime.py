"""The parts of a run, built and wired together in one place.

    EventLoop (loop.py)      epoll, fd -> handler, deadlines; knows no task
    Streams (streams.py)     task pipes -> splitter -> pyinit's sinks, with back-pressure
    Tasks (tasks.py)         start, reap, restart decisions, leftovers, bash log lines
    Outcome (outcome.py)     the stop signal and the timeout, and who they reached
    Shutdown (shutdown.py)   stop signal, grace, SIGKILL, sweep

stages.py drives them through this record; none of them drives another's state.
"""

from __future__ import annotations

import time

from pyinit import reaper, shell
from pyinit.loop import EventLoop
from pyinit.notify import Notifier
from pyinit.outcome import Outcome
from pyinit.shutdown import Shutdown
from pyinit.streams import Streams
from pyinit.tasks import Tasks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyinit.config import Plan
    from pyinit.log import Log
    from pyinit.sink import Sink


class Runtime:
    """The parts of one run (a record of references: it does nothing itself but hand them
    a new plan, and close them at the end)."""

    __slots__ = ("core", "log", "notifier", "outcome", "shell", "shutdown", "streams", "tasks")

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
        self.tasks = Tasks(core, self.streams, plan, log, env, self.shell, self.notifier)
        self.outcome = Outcome(self.tasks, plan, log, clock())
        self.shutdown = Shutdown(core, self.tasks, self.outcome, log)
        # A signal's byte on this fd wakes the loop; the hooks below do the rest.
        core.watch(reaper.install(plan.mode.stop_signals, plan.rewrite), _ignore)
        core.deadlines(self.outcome.next_deadline)
        core.deadlines(self.tasks.next_deadline)
        # After every wake-up, in this order: signals first (a stop signal that came with a
        # death is the reason for it), then deaths, then the timeout, then what is due (no
        # restart once the timeout has passed), and last the sinks, with everything written.
        core.after_each_wake(self.outcome.take_signals)
        core.after_each_wake(self.tasks.reap)
        core.after_each_wake(self.outcome.check_timeout)
        core.after_each_wake(self.tasks.tick)
        core.after_each_wake(self.streams.watch_sinks)

    def replan(self, plan: Plan) -> None:
        """Go on with a plan read again after boot (a boot item's `set --`)."""
        self.shell.plan = plan
        self.streams.plan = plan
        self.tasks.replan(plan)

    def close(self) -> None:
        """At the end, whatever happened: what tasks wrote is flushed, bash state removed."""
        self.streams.close_all()
        self.shell.cleanup()
        self.streams.flush_sinks()


def _ignore(fd: int) -> None:
    """The wakeup fd: its bytes only wake the loop (reaper.take_signals drains them)."""
