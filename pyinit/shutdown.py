"""The stop sequence: each task's stop signal, its grace, SIGKILL, then the sweep of the rest.

Every task is stopped at once, and pyinit goes on as soon as all are gone: a group stops in the
time its slowest member takes, not in the sum. When tasks declare `after`, the dependents are
stopped first, level by level (web before db: it can finish its requests), each level as a
group; `[defaults] stop_order = "parallel"` keeps everything at once. A task still running at
the end of its own grace gets SIGKILL on its whole group (systemd's KillMode=mixed). Processes
that left their group (setsid, double fork) are swept the same way once the tasks are gone:
`kill(-1)` as PID 1, else a signal to each of pyinit's descendants (reaper.py), with the latest
grace as the deadline.
"""

from __future__ import annotations

import os
import time

from pyinit import reaper, signals
from pyinit.forwarding import ROUTER
from pyinit.tasks import KILL_WAIT
from pyinit.values import INF

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
        """Stop every task, then every process that escaped, within the grace. With `after`
        declared, dependents go first, level by level (`Plan.stop_levels`), each level within
        its grace; else all at once."""
        tasks, clock = self.tasks, self.core.clock
        tasks.stop_restarting()
        ROUTER.stopping = True  # from now on every stop signal is forwarded to everyone
        now = clock()
        running = [t for t in tasks.all if t.running]
        levels = tasks.plan.stop_levels()
        if levels is None:
            groups = [running]
        else:
            number = {name: i for i, names in enumerate(levels) for name in names}
            groups = [[] for _ in levels] or [[]]
            for task in running:
                groups[number.get(task.name, 0)].append(task)
            groups = [g for g in groups if g]
        finite: list[float] = []
        for group in groups:
            if len(groups) > 1:
                self.log.info(f"stopping {', '.join(t.name for t in group)}")
            finite.extend(self._stop_group(group))
        latest = max(finite, default=now + tasks.leftover_grace())
        self.sweep(max(latest, clock()))

    def _stop_group(self, group: list[Task]) -> list[float]:
        """Stop signal to each task of `group` at once, SIGKILL to those still running at the
        end of their own grace; returns once all are gone, with the finite deadlines."""
        tasks, clock = self.tasks, self.core.clock
        now = clock()
        deadlines: dict[Task, float] = {}
        signalled = self.outcome.signalled if self.outcome.signal_delivered else None
        # stop_delay (Kubernetes' preStop sleep, built in): the task keeps running, and
        # serving, while the others stop; its grace starts once it has its signal.
        pending: dict[Task, float] = {}
        for task in group:
            if not task.running:
                continue
            delay = task.settings.stop_delay if task is not signalled else 0.0
            if delay:
                pending[task] = now + delay
                self.log.info(
                    f"{task.name} keeps running for its stop_delay of {delay:g}s", task=task.name
                )
            deadlines[task] = now + delay + tasks.grace(task)
            if task is not signalled and not delay:  # (the signalled one already got it)
                self._send_stop(task)
        killed: set[Task] = set()
        while alive := [t for t in deadlines if t.running and t not in killed]:
            for task in [t for t, at in pending.items() if at <= clock()]:
                del pending[task]
                if task.running:
                    self._send_stop(task)
            nearest = min([deadlines[t] for t in alive] + list(pending.values()))
            if self.core.run_until(
                lambda: not any(t.running for t in alive), None if nearest == INF else nearest
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
        return [d for d in deadlines.values() if d != INF]

    def _send_stop(self, task: Task) -> None:
        if task.item.stage == "async":
            self.log.info(f"terminating the child process <pid={task.pid}>", task=task.name)
        self.tasks.send(task, task.settings.stop_signal)
        self.log.debug(
            f"sent {signals.name(task.settings.stop_signal)} to {task.name} <pid={task.pid}>",
            task=task.name,
        )

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
