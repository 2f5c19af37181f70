"""The event core: one `epoll`, fd -> handler, deadlines, and `run_until`. It knows no task.

Everything pyinit does at run time happens in one thread around this loop. Each part of a run
(tasks.py, streams.py, outcome.py) registers what it waits for here: an fd and the handler to
call when it is ready, a source of deadlines, and a hook to run after every wake-up. runtime.py
wires them together, in an order that is written down there.

Nothing in a handler blocks. With no deadline pending the loop sleeps in `epoll_wait` with no
timeout, so an idle pyinit makes no system calls at all (tini wakes once a second).
"""

from __future__ import annotations

import select
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

IN, OUT = select.EPOLLIN, select.EPOLLOUT


class EventLoop:
    """The epoll, the fds it watches, the deadline sources and the after-wake hooks."""

    __slots__ = ("_after", "_deadlines", "_handlers", "clock", "epoll")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.epoll = select.epoll()
        self._handlers: dict[int, Callable[[int], None]] = {}
        self._deadlines: list[Callable[[float], float | None]] = []
        self._after: list[Callable[[], None]] = []

    # -- what the parts register ------------------------------------------------------------

    def watch(self, fd: int, handler: Callable[[int], None], mask: int = IN) -> None:
        """Call `handler(fd)` whenever `fd` is ready for `mask` (0: registered, not watched).
        Raises PermissionError for an fd epoll cannot watch (a regular file)."""
        self.epoll.register(fd, mask)
        self._handlers[fd] = handler

    def modify(self, fd: int, mask: int) -> None:
        self.epoll.modify(fd, mask)

    def forget(self, fd: int) -> None:
        """Stop watching `fd` (the caller closes it)."""
        self.epoll.unregister(fd)
        del self._handlers[fd]

    def deadlines(self, source: Callable[[float], float | None]) -> None:
        """`source(now)` gives the nearest time something is due, or None: the loop wakes then."""
        self._deadlines.append(source)

    def after_each_wake(self, hook: Callable[[], None]) -> None:
        """Run `hook()` after the handlers of every wake-up, in the order registered."""
        self._after.append(hook)

    # -- running ----------------------------------------------------------------------------

    def run_until(self, done: Callable[[], bool], deadline: float | None = None) -> bool:
        """Serve events until `done()` is true (returns True) or `deadline` passes (False)."""
        while not done():
            now = self.clock()
            if deadline is not None and now >= deadline:
                return False
            self._poll(self._timeout(now, deadline))
        return True

    def _timeout(self, now: float, deadline: float | None) -> float:
        """Seconds until the nearest deadline, or -1 (block) when nothing is due."""
        nearest = deadline
        for source in self._deadlines:
            due = source(now)
            if due is not None and (nearest is None or due < nearest):
                nearest = due
        return -1 if nearest is None else max(0.0, nearest - now)

    def _poll(self, timeout: float) -> None:
        try:
            events = self.epoll.poll(timeout)
        except InterruptedError:  # a signal: the hooks below handle it like any wake-up
            events = []
        handlers = self._handlers
        for fd, _mask in events:
            handler = handlers.get(fd)
            if handler is not None:  # an earlier handler of this wake-up may have closed it
                handler(fd)
        for hook in self._after:
            hook()
