"""The stop sequence: each task's stop signal, its grace, SIGKILL, then the sweep of the rest.

Every task is stopped at once, and pyinit goes on as soon as all are gone: a group stops in the
time its slowest member takes, not in the sum. A task still running at the end of its own
grace gets SIGKILL on its whole group (systemd's KillMode=mixed). Processes that left their
group (setsid, double fork) are swept the same way once the tasks are gone: `kill(-1)` as PID
1, else a signal to each of pyinit's descendants (reaper.py), with the latest grace as the
deadline.
"""

from __future__ import annotations

import math
import os
import time

from pyinit import reaper, signals
from pyinit.forwarding import ROUTER
from pyinit.tasks import KILL_WAIT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.log import Log
    from pyinit.loop import EventLoop
    from pyinit.outcome import Outcome
    from pyinit.tasks import Task, Tasks


class Shutdown:
    """Stops the tasks of a run, and whatever they left."""

    def __init__(self, core: EventLoop, tasks: Tasks, outcome: Outcome, log: Log) -> None:
        self.core = core
        self.tasks = tasks
        self.outcome = outcome
        self.log = log

    def stop_all(self) -> None:
        """Stop every task at once, then every process that escaped, within the grace."""
        tasks, clock = self.tasks, self.core.clock
        tasks.stop_restarting()
        ROUTER.stopping = True  # from now on every stop signal is forwarded to everyone
        now = clock()
        deadlines: dict[Task, float] = {}
        signalled = self.outcome.signalled if self.outcome.signal_delivered else None
        for task in tasks.all:
            if not task.running:
                continue
            if task.item.stage == "async":
                self.log.info(f"terminating the child process <pid={task.pid}>", task=task.name)
            deadlines[task] = now + tasks.grace(task)
            if task is not signalled:  # (the signalled one already got the signal that stopped us)
                tasks.send(task, task.settings.stop_signal)
                self.log.debug(
                    f"sent {signals.name(task.settings.stop_signal)} to "
                    f"{task.name} <pid={task.pid}>",
                    task=task.name,
                )
        finite = [d for d in deadlines.values() if d != math.inf]
        latest = max(finite, default=now + tasks.leftover_grace())
        killed: set[Task] = set()
        while alive := [t for t in deadlines if t.running and t not in killed]:
            nearest = min(deadlines[t] for t in alive)
            if self.core.run_until(
                lambda: not any(t.running for t in alive), None if nearest == math.inf else nearest
            ):
                continue
            for task in alive:
                if task.running and deadlines[task] <= clock():
                    self.log.note(
                        f"{task.name} <pid={task.pid}> still running after "
                        f"{tasks.grace(task):g}s: sending SIGKILL",
                        task.item.ns,
                        task.pid,
                        task.name,
                    )
                    tasks.kill(task)
                    killed.add(task)
        if killed:  # SIGKILL is not instant; a process in the kernel (state D) may take a while
            self.core.run_until(lambda: not any(t.running for t in killed), clock() + KILL_WAIT)
        self.sweep(max(latest, clock()))

    def sweep(self, deadline: float | None = None) -> None:
        """Stop processes no task accounts for: TERM, then KILL at `deadline` (by default,
        after the grace of leftovers)."""
        if deadline is None:
            deadline = self.core.clock() + self.tasks.leftover_grace()
        if not reaper.has_children() and os.getpid() != 1:
            return
        if reaper.signal_leftovers(signals.SIGTERM):
            self.log.debug("sent SIGTERM to the processes left")
            if self.core.run_until(lambda: not reaper.has_children(), deadline):
                return
            self.log.note("processes left after the grace period: sending SIGKILL")
            reaper.signal_leftovers(signals.SIGKILL)
            self.core.run_until(lambda: not reaper.has_children(), self.core.clock() + KILL_WAIT)

    def kill_everything(self) -> None:
        """Last resort after a bug in pyinit: SIGKILL every task's group and every leftover."""
        for task in self.tasks.all:
            if task.running:
                self.tasks.kill(task)
        reaper.signal_leftovers(signals.SIGKILL)
        # Not the loop (it may be what broke): reap directly until all are gone, briefly.
        deadline = self.core.clock() + KILL_WAIT
        while reaper.has_children() and self.core.clock() < deadline:
            reaper.reap()
            time.sleep(0.01)
