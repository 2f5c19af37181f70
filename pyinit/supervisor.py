"""Restart policy for one task: a small state machine, pure, with time passed in (spec §5).

This module decides; it never acts. It does not fork, signal, sleep or read a clock: the loop
reports what happened (`started`, `exited`, `stopping`) with the monotonic time it happened at,
and gets back what to do. That keeps every rule below testable with plain floats, the way
honcho's and s6's policies are, and keeps this module free of imports, because it is loaded on
every container start.

The states, and the only ways between them::

                 started()              exited()
    STARTING ─────────────▶ RUNNING ─────────────▶ BACKOFF ──started()──▶ RUNNING ...
       │                      │   │                   │
       │ stopping()           │   │ exited()          │ stopping(): the pending restart is
       ▼                      │   ▼                   ▼   cancelled, the last status kept
    STOPPING ◀──stopping()────┘  EXITED | FAILED    EXITED
       │
       └──exited()──▶ EXITED     (shutting down: never restarted, whatever the status)

EXITED and FAILED are "ended for good" (spec §4): the wait policy only looks at a task once it is
there, because a task that is being restarted has not ended. FAILED means the task ended with a
non-zero status outside a shutdown; EXITED covers the rest. `stopping()` is idempotent and a
no-op on a task that already ended, since a shutdown applies to every task and a second signal
repeats it. Any other call out of turn is a bug in the loop and raises `IllegalTransition`.

What `exited(status, now)` decides, first rule that applies:

1. Stopping: we asked the task to go, so its status (often 143) is not a failure to restart
   from. Done, EXITED.
2. Policy `never`: done. EXITED on 0, FAILED otherwise; the action is "done" in both cases
   because nothing was given up, and `failed` tells the two apart.
3. The "do not restart" exit code (default 125, as s6's permanent-failure code): the task says
   retrying is pointless. Action "failed" (state FAILED) unless that code was configured as 0.
4. Policy `on-failure` and status 0: done, EXITED.
5. The crash-loop limit, below. Hit with a non-zero status: action "failed", state FAILED.
   Hit by an `always` task that exited 0: action "done", state EXITED, reason "restart limit
   reached" and action LIMIT: the task did nothing wrong, we only stopped bringing it back,
   and a wait policy should not report a success as a failure.
6. Otherwise restart: BACKOFF until `now + delay`.

Backoff: the first restart waits `restart_delay`, each consecutive one twice the previous,
capped at `restart_max_delay` (1, 2, 4, 8, 16, 30, 30 ... with the defaults). A run that lasted
at least `restart_reset` seconds (from `started` to `exited`) proves the task can come up, so
the next restart waits `restart_delay` again.

The crash-loop rule: a task may be restarted at most `max_restarts` times within any
`restart_window` seconds. The restart times are the `now` of each `exited()` that scheduled a
restart; the window is half-open, `(now - restart_window, now]`, so a restart exactly one window
ago has aged out. When scheduling one more restart would put more than `max_restarts` in the
window, the task has failed for good. With the defaults (5 within 60 s) five quick restarts
are allowed and the sixth failure gives up. `max_restarts=0` means "never restart": the first
failure is final. Every restart counts, also one after a stable run: the stable run resets the
backoff, not the count, so that "at most N restarts per window" holds without exceptions (and
`max_restarts=0` keeps its meaning); the window forgets old restarts by itself. This is
systemd's StartLimitBurst=/StartLimitIntervalSec= rule, sliding rather than reset per interval.
"""

# No `from __future__ import annotations`: every annotation here is a builtin type that
# Python 3.11 evaluates as is, and the future import is itself a module load at start-up.

from pyinit.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.words import DecisionAction, RestartPolicy

STARTING = "starting"
RUNNING = "running"
BACKOFF = "backoff"
EXITED = "exited"
FAILED = "failed"
STOPPING = "stopping"

NEVER: "RestartPolicy" = "never"
ON_FAILURE: "RestartPolicy" = "on-failure"
ALWAYS: "RestartPolicy" = "always"
RESTART_POLICIES: "tuple[RestartPolicy, ...]" = (NEVER, ON_FAILURE, ALWAYS)

# Decision.action values.
RESTART: "DecisionAction" = "restart"
DONE: "DecisionAction" = "done"
GIVE_UP: "DecisionAction" = "failed"
# An `always` task that exited 0 at the restart limit: ended, not failed.
LIMIT: "DecisionAction" = "limit"

__all__ = [
    "ALWAYS",
    "BACKOFF",
    "DONE",
    "EXITED",
    "FAILED",
    "GIVE_UP",
    "LIMIT",
    "NEVER",
    "ON_FAILURE",
    "RESTART",
    "RESTART_POLICIES",
    "RUNNING",
    "STARTING",
    "STOPPING",
    "Decision",
    "IllegalTransition",
    "RestartRules",
    "TaskLife",
]


class IllegalTransition(RuntimeError):
    """The loop called a `TaskLife` method in a state where it makes no sense: a pyinit bug."""


class RestartRules(Record):
    """How one task is restarted: policy, backoff and crash-loop limit (spec §5 defaults).

    `no_restart_code=None` means no exit code stops the restarts.
    """

    __slots__ = (
        "max_restarts",
        "no_restart_code",
        "restart",
        "restart_delay",
        "restart_max_delay",
        "restart_reset",
        "restart_window",
    )

    restart: "RestartPolicy"
    restart_delay: float
    restart_max_delay: float
    restart_reset: float
    max_restarts: int
    restart_window: float
    no_restart_code: int | None

    def __init__(
        self,
        *,
        restart: "RestartPolicy" = NEVER,
        restart_delay: float = 1.0,
        restart_max_delay: float = 30.0,
        restart_reset: float = 10.0,
        max_restarts: int = 5,
        restart_window: float = 60.0,
        no_restart_code: int | None = 125,
    ) -> None:
        # config.py reports bad user input with its location; these checks only stop a bad
        # value from reaching the arithmetic below (`not x >= 0` also rejects NaN).
        if restart not in RESTART_POLICIES:
            policies = ", ".join(RESTART_POLICIES)
            raise ValueError(f"restart policy {restart!r} is not one of {policies}")
        if not restart_delay >= 0:
            raise ValueError(f"restart_delay must be >= 0, not {restart_delay!r}")
        if not restart_max_delay >= restart_delay:
            raise ValueError(
                f"restart_max_delay ({restart_max_delay!r}) must be >= restart_delay"
                f" ({restart_delay!r})"
            )
        if not restart_reset >= 0:
            raise ValueError(f"restart_reset must be >= 0, not {restart_reset!r}")
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, not {max_restarts!r}")
        if not restart_window >= 0:
            raise ValueError(f"restart_window must be >= 0, not {restart_window!r}")
        if no_restart_code is not None and not 0 <= no_restart_code <= 255:
            raise ValueError(f"no_restart_code must be 0..255, not {no_restart_code!r}")
        setattr_ = object.__setattr__
        setattr_(self, "restart", restart)
        setattr_(self, "restart_delay", float(restart_delay))
        setattr_(self, "restart_max_delay", float(restart_max_delay))
        setattr_(self, "restart_reset", float(restart_reset))
        setattr_(self, "max_restarts", int(max_restarts))
        setattr_(self, "restart_window", float(restart_window))
        setattr_(self, "no_restart_code", no_restart_code)

    def once(self) -> "RestartRules":
        """The same rules with restart never: a boot or halt item, or a task whose health
        action is stop or exit."""
        return RestartRules(**self._changed({"restart": NEVER}))  # type: ignore[arg-type]


class Decision(Record):
    """What `TaskLife.exited()` decided, for the loop to act on and log (spec §5: every restart,
    give-up and its reason is logged).

    `action` is RESTART ("restart"), DONE ("done"), GIVE_UP ("failed") or LIMIT ("limit": an
    `always` task that exited 0 when no restart was left; ended, not failed); `at` is when to
    restart (None unless restarting); `delay` the backoff used (0 unless restarting); `status`
    the exit status that caused it; `reason` one short phrase; `restarts` the task's restart
    count after this decision.
    """

    __slots__ = ("action", "at", "delay", "reason", "restarts", "status")

    action: "DecisionAction"
    at: float | None
    delay: float
    status: int
    reason: str
    restarts: int

    def __init__(
        self,
        *,
        action: "DecisionAction",
        at: float | None,
        delay: float,
        status: int,
        reason: str,
        restarts: int,
    ) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "action", action)
        setattr_(self, "at", at)
        setattr_(self, "delay", delay)
        setattr_(self, "status", status)
        setattr_(self, "reason", reason)
        setattr_(self, "restarts", restarts)


def _seconds(value: float) -> str:
    """60.0 -> '60s', 0.5 -> '0.5s': how durations read in reasons."""
    return f"{value:g}s"


class TaskLife:
    """The life of one task across its restarts; the loop owns one per task.

    `state`, `restarts` (restarts scheduled in total), `last_status` (None until the first exit)
    and `restart_at` (when the pending restart is due, None outside BACKOFF) are for reading.
    """

    __slots__ = (
        "_next_delay",
        "_recent_restarts",
        "_started_at",
        "last_status",
        "restart_at",
        "restarts",
        "rules",
        "state",
    )

    def __init__(self, rules: RestartRules) -> None:
        self.rules = rules
        self.state = STARTING
        self.restarts = 0
        self.last_status: int | None = None
        self.restart_at: float | None = None
        self._started_at: float | None = None
        self._next_delay = rules.restart_delay
        # Times of the restarts still inside the crash-loop window, oldest first.
        self._recent_restarts: list[float] = []

    def __repr__(self) -> str:
        return (
            f"TaskLife(state={self.state!r}, restarts={self.restarts!r},"
            f" last_status={self.last_status!r}, restart_at={self.restart_at!r})"
        )

    @property
    def ended(self) -> bool:
        """Ended for good (spec §4): no restart is pending or will come."""
        return self.state in (EXITED, FAILED)

    @property
    def failed(self) -> bool:
        """Ended for good with a failure (see the module docstring for which those are)."""
        return self.state == FAILED

    def _require(self, call: str, *allowed: str) -> None:
        if self.state not in allowed:
            raise IllegalTransition(
                f"{call} is not allowed in state {self.state!r} (only in {', '.join(allowed)})"
            )

    def started(self, now: float) -> None:
        """The process is running (first start or a restart)."""
        # Not checked against restart_at: being a little early or late is the loop's business
        # (select timeouts round), and refusing would take PID 1 down over a rounding error.
        self._require("started()", STARTING, BACKOFF)
        self.state = RUNNING
        self.restart_at = None
        self._started_at = now

    def restart_due(self, now: float) -> bool:
        """A restart is pending and its time has come. False in every other state, so the loop
        can ask every task."""
        return self.state == BACKOFF and self.restart_at is not None and now >= self.restart_at

    def stopping(self) -> None:
        """Shutdown has begun: nothing will be restarted any more."""
        if self.state in (STOPPING, EXITED, FAILED):
            return  # a shutdown reaches every task, and a second stop signal repeats it
        if self.state == BACKOFF:
            # No process to wait for: the pending restart is dropped and the task ends here,
            # with the status of its last run kept for the log. EXITED, not FAILED: it did not
            # fail for good, we stopped it while it was waiting.
            self.state = EXITED
            self.restart_at = None
            return
        self.state = STOPPING  # STARTING or RUNNING: the loop will report the exit

    def exited(self, status: int, now: float) -> Decision:
        """The process ended with `status` (0..255, 128+N for signal N): restart it or not."""
        self._require("exited()", RUNNING, STOPPING)
        self.last_status = status
        rules = self.rules

        if self.state == STOPPING:
            return self._end(EXITED, DONE, status, f"exited {status} during shutdown")
        if rules.restart == NEVER:
            return self._end(FAILED if status else EXITED, DONE, status, "policy never")
        if status == rules.no_restart_code:
            return self._end(
                FAILED if status else EXITED,
                GIVE_UP if status else DONE,
                status,
                f"exit code {status} means do not restart",
            )
        if rules.restart == ON_FAILURE and status == 0:
            return self._end(EXITED, DONE, status, "exited 0 and the policy is on-failure")

        # Drop restarts that left the half-open window (now - restart_window, now].
        horizon = now - rules.restart_window
        recent = [t for t in self._recent_restarts if t > horizon]
        self._recent_restarts = recent
        if len(recent) + 1 > rules.max_restarts:
            limit = f"{len(recent)} restarts within {_seconds(rules.restart_window)}"
            if status:
                return self._end(FAILED, GIVE_UP, status, f"crash loop: {limit}")
            return self._end(EXITED, LIMIT, status, f"restart limit reached: {limit}")

        started_at = self._started_at
        if started_at is not None and now - started_at >= rules.restart_reset:
            self._next_delay = rules.restart_delay  # it stayed up: not a loop, start over
        delay = self._next_delay
        # Doubling a capped value cannot overflow, unlike restart_delay * 2**n.
        self._next_delay = min(delay * 2, rules.restart_max_delay)
        recent.append(now)
        self.restarts += 1
        self.state = BACKOFF
        self.restart_at = now + delay
        return Decision(
            action=RESTART,
            at=self.restart_at,
            delay=delay,
            status=status,
            reason=f"exited {status} and the policy is {rules.restart}",
            restarts=self.restarts,
        )

    def _end(self, state: str, action: "DecisionAction", status: int, reason: str) -> Decision:
        self.state = state
        self.restart_at = None
        return Decision(
            action=action, at=None, delay=0.0, status=status, reason=reason, restarts=self.restarts
        )
