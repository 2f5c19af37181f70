"""Who may start now: the `after` conditions, and the foreground's wait for readiness.

Async tasks with an `after` list wait, and are looked at again after every wake-up of the
loop; a task whose dependency has failed for good is never started, and says so. The sync
items and the main command wait too, by default for every started async task that declares
`ready` (`[defaults] main_after = "started"` turns that off), and for their own `after`.
pyinit tells systemd READY=1 once nothing waits and every task that declares `ready` is ready
(docs/readiness.md).
"""

from __future__ import annotations

from pyinit.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyinit.config import Item, Plan
    from pyinit.log import Log
    from pyinit.notify import Notifier
    from pyinit.tasks import Task, Tasks

GO, WAIT, NEVER = "go", "wait", "never"


class Verdict(Record):
    """Whether a task may start: GO, WAIT (with what it waits for) or NEVER (with why, and
    the status of the dependency that failed)."""

    __slots__ = ("status", "what", "word")
    word: str
    what: str
    status: int

    def __init__(self, word: str, what: str = "", status: int = 0) -> None:
        self._set(word=word, what=what, status=status)


class StartOrder:
    """The async tasks that wait for others, and the group's readiness."""

    def __init__(self, tasks: Tasks, plan: Plan, log: Log, notifier: Notifier) -> None:
        self.tasks = tasks
        self.plan = plan
        self.log = log
        self.notifier = notifier
        self.waiting: list[tuple[Item, int]] = []
        self.never_started: dict[str, int] = {}  # name -> the status it counts as having
        self.said_waiting: set[str] = set()
        self.ready_sent = False
        self.said_status = ""
        self._on_never: Callable[[Item, int, int], None] | None = None

    def one_shot(self, name: str) -> bool:
        """Another task waits for this one to end (`NAME:done` or `NAME:exited`): it is meant
        to end, and its success does not end a wait_any run (waitpolicy.py)."""
        return any(
            needed == name and condition in ("done", "exited")
            for settings in self.plan.tasks.values()
            for needed, condition in settings.after
        )

    def on_never(self, callback: Callable[[Item, int, int], None]) -> None:
        """`callback(item, index, status)` for an async task that will never start."""
        self._on_never = callback

    def start_async(self, items: tuple[Item, ...]) -> None:
        """Start the async items in order; those with an `after` start when it holds."""
        for index, item in enumerate(items):
            if self.plan.settings(item.name).after:
                self.waiting.append((item, index))
            else:
                self.tasks.start(item, index)
        self.check()

    # -- after each wake-up -----------------------------------------------------------------

    def check(self) -> None:
        """Start what may start now, give up on what never will, tell systemd when ready."""
        if self.tasks.stopping:
            return
        progress = True
        while progress:  # a start may let another one go (started conditions)
            progress = False
            for entry in list(self.waiting):
                item, index = entry
                verdict = self.verdict(self.plan.settings(item.name).after)
                if verdict.word == WAIT:
                    if item.name not in self.said_waiting:
                        self.said_waiting.add(item.name)
                        self.log.info(f"{item.name} waiting for {verdict.what}", task=item.name)
                    continue
                self.waiting.remove(entry)
                progress = True
                if verdict.word == GO:
                    self.tasks.start(item, index)
                else:
                    self._never(item, index, verdict)
        self._group_readiness()

    def _never(self, item: Item, index: int, verdict: Verdict) -> None:
        self.never_started[item.name] = verdict.status
        self.log.warn(f"{item.name} not started: {verdict.what}", item.ns, 0, item.name)
        if self._on_never is not None:
            self._on_never(item, index, verdict.status)

    def _group_readiness(self) -> None:
        """READY=1 to systemd once nothing waits and every task with `ready` is ready;
        until then STATUS= says what is awaited."""
        if self.ready_sent:
            return
        awaited = [t.name for t in self.declared_ready() if not t.ready]
        awaited += [item.name for item, _ in self.waiting]
        if awaited:
            status = "waiting for " + ", ".join(awaited)
            if status != self.said_status:
                self.said_status = status
                self.notifier.send(f"STATUS={status}")
            return
        self.ready_sent = True
        if self.said_status:
            self.notifier.send("STATUS=ready")
        self.notifier.send("READY=1")

    def declared_ready(self) -> list[Task]:
        """The running async tasks that declare `ready` (the last run of each)."""
        latest: dict[str, Task] = {}
        for task in self.tasks.all:
            if task.item.stage == "async":
                latest[task.name] = task
        return [t for t in latest.values() if t.probe is not None and not t.life.ended]

    # -- the rules --------------------------------------------------------------------------

    def verdict(self, after: tuple[tuple[str, str], ...]) -> Verdict:
        """May a task with this `after` start now?"""
        waits: list[str] = []
        for name, condition in after:
            if name in self.never_started:
                return Verdict(NEVER, f"{name} was not started", self.never_started[name])
            task = self.tasks.latest(name)
            if task is None:
                waits.append(f"{name} ({condition})")
                continue
            if _holds(task, condition):
                continue
            if task.life.ended:  # failed for good, or ended without what was asked
                code = task.status if task.status is not None else 1
                return Verdict(NEVER, f"{name} failed (exitcode={code})", code or 1)
            waits.append(f"{name} ({condition})")
        return Verdict(WAIT, ", ".join(waits)) if waits else Verdict(GO)

    def foreground_verdict(self, item: Item) -> Verdict:
        """May this sync item or the main command start now? Its own `after`, then (unless
        `main_after = "started"`) every async task that declares `ready`."""
        verdict = self.verdict(self.plan.settings(item.name).after)
        if verdict.word != GO or self.plan.defaults.main_after == "started":
            return verdict
        unready = self._unready_for_foreground()
        return Verdict(WAIT, ", ".join(f"{n} (ready)" for n in unready)) if unready else verdict

    def _unready_for_foreground(self) -> list[str]:
        """What the foreground waits for by default: the async tasks that declare `ready` and
        are not ready, started or still waiting, but not one that waits (through its `after`)
        for a sync item or the main command: that would wait for ever."""
        unready = [t.name for t in self.declared_ready() if not t.ready]
        for item, _ in self.waiting:
            if self.plan.settings(item.name).ready is not None and not self._needs_foreground(
                item.name, set()
            ):
                unready.append(item.name)
        return unready

    def _needs_foreground(self, name: str, seen: set[str]) -> bool:
        foreground = {i.name for i in self.plan.sync} | (
            {self.plan.main.name} if self.plan.main else set()
        )
        for needed, _ in self.plan.settings(name).after:
            if needed in foreground:
                return True
            if needed not in seen:
                seen.add(needed)
                if self._needs_foreground(needed, seen):
                    return True
        return False

    def wait_for(self, item: Item, give_up: Callable[[], bool]) -> Verdict:
        """Serve the loop until `item` may start (GO), never will (NEVER), or `give_up()`
        (WAIT). Logs what it waits for, once."""
        verdict = self.foreground_verdict(item)
        if verdict.word == WAIT:
            self.log.info(f"{item.name} waiting for {verdict.what}", task=item.name)
            self.tasks.core.run_until(
                lambda: give_up() or self.foreground_verdict(item).word != WAIT
            )
            verdict = self.foreground_verdict(item)
        if verdict.word == NEVER:
            self.never_started[item.name] = verdict.status
            self.log.warn(f"{item.name} not started: {verdict.what}", item.ns, 0, item.name)
        return verdict


def _holds(task: Task, condition: str) -> bool:
    if condition == "started":
        return task.exec_ok
    if condition == "ready":
        # Ready now; or it was, and then ended well (a one-shot that is done is still good).
        return task.ready or (task.was_ready and task.life.ended and task.status == 0)
    if condition == "done":
        return task.done
    return task.exits > 0  # exited
