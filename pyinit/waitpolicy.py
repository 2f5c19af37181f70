"""When the run ends and with which status: the wait policies, in both modes (spec §4).

Pure: the loop reports events (a task ended for good, the foreground sequence finished, a stop
signal, the timeout) and reads `ended`, `status` and `reason`. No clock, no system calls.

pyinit's rules:

| policy       | the run ends when                                   | status                    |
|--------------|-----------------------------------------------------|---------------------------|
| wait_any     | any task ends for good, or the foreground sequence  | that task's / item's      |
|              | ends (its last item ends, or an item fails)         |                           |
| wait_err     | any task fails for good (successes are only logged) | that status; 0 if none    |
| wait_all     | every task has ended for good                       | first failure (time), 0   |
| wait_forever | only a signal (or the timeout)                      | see below                 |

A stop signal N ends any run: with the status of the foreground item that was running (it got
the signal and decides, as with tini), else 128+N. The timeout gives 124, as timeout(1).

TrivialRC mode keeps trc v1.1.12's observable rules (docs/trc.md §3.7, §4): the first foreground
item to end stops a wait_any run, whatever its status; an async task ending a wait_any run
gives 143 (trc's main got SIGTERM from it); wait_all and wait_err take the last sync item's
status, replaced by the last-listed async task's status when that is non-zero; wait_err ends at
the first failing sync item but does not act on async failures before the end. Bash artefacts
are not copied (spec §4): a stop signal ends a TrivialRC-mode run as above, so wait_forever +
SIGTERM gives 143 (trc: 0, its trap waited for a `sleep 1`) and SIGQUIT stops it (trc ignores it).

`WaitPolicy` has pyinit's rules and `TrcWaitPolicy` overrides the three methods where
TrivialRC's differ (mode.py picks one). After the run, `after_halt` folds in each halt item's
status: in pyinit's mode a halt failure turns a success into a failure but never hides an
earlier one; in TrivialRC mode the last halt item's status replaces the run's.
"""

from __future__ import annotations

from pyinit import signals
from pyinit.status import TIMEOUT, killed_by


class WaitPolicy:
    """The run's outcome so far. `ended` turns true once; `status` is then final (before halt)."""

    __slots__ = (
        "_async_statuses",
        "_first_failure",
        "_last_sync",
        "_open_async",
        "_open_foreground",
        "ended",
        "foreground_decides",
        "policy",
        "reason",
        "status",
    )

    def __init__(self, policy: str, *, async_tasks: int = 0, foreground: bool = False) -> None:
        self.policy = policy
        self.ended = False
        self.status = 0
        self.reason = ""
        self._open_async = async_tasks  # async tasks not ended for good yet
        self._open_foreground = foreground  # the foreground sequence is still running
        self._first_failure: int | None = None
        self._last_sync = 0  # trc: the last foreground item's status
        self._async_statuses: dict[int, int] = {}  # trc: async index -> status
        #: A background task ended a wait_any run with 0 while the foreground ran: the status
        #: is the foreground's once stopped (`foreground_stopped`), never that 0.
        self.foreground_decides = False

    def end(self, status: int, reason: str) -> None:
        """End the run now with `status` (a health check's action = "exit")."""
        self._end(status, reason)

    def _end(self, status: int, reason: str) -> None:
        if not self.ended:
            self.ended, self.status, self.reason = True, status, reason

    def async_ended(
        self, index: int, name: str, status: int, one_shot: bool = False, why: str = ""
    ) -> None:
        """Async task number `index` (in launch order) ended for good with `status`; `why`,
        when given, is the reason the run ends with if this ends it (a health check's words).

        A `one_shot` (a task others wait for with `after = ["NAME:done"]`) is meant to end:
        its success is counted but ends no run; its failure counts like any other's."""
        self._open_async -= 1
        self._async_statuses[index] = status
        if status and self._first_failure is None:
            self._first_failure = status
        if not (one_shot and status == 0):
            self._async_rule(name, status, why)
        self._maybe_all_done()

    def _async_rule(self, name: str, status: int, why: str = "") -> None:
        """What an async task's end does to the run (its status already noted)."""
        if self.policy == "wait_any":
            if self._open_foreground and not self.ended:
                # A daemon that forked away, or a service that quit: the foreground (a CI
                # job, say) is stopped, and a job pyinit stopped never counts as a success.
                self.foreground_decides = status == 0
            self._end(status, why or f"{name} ended")
        elif self.policy == "wait_err" and status:
            self._end(status, why or f"{name} failed")

    def foreground_item_ended(self, name: str, status: int, last: bool) -> bool:
        """A sync item or the main command ended; returns True to go on with the next item."""
        self._last_sync = status
        if status and self._first_failure is None:
            self._first_failure = status
        if self.policy == "wait_any" and (last or status or self._any_item_ends_wait_any):
            self._open_foreground = False
            self._end(status, f"{name} ended")
            return False
        if self.policy == "wait_err" and status:
            self._open_foreground = False
            self._end(status, f"{name} failed")
            return False
        if last:
            self._open_foreground = False
            self._maybe_all_done()
        return True

    def foreground_absent(self) -> None:
        """There is no foreground sequence (no sync items, no command)."""
        self._open_foreground = False
        self._maybe_all_done()

    def stop_signal(self, signum: int, foreground_status: int | None) -> None:
        """A stop signal arrived; `foreground_status` is the status of the foreground item it
        stopped, when one was running (the caller reports it once that item has ended)."""
        if foreground_status is not None:
            self._end(foreground_status, f"stopped by {signals.name(signum)}")
        else:
            self._end(killed_by(signum), f"stopped by {signals.name(signum)}")

    def foreground_stopped(self, status: int | None, stop_signal: int) -> None:
        """The foreground item that a background task's end made us stop has ended with
        `status` (None: it was not running any more). Its status is the run's, and a 0 becomes
        128 + its stop signal: a foreground that pyinit stopped did not succeed."""
        if self.foreground_decides:
            self.status = status or killed_by(stop_signal)

    def timeout(self) -> None:
        self._end(TIMEOUT, "the --timeout expired")

    #: pyinit: a wait_any run goes on past a foreground item that succeeded (not the last).
    _any_item_ends_wait_any = False

    def _maybe_all_done(self) -> None:
        if self.ended or self._open_async > 0 or self._open_foreground:
            return
        if self.policy != "wait_forever":
            self._end(self._status_when_all_ended(), "every task has ended")

    def _status_when_all_ended(self) -> int:
        if self.policy == "wait_any":
            # Nothing ended the run early: only reachable with no tasks at all.
            return self._last_sync
        return self._first_failure or 0


class TrcWaitPolicy(WaitPolicy):
    """TrivialRC's rules (the module's docstring): where they differ, and only there."""

    __slots__ = ()

    #: trc: the first foreground item to end stops a wait_any run, whatever its status.
    _any_item_ends_wait_any = True

    def _async_rule(self, name: str, status: int, why: str = "") -> None:
        """wait_any: an async task's end gives 143 (trc's main got SIGTERM from it); wait_err
        does not act on an async failure before the end."""
        if self.policy == "wait_any":
            self._end(143, f"{why or name + ' ended'}; TrivialRC mode gives 143")

    def _status_when_all_ended(self) -> int:
        """The last sync item's status, replaced by the last-listed async task's when that is
        non-zero."""
        status = self._last_sync
        if self._async_statuses:
            status = self._async_statuses[max(self._async_statuses)] or status
        return status


def after_halt(run_status: int, halt_status: int, replaces: bool) -> int:
    """The final status once a halt item ended with `halt_status` (spec §4).

    pyinit: a halt failure turns a successful run into a failed one but never hides an earlier
    failure. TrivialRC (`replaces`, Mode.halt_status_replaces): the last halt item's status
    replaces the run's.
    """
    if replaces:
        return halt_status
    return run_status or halt_status
