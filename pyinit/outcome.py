"""What ends the run from outside: the stop signal and the `--timeout`, and who they reached.

The signal handler has already forwarded every signal by the time the loop wakes
(forwarding.py); what is left for the loop is to log it and, for the first stop signal, to
remember what the run's status will be made of: which signal it was, the foreground item it
reached (which then decides the status, as with tini), and whether it reached it. The wait
policy (waitpolicy.py) folds that into the status once every task has stopped (stages.py).
"""

from __future__ import annotations

from pyinit import reaper, signals
from pyinit.forwarding import ROUTER, deliver

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.config import Plan
    from pyinit.log import Log
    from pyinit.tasks import Task, Tasks


class Outcome:
    """The first stop signal, the timeout, and the foreground item the signal reached."""

    def __init__(self, tasks: Tasks, plan: Plan, log: Log, now: float) -> None:
        self.tasks = tasks
        self.plan = plan
        self.log = log
        self.stop_signals = plan.mode.stop_signals
        self.stop_signal = 0  # the first stop signal received
        self.signalled: Task | None = None  # the foreground item when the stop signal came
        self.signal_delivered = False  # ... and whether that signal went to it
        self.timed_out = False
        self.timeout_at = now + plan.timeout if plan.timeout else None

    @property
    def interrupted(self) -> bool:
        """A stop signal or the timeout has ended the run."""
        return bool(self.stop_signal) or self.timed_out

    # -- after each wake-up -----------------------------------------------------------------

    def take_signals(self) -> None:
        """Log what the handler already delivered (forwarding.py), and note the first stop
        signal: the stages then stop the run."""
        for signum in reaper.take_signals():
            if signum == signals.SIGCHLD:
                continue  # reaping happens on every wake-up
            target = ROUTER.target(signum)
            if not target:
                self.log.info(
                    f"ignored {signals.name(signum)} (--rewrite {signals.name(signum)[3:]}:0)"
                )
                continue
            first = ROUTER.first_stop
            if (
                first is not None
                and first[0] == signum
                and not self.interrupted
                and not self.tasks.stopping
            ):
                self._stop_requested(signum, first[1])
                continue
            reached = [t for t in self.tasks.all if t.running and t.route.wants(target)]
            for task in reached:
                task.forwarded.add(target)
            names = ", ".join(t.name for t in reached) or "no task"
            sent = signals.name(target)
            if signum in self.stop_signals:
                self.log.info(
                    f"got {signals.name(signum)} while stopping: forwarded {sent} to {names}"
                )
            else:
                got = "" if target == signum else f"got {signals.name(signum)}: "
                self.log.info(f"{got}forwarded {sent} to {names}")

    def _stop_requested(self, signum: int, delivered_to: int) -> None:
        self.stop_signal = signum
        self.log.note(f"got {signals.name(signum)}: stopping")
        # The foreground item got the signal itself and decides the run's status (as with
        # tini); the others get their own stop signal from the shutdown (shutdown.py).
        foreground = self.tasks.foreground
        if foreground is not None and foreground.running:
            self.signalled = foreground
            target = ROUTER.target(signum)
            if (
                delivered_to != foreground.pid
                and ROUTER.foreground == foreground.pid  # (0 while it has a stop_delay)
                and foreground.route.wants(target)
            ):
                # The signal came before this item was the handler's foreground (between the
                # last item's end and this one's start, or just after its fork): the handler
                # reached no one, so it is delivered now. Nothing is swallowed.
                deliver(foreground.route, target)
                delivered_to = foreground.pid
            self.signal_delivered = delivered_to == foreground.pid
            if self.signal_delivered:
                foreground.forwarded.add(target)

    def check_timeout(self, now: float | None = None) -> None:
        """After each wake-up: the `--timeout` ends the run once it has passed."""
        if self.timeout_at is None or self.timed_out:
            return
        if (now if now is not None else self.tasks.clock()) < self.timeout_at:
            return
        self.timed_out = True
        self.tasks.hurry = True  # an infinite grace is the built-in one from now on
        ROUTER.stopping = True  # from now on every stop signal is forwarded to everyone
        if not self.stop_signal:
            self.log.note(f"the --timeout of {self.plan.timeout:g}s expired: stopping")

    def next_deadline(self, now: float) -> float | None:
        return None if self.timed_out else self.timeout_at
