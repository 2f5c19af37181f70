"""The restart policy (spec §5), on a fake clock: time is just the floats passed in."""

import ast
import pathlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit import supervisor
from pyinit.supervisor import (
    ALWAYS,
    BACKOFF,
    DONE,
    EXITED,
    FAILED,
    GIVE_UP,
    LIMIT,
    NEVER,
    ON_FAILURE,
    RESTART,
    RESTART_POLICIES,
    RUNNING,
    STARTING,
    STOPPING,
    Decision,
    IllegalTransition,
    RestartRules,
    TaskLife,
)
from pyinit.words import RestartPolicy

pytestmark = pytest.mark.timeout(10)


def flat(
    restart: RestartPolicy, max_restarts: int = 5, restart_window: float = 60.0
) -> RestartRules:
    """Rules with a constant 1 s delay, so a test can place every restart exactly."""
    return RestartRules(
        restart=restart,
        restart_delay=1.0,
        restart_max_delay=1.0,
        max_restarts=max_restarts,
        restart_window=restart_window,
    )


def running(rules: RestartRules, now: float = 0.0) -> TaskLife:
    life = TaskLife(rules)
    life.started(now)
    return life


def fail_at(life: TaskLife, times: list[float], status: int = 1) -> list[Decision]:
    """Let a running task exit with `status` at each of `times`, restarting it when due."""
    decisions = []
    for now in times:
        if life.state == BACKOFF:
            assert life.restart_at is not None
            assert life.restart_at <= now
            life.started(life.restart_at)
        decisions.append(life.exited(status, now))
    return decisions


def delays(decisions: list[Decision]) -> list[float]:
    return [d.delay for d in decisions]


# --- RestartRules and Decision: immutable values ----------------------------------------------


def test_rules_defaults() -> None:
    """should default to spec §5: never, 1 s doubling to 30 s, reset after 10 s, 5 in 60 s, 125."""
    rules = RestartRules()
    assert rules.restart == NEVER
    assert rules.restart_delay == 1.0
    assert rules.restart_max_delay == 30.0
    assert rules.restart_reset == 10.0
    assert rules.max_restarts == 5
    assert rules.restart_window == 60.0
    assert rules.no_restart_code == 125
    assert RESTART_POLICIES == ("never", "on-failure", "always")


def test_rules_are_immutable() -> None:
    """should refuse to change or delete a field of RestartRules once built."""
    rules = RestartRules(restart=ALWAYS)
    with pytest.raises(AttributeError, match="immutable"):
        rules.restart = NEVER
    with pytest.raises(AttributeError, match="immutable"):
        rules.invented = 1
    with pytest.raises(AttributeError, match="immutable"):
        del rules.max_restarts
    assert rules.restart == ALWAYS


def test_rules_keyword_only() -> None:
    """should take RestartRules' settings by name only, so a positional mix-up cannot happen."""
    with pytest.raises(TypeError):
        RestartRules(ALWAYS)  # type: ignore[call-arg]


def test_rules_equality_and_hash() -> None:
    """should compare RestartRules by value, hash them alike, and differ on any one field."""
    a = RestartRules(restart=ON_FAILURE, max_restarts=3)
    b = RestartRules(restart=ON_FAILURE, max_restarts=3, restart_delay=1)
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    for other in (
        RestartRules(restart=ALWAYS, max_restarts=3),
        RestartRules(restart=ON_FAILURE, max_restarts=3, restart_delay=2.0),
        RestartRules(restart=ON_FAILURE, max_restarts=3, restart_max_delay=31.0),
        RestartRules(restart=ON_FAILURE, max_restarts=3, restart_reset=11.0),
        RestartRules(restart=ON_FAILURE, max_restarts=4),
        RestartRules(restart=ON_FAILURE, max_restarts=3, restart_window=61.0),
        RestartRules(restart=ON_FAILURE, max_restarts=3, no_restart_code=None),
    ):
        assert a != other
    assert a != "on-failure"
    assert a != Decision(action=DONE, at=None, delay=0.0, status=0, reason="", restarts=0)


def test_rules_repr_round_trips() -> None:
    """should show RestartRules as the call that rebuilds it."""
    rules = RestartRules(restart=ALWAYS, restart_window=30, no_restart_code=None)
    text = repr(rules)
    assert text == (
        "RestartRules(max_restarts=5, no_restart_code=None, restart='always', restart_delay=1.0,"
        " restart_max_delay=30.0, restart_reset=10.0, restart_window=30.0)"
    )
    assert eval(text, {"RestartRules": RestartRules}) == rules


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"restart": "sometimes"}, "restart policy 'sometimes'"),
        ({"restart_delay": -1.0}, "restart_delay"),
        ({"restart_delay": float("nan")}, "restart_delay"),
        ({"restart_delay": 5.0, "restart_max_delay": 4.0}, "restart_max_delay"),
        ({"restart_reset": -0.5}, "restart_reset"),
        ({"max_restarts": -1}, "max_restarts"),
        ({"restart_window": -60.0}, "restart_window"),
        ({"no_restart_code": 256}, "no_restart_code"),
        ({"no_restart_code": -1}, "no_restart_code"),
    ],
)
def test_rules_reject_nonsense(change: dict[str, Any], message: str) -> None:
    """should refuse RestartRules the arithmetic cannot work with, naming the field."""
    with pytest.raises(ValueError, match=message):
        RestartRules(**change)


def test_decision_is_an_immutable_value() -> None:
    """should make Decision immutable, comparable by value and readable in a log or a failure."""
    d = Decision(action=RESTART, at=3.0, delay=2.0, status=1, reason="r", restarts=2)
    assert d == Decision(action=RESTART, at=3.0, delay=2.0, status=1, reason="r", restarts=2)
    assert d != Decision(action=RESTART, at=3.0, delay=2.0, status=2, reason="r", restarts=2)
    assert hash(d) == hash(
        Decision(action=RESTART, at=3.0, delay=2.0, status=1, reason="r", restarts=2)
    )
    with pytest.raises(AttributeError, match="immutable"):
        d.action = DONE
    assert repr(d) == (
        "Decision(action='restart', at=3.0, delay=2.0, reason='r', restarts=2, status=1)"
    )


# --- states and transitions -------------------------------------------------------------------


def test_new_task_is_starting() -> None:
    """should begin STARTING, with no restart, no status and nothing pending."""
    life = TaskLife(RestartRules())
    assert life.state == STARTING
    assert life.restarts == 0
    assert life.last_status is None
    assert life.restart_at is None
    assert not life.ended
    assert not life.failed
    assert not life.restart_due(1e9)


def test_started_makes_it_running() -> None:
    """should be RUNNING once started, neither ended nor due for a restart."""
    life = running(RestartRules(), now=5.0)
    assert life.state == RUNNING
    assert not life.ended
    assert not life.restart_due(100.0)


def test_never_exit_zero_is_exited() -> None:
    """should end a `never` task that exits 0 as EXITED, not failed, with action done."""
    d = running(RestartRules(restart=NEVER)).exited(0, 3.0)
    assert d == Decision(
        action=DONE, at=None, delay=0.0, status=0, reason="policy never", restarts=0
    )


def test_never_exit_nonzero_is_failed_but_done() -> None:
    """should end a `never` task that exits non-zero as FAILED, the action still being done."""
    life = running(RestartRules(restart=NEVER))
    d = life.exited(3, 3.0)
    assert (d.action, d.status, d.reason, d.at, d.delay) == (DONE, 3, "policy never", None, 0.0)
    assert life.state == FAILED
    assert life.ended
    assert life.failed
    assert life.last_status == 3


def test_never_exit_zero_state() -> None:
    """should leave a `never` task that exited 0 EXITED: ended, not failed."""
    life = running(RestartRules(restart=NEVER))
    life.exited(0, 1.0)
    assert life.state == EXITED
    assert life.ended
    assert not life.failed


def test_never_ignores_no_restart_code() -> None:
    """should report a `never` task exiting 125 by its policy: nothing was given up."""
    life = running(RestartRules(restart=NEVER))
    d = life.exited(125, 1.0)
    assert (d.action, d.reason, life.state) == (DONE, "policy never", FAILED)


def test_on_failure_exit_zero_is_done() -> None:
    """should not restart an `on-failure` task that exited 0, and say why."""
    life = running(RestartRules(restart=ON_FAILURE))
    d = life.exited(0, 4.0)
    assert d == Decision(
        action=DONE,
        at=None,
        delay=0.0,
        status=0,
        reason="exited 0 and the policy is on-failure",
        restarts=0,
    )
    assert life.state == EXITED
    assert not life.failed


@pytest.mark.parametrize("status", [1, 2, 126, 127, 137, 143, 255])
def test_on_failure_restarts_a_failure(status: int) -> None:
    """should restart an `on-failure` task that exited non-zero or was killed, after the delay."""
    life = running(RestartRules(restart=ON_FAILURE))
    d = life.exited(status, 4.0)
    assert d == Decision(
        action=RESTART,
        at=5.0,
        delay=1.0,
        status=status,
        reason=f"exited {status} and the policy is on-failure",
        restarts=1,
    )
    assert life.state == BACKOFF
    assert life.restart_at == 5.0
    assert life.restarts == 1
    assert life.last_status == status
    assert not life.ended
    assert not life.failed


@pytest.mark.parametrize("status", [0, 1, 143])
def test_always_restarts_any_exit(status: int) -> None:
    """should restart an `always` task whatever its status, success included."""
    life = running(RestartRules(restart=ALWAYS))
    d = life.exited(status, 2.5)
    assert (d.action, d.at, d.delay, d.restarts) == (RESTART, 3.5, 1.0, 1)
    assert d.reason == f"exited {status} and the policy is always"
    assert life.state == BACKOFF


def test_restarted_task_runs_again() -> None:
    """should go BACKOFF -> RUNNING when the loop starts the task again."""
    life = running(RestartRules(restart=ALWAYS))
    life.exited(1, 2.0)
    life.started(3.0)
    assert life.state == RUNNING
    assert life.restart_at is None
    assert life.restarts == 1


@pytest.mark.parametrize("policy", [ON_FAILURE, ALWAYS])
def test_no_restart_code_gives_up(policy: RestartPolicy) -> None:
    """should never restart a task exiting 125, and end it FAILED with action failed."""
    life = running(RestartRules(restart=policy))
    d = life.exited(125, 7.0)
    assert d == Decision(
        action=GIVE_UP,
        at=None,
        delay=0.0,
        status=125,
        reason="exit code 125 means do not restart",
        restarts=0,
    )
    assert life.state == FAILED
    assert life.failed


def test_no_restart_code_is_configurable() -> None:
    """should honour another "do not restart" code, and restart on 125 then."""
    life = running(RestartRules(restart=ON_FAILURE, no_restart_code=3))
    assert life.exited(125, 1.0).action == RESTART
    life.started(2.0)
    d = life.exited(3, 3.0)
    assert (d.action, d.reason, d.restarts) == (GIVE_UP, "exit code 3 means do not restart", 1)


def test_no_restart_code_can_be_disabled() -> None:
    """should restart on every failure when no "do not restart" code is set."""
    life = running(RestartRules(restart=ON_FAILURE, no_restart_code=None))
    assert life.exited(125, 1.0).action == RESTART


def test_no_restart_code_zero_ends_an_always_task_cleanly() -> None:
    """should end an `always` task exiting 0 as EXITED when 0 is the "do not restart" code."""
    life = running(RestartRules(restart=ALWAYS, no_restart_code=0))
    d = life.exited(0, 1.0)
    assert (d.action, d.reason) == (DONE, "exit code 0 means do not restart")
    assert life.state == EXITED
    assert not life.failed


# --- backoff ----------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap() -> None:
    """should wait 1, 2, 4, 8, 16, 30, 30 s between consecutive quick crashes."""
    life = running(RestartRules(restart=ON_FAILURE, max_restarts=100, restart_window=60.0))
    decisions = []
    now = 0.0
    for _ in range(7):
        now += 0.5  # a quick crash, well under restart_reset
        d = life.exited(1, now)
        decisions.append(d)
        assert d.at == now + d.delay
        now = d.at
        assert not life.restart_due(now - 0.001)
        assert life.restart_due(now)
        life.started(now)
    assert delays(decisions) == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert [d.restarts for d in decisions] == [1, 2, 3, 4, 5, 6, 7]


def test_backoff_follows_configured_delays() -> None:
    """should double from restart_delay and cap at restart_max_delay as configured."""
    rules = RestartRules(
        restart=ALWAYS, restart_delay=0.25, restart_max_delay=1.5, max_restarts=100
    )
    life = running(rules)
    decisions = fail_at(life, [0.0, 0.25, 0.75, 1.75, 3.25])
    assert delays(decisions) == [0.25, 0.5, 1.0, 1.5, 1.5]


def test_backoff_resets_after_a_stable_run() -> None:
    """should go back to restart_delay after a run of at least restart_reset seconds."""
    life = running(RestartRules(restart=ON_FAILURE, max_restarts=100))
    first = fail_at(life, [0.0, 1.0, 3.0])  # quick crashes: 1, 2, 4
    assert delays(first) == [1.0, 2.0, 4.0]
    life.started(7.0)
    stable = life.exited(1, 17.0)  # up exactly restart_reset = 10 s
    assert stable.delay == 1.0
    assert stable.at == 18.0
    life.started(18.0)
    assert life.exited(1, 18.5).delay == 2.0  # and doubles again from there


def test_backoff_keeps_doubling_after_a_short_run() -> None:
    """should not reset the backoff after a run just shorter than restart_reset."""
    life = running(RestartRules(restart=ON_FAILURE, max_restarts=100))
    fail_at(life, [0.0, 1.0, 3.0])
    life.started(7.0)
    assert life.exited(1, 16.99).delay == 8.0


# --- the crash-loop limit ---------------------------------------------------------------------


def test_crash_loop_gives_up_at_the_sixth_quick_failure() -> None:
    """should allow 5 restarts within 60 s and give up for good at the 6th failure."""
    life = running(RestartRules(restart=ON_FAILURE))
    decisions = fail_at(life, [0.5, 2.0, 4.5, 9.0, 17.5])  # each right after its restart
    assert [d.action for d in decisions] == [RESTART] * 5
    assert life.restarts == 5
    life.started(life.restart_at or 0.0)
    d = life.exited(2, 34.0)
    assert d == Decision(
        action=GIVE_UP,
        at=None,
        delay=0.0,
        status=2,
        reason="crash loop: 5 restarts within 60s",
        restarts=5,
    )
    assert life.state == FAILED
    assert life.ended
    assert life.failed
    assert life.restarts == 5
    assert life.last_status == 2
    assert not life.restart_due(1e9)


def test_crash_loop_window_is_half_open() -> None:
    """should forget a restart exactly restart_window seconds old, and count one just younger."""
    times = [0.0, 10.0, 20.0, 30.0, 40.0]
    late = running(flat(ON_FAILURE))
    fail_at(late, times)
    assert fail_at(late, [60.0])[0].action == RESTART  # the restart at 0 has aged out
    early = running(flat(ON_FAILURE))
    fail_at(early, times)
    d = fail_at(early, [59.99])[0]
    assert (d.action, d.reason) == (GIVE_UP, "crash loop: 5 restarts within 60s")


def test_failures_spread_beyond_the_window_never_give_up() -> None:
    """should keep restarting a task whose failures never put 6 restarts within 60 s."""
    life = running(flat(ON_FAILURE))
    decisions = fail_at(life, [12.0 * i for i in range(1, 101)])  # 5 per 60 s, at most
    assert all(d.action == RESTART for d in decisions)
    assert life.restarts == 100


def test_failures_just_too_close_give_up() -> None:
    """should give up on a task failing every 11.9 s, which puts 6 restarts within 60 s."""
    life = running(flat(ON_FAILURE))
    decisions = fail_at(life, [11.9 * i for i in range(1, 7)])
    assert [d.action for d in decisions] == [RESTART] * 5 + [GIVE_UP]


def test_crash_loop_limit_is_configurable() -> None:
    """should apply max_restarts and restart_window as configured, and name them in the reason."""
    life = running(flat(ALWAYS, max_restarts=2, restart_window=5.5))
    decisions = fail_at(life, [1.0, 3.0, 5.0])
    assert [d.action for d in decisions] == [RESTART, RESTART, GIVE_UP]
    assert decisions[-1].reason == "crash loop: 2 restarts within 5.5s"


def test_max_restarts_zero_fails_at_once() -> None:
    """should fail an `on-failure` task for good at its first failure when max_restarts is 0."""
    life = running(RestartRules(restart=ON_FAILURE, max_restarts=0))
    d = life.exited(1, 1.0)
    assert (d.action, d.reason, d.restarts) == (GIVE_UP, "crash loop: 0 restarts within 60s", 0)
    assert life.failed


def test_restart_limit_on_success_is_not_a_failure() -> None:
    """should end an `always` task that exits 0 at the restart limit as EXITED, not FAILED."""
    life = running(flat(ALWAYS))
    fail_at(life, [1.0, 2.0, 3.0, 4.0, 5.0], status=0)
    d = fail_at(life, [6.0], status=0)[0]
    assert d == Decision(
        action=LIMIT,
        at=None,
        delay=0.0,
        status=0,
        reason="restart limit reached: 5 restarts within 60s",
        restarts=5,
    )
    assert life.state == EXITED
    assert life.ended
    assert not life.failed


def test_restart_limit_on_success_then_failure_mix() -> None:
    """should count restarts after successes and failures alike, and fail on a failing 6th."""
    life = running(flat(ALWAYS))
    fail_at(life, [1.0, 2.0, 3.0], status=0)
    fail_at(life, [4.0, 5.0], status=1)
    d = fail_at(life, [6.0], status=137)[0]
    assert (d.action, d.status, life.state) == (GIVE_UP, 137, FAILED)


def test_restarts_after_stable_runs_still_count() -> None:
    """should count a restart after a stable run toward the limit (it only resets the backoff)."""
    life = running(RestartRules(restart=ON_FAILURE))
    # Up 10 s each time, 1 s backoff: exits at 10, 21, 32, 43, 54 are 5 restarts in 60 s.
    decisions = fail_at(life, [10.0, 21.0, 32.0, 43.0, 54.0, 65.0])
    assert delays(decisions[:5]) == [1.0] * 5
    assert decisions[-1].action == GIVE_UP


# --- restart_due ------------------------------------------------------------------------------


def test_restart_due_only_when_its_time_has_come() -> None:
    """should report a restart due from its scheduled time on, and only in BACKOFF."""
    life = running(RestartRules(restart=ALWAYS))
    assert not life.restart_due(50.0)
    life.exited(0, 10.0)
    assert not life.restart_due(10.999)
    assert life.restart_due(11.0)
    assert life.restart_due(500.0)
    life.started(11.5)
    assert not life.restart_due(500.0)


# --- shutdown ---------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", RESTART_POLICIES)
@pytest.mark.parametrize("status", [0, 1, 143])
def test_exit_while_stopping_is_never_restarted(policy: RestartPolicy, status: int) -> None:
    """should end a task that exits during shutdown as EXITED, whatever its policy and status."""
    life = running(RestartRules(restart=policy))
    life.stopping()
    assert life.state == STOPPING
    assert not life.ended
    d = life.exited(status, 3.0)
    assert d == Decision(
        action=DONE,
        at=None,
        delay=0.0,
        status=status,
        reason=f"exited {status} during shutdown",
        restarts=0,
    )
    assert life.state == EXITED
    assert not life.failed
    assert life.last_status == status


def test_stopping_before_start() -> None:
    """should move a task still STARTING to STOPPING, so its exit is not restarted."""
    life = TaskLife(RestartRules(restart=ALWAYS))
    life.stopping()
    assert life.state == STOPPING
    assert life.exited(1, 0.5).action == DONE


def test_stopping_cancels_a_pending_restart() -> None:
    """should end a task waiting in BACKOFF at once, keeping its last status, when stopping."""
    life = running(RestartRules(restart=ON_FAILURE))
    life.exited(3, 1.0)
    life.stopping()
    assert life.state == EXITED
    assert life.ended
    assert not life.failed
    assert life.last_status == 3
    assert life.restart_at is None
    assert not life.restart_due(100.0)
    assert life.restarts == 1
    with pytest.raises(IllegalTransition):
        life.started(2.0)


@pytest.mark.parametrize("status", [0, 1])
def test_stopping_is_idempotent(status: int) -> None:
    """should accept stopping() again, and on a task that already ended, changing nothing."""
    life = running(RestartRules(restart=ON_FAILURE, max_restarts=0))
    life.stopping()
    life.stopping()
    assert life.state == STOPPING
    ended = running(RestartRules(restart=ON_FAILURE, max_restarts=0))
    ended.exited(status, 1.0)
    before = ended.state
    ended.stopping()
    assert ended.state == before
    assert before == (FAILED if status else EXITED)


# --- illegal transitions ----------------------------------------------------------------------


def in_state(state: str) -> TaskLife:
    """A task driven into `state` through the public calls only."""
    life = TaskLife(RestartRules(restart=ON_FAILURE))
    if state == STARTING:
        return life
    if state == STOPPING:
        life.stopping()
        return life
    life.started(0.0)
    if state == BACKOFF:
        life.exited(1, 1.0)
    elif state == EXITED:
        life.exited(0, 1.0)
    elif state == FAILED:
        life.exited(125, 1.0)
    assert life.state == state
    return life


def test_illegal_transition_is_a_runtime_error() -> None:
    """should raise a RuntimeError subclass, so it reads as a pyinit bug, not bad input."""
    assert issubclass(IllegalTransition, RuntimeError)


@pytest.mark.parametrize("state", [RUNNING, STOPPING, EXITED, FAILED])
def test_started_out_of_turn_raises(state: str) -> None:
    """should refuse started() unless STARTING or BACKOFF, naming the call and the state."""
    life = in_state(state)
    with pytest.raises(IllegalTransition, match=rf"started\(\) is not allowed in state '{state}'"):
        life.started(5.0)
    assert life.state == state


@pytest.mark.parametrize("state", [STARTING, BACKOFF, EXITED, FAILED])
def test_exited_out_of_turn_raises(state: str) -> None:
    """should refuse exited() unless RUNNING or STOPPING, and leave the task as it was."""
    life = in_state(state)
    status_before = life.last_status
    with pytest.raises(IllegalTransition, match=rf"exited\(\) is not allowed in state '{state}'"):
        life.exited(1, 5.0)
    assert life.state == state
    assert life.last_status == status_before


def test_task_repr_shows_its_state() -> None:
    """should show a task's state, restarts, last status and pending restart in its repr."""
    life = in_state(BACKOFF)
    assert repr(life) == "TaskLife(state='backoff', restarts=1, last_status=1, restart_at=2.0)"


def test_module_imports_nothing_but_its_record_base() -> None:
    """should load without importing any module but pyinit.record: it runs on every container
    start (what it imports for mypy only, under TYPE_CHECKING, is never loaded)."""
    tree = ast.parse(pathlib.Path(supervisor.__file__).read_text())
    for node in ast.walk(tree):  # drop the `if TYPE_CHECKING:` blocks
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            node.body = []
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [(n.module if isinstance(n, ast.ImportFrom) else None) for n in imports] == [
        "pyinit.record"
    ]


# --- properties -------------------------------------------------------------------------------

rules_strategy = st.builds(
    lambda policy, delay, factor, reset, limit, window, code: RestartRules(
        restart=policy,
        restart_delay=delay,
        restart_max_delay=delay * factor,
        restart_reset=reset,
        max_restarts=limit,
        restart_window=window,
        no_restart_code=code,
    ),
    st.sampled_from(RESTART_POLICIES),
    st.floats(0.0, 5.0),
    st.floats(1.0, 40.0),
    st.floats(0.0, 20.0),
    st.integers(0, 8),
    st.floats(0.0, 120.0),
    st.sampled_from([None, 125]),
)

# Successes, plain failures, the "do not restart" code and signal deaths, often; anything else.
statuses = st.sampled_from([0, 1, 125, 137, 143]) | st.integers(0, 255)

# One run of the task: how long it stays up, its exit status, how late the loop restarts it.
runs_strategy = st.lists(
    st.tuples(st.floats(0.0, 30.0), statuses, st.floats(0.0, 5.0)),
    max_size=60,
)


@settings(max_examples=300)
@given(rules=rules_strategy, runs=runs_strategy)
def test_any_exit_sequence_respects_backoff_and_limit(
    rules: RestartRules, runs: list[tuple[float, int, float]]
) -> None:
    """should keep every delay within [restart_delay, restart_max_delay] and never schedule
    more than max_restarts restarts within any restart_window, whatever the exits."""
    life = running(rules)
    now = 0.0
    restart_times: list[float] = []
    previous_delay: float | None = None
    for uptime, status, lateness in runs:
        start = now
        now += uptime
        d = life.exited(status, now)
        assert d.status == status == life.last_status
        assert d.restarts == life.restarts == len(restart_times) + (d.action == RESTART)
        if d.action != RESTART:
            assert life.ended
            assert (d.at, d.delay, life.restart_at) == (None, 0.0, None)
            assert life.failed == (d.action == GIVE_UP or (status != 0 and d.action == DONE))
            assert d.action != GIVE_UP or status != 0
            break
        assert life.state == BACKOFF
        assert rules.restart_delay <= d.delay <= rules.restart_max_delay
        assert d.at == now + d.delay == life.restart_at
        stayed_up = now - start  # as the task measures it: `uptime` itself may round
        if stayed_up >= rules.restart_reset or previous_delay is None:
            assert d.delay == rules.restart_delay
        else:
            assert d.delay == min(previous_delay * 2, rules.restart_max_delay)
        previous_delay = d.delay
        restart_times.append(now)
        in_window = [t for t in restart_times if t > now - rules.restart_window]
        assert len(in_window) <= rules.max_restarts
        assert life.restart_due(d.at)
        now = d.at + lateness
        life.started(now)
