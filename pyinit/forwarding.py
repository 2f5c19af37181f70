"""How a signal pyinit receives reaches the tasks: the routes, and the handler that uses them.

The problem. pyinit forwards a signal from inside the Python-level signal handler itself,
because that saves the loop's round trip, half of the forwarding latency (bench/README.md). A
handler runs between any two bytecodes of the loop, so it must never see a half-updated task
table: a signal that lands between `fork()` returning and the new pid being recorded would miss
the new task, and one that lands while the table is being changed could see it in any state.

The mechanism. The loop never lets the handler read its live task table. It publishes an
immutable snapshot instead, a tuple of `Route`s (pid, group or pid only, which signals), and
replaces it whole (`publish`) after every change: one attribute store, which a handler sees
either before or after, never half-done. Three windows remain, and all are closed:

* spawn: `spawn.spawn` blocks every signal around `fork()` and republishes the routes (its
  `on_fork` callback) before unblocking, so a signal that arrives meanwhile is delivered to the
  handler right after, when the new task is already in the routes. The child starts with those
  signals blocked and unblocks them only after resetting every disposition to the default, so
  it never runs pyinit's handler; a signal forwarded to it before exec is acted on by its
  default action, as if it had arrived just after exec.
* reap: the routes are republished in the same loop turn as `waitpid` returned the pid. The
  kernel hands out pids cyclically, so a pid reaped a moment ago cannot belong to another
  process yet; and signalling the group of a leader that has just been reaped still reaches
  what is left of its group, which is what a forwarded signal is for.
* the foreground: an item becomes the handler's foreground just after it starts. A first stop
  signal that lands before that (between two items, or just after the fork) reaches no one
  here; the loop then delivers it to the new foreground item (`Outcome._stop_requested`).

What the handler does with a signal (`on_signal`), after `--rewrite` (a target of 0 means
"ignore it": nothing is sent and, for TERM, INT or QUIT, no shutdown starts):

* the first stop signal (TERM, INT or QUIT) before any shutdown goes to the foreground item
  only (the sync item or main command running now, as tini gives it to its one child); the
  loop then starts the shutdown and every other task gets its own stop signal;
* every other signal, and every stop signal after the first (also during the shutdown and
  halt), goes to every running task whose `signals` setting lets it through, to its process
  group or, with `signal_target = "pid"` (or `-c`), to its pid only.

Nothing is ever swallowed: the loop logs what was delivered, but the delivery happened here.
"""

from __future__ import annotations

import os

from pyinit.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


class Route(Record):
    """Where a forwarded signal goes for one running task."""

    __slots__ = ("allowed", "group", "pid")
    pid: int
    group: bool  # its process group (True) or its pid only
    allowed: frozenset[int] | None  # the signals it gets; None: all of them

    def __init__(self, pid: int, group: bool, allowed: frozenset[int] | None) -> None:
        self._set(pid=pid, group=group, allowed=allowed)

    def wants(self, signum: int) -> bool:
        return self.allowed is None or signum in self.allowed


class Router:
    """The handler's view of the run. The loop writes whole values; the handler reads them,
    and writes only `stopping` and `first_stop`."""

    __slots__ = (
        "first_stop",
        "foreground",
        "owner",
        "rewrite",
        "routes",
        "stop_signals",
        "stopping",
    )

    def __init__(self) -> None:
        self.routes: tuple[Route, ...] = ()
        self.foreground = 0  # the pid of the foreground item, 0 if none
        self.rewrite: Mapping[int, int] = {}
        self.stop_signals: frozenset[int] = frozenset()
        self.stopping = False  # a shutdown has begun (signal, timeout, policy)
        #: (signal received, pid it was delivered to or 0) for the signal that started the
        #: shutdown; None until then.
        self.first_stop: tuple[int, int] | None = None
        self.owner = 0  # the pid that forwards (not a forked child)

    def publish(self, routes: tuple[Route, ...]) -> None:
        self.routes = routes

    def target(self, signum: int) -> int:
        """What `signum` is forwarded as (`--rewrite`); 0 means it is ignored."""
        return self.rewrite.get(signum, signum)

    def on_signal(self, signum: int) -> None:
        """Called from the signal handler: deliver `signum` as described at the top."""
        if os.getpid() != self.owner:
            return  # a forked child before exec (its signals are blocked; belt and braces)
        target = self.target(signum)
        if not target:
            return
        if signum in self.stop_signals and not self.stopping:
            self.stopping = True
            delivered = 0
            for route in self.routes:
                if route.pid == self.foreground and route.wants(target):
                    deliver(route, target)
                    delivered = route.pid
            self.first_stop = (signum, delivered)
            return
        for route in self.routes:
            if route.wants(target):
                deliver(route, target)


def deliver(route: Route, signum: int) -> None:
    """Send `signum` to one task, as its route says."""
    if route.group:
        try:
            os.killpg(route.pid, signum)
            return
        except ProcessLookupError:  # no such group yet (before its setsid) or any more
            pass
        except PermissionError:  # a member changed its uid: the rest got it
            return
    try:
        os.kill(route.pid, signum)
    except ProcessLookupError:  # gone: an expected race with its exit
        pass


#: The one router of this process (its signal handlers are process-global too).
ROUTER = Router()
