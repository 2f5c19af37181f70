"""The wait policies and the halt rule (spec §4, docs/trc.md §3.7 and §4), driven with fake
events: no processes, no clock. Each row of spec §4's table in pyinit's mode and in TrivialRC
mode (`compat=True`: TrcWaitPolicy), then what a stop signal, the timeout and halt items do
to the status."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyinit.status import TIMEOUT
from pyinit.waitpolicy import TrcWaitPolicy, WaitPolicy, after_halt

pytestmark = pytest.mark.timeout(30)  # every test here: pure, milliseconds

POLICIES = ("wait_any", "wait_err", "wait_all", "wait_forever")

#: Events, in the order the loop reports them:
#:   ("async", INDEX, STATUS)  async task number INDEX (launch order) ended for good
#:   ("fg", STATUS)            a foreground item ended, not the last of the sequence
#:   ("last", STATUS)          the last foreground item (the main command) ended
Event = tuple[str, int] | tuple[str, int, int]


def policy(
    name: str, *, compat: bool = False, async_tasks: int = 0, foreground: bool = True
) -> WaitPolicy:
    """A WaitPolicy as stages.run makes it; with no foreground sequence it says so at once."""
    rules = TrcWaitPolicy if compat else WaitPolicy
    p = rules(name, async_tasks=async_tasks, foreground=foreground)
    if not foreground:
        p.foreground_absent()
    return p


def feed(p: WaitPolicy, *events: Event) -> list[bool]:
    """Report `events` to `p`; returns, per foreground event, whether the sequence goes on."""
    go_on = []
    for kind, *numbers in events:
        if kind == "async":
            index, status = numbers
            p.async_ended(index, f"D{index + 1}", status)
        else:
            go_on.append(p.foreground_item_ended("F", numbers[0], last=kind == "last"))
    return go_on


def ended_with(p: WaitPolicy) -> int | None:
    """The final status, or None while the run goes on."""
    return p.status if p.ended else None


# ---------------------------------------------------------------------------------------------
# pyinit's mode: wait_any


@pytest.mark.parametrize("status", [0, 3, 143])
def test_wait_any_ends_when_an_async_task_ends(status: int) -> None:
    """should end a wait_any run when any async task ends for good, with that task's status"""
    p = policy("wait_any", async_tasks=2)
    feed(p, ("async", 1, status))
    assert ended_with(p) == status


@pytest.mark.parametrize("policy_name", POLICIES)
def test_a_one_shot_that_succeeds_ends_no_run(policy_name: str) -> None:
    """should count a one-shot's (a task others wait for with :done) success without ending
    the run, and its failure as any task's"""
    p = policy(policy_name, async_tasks=2)
    p.async_ended(0, "migrate", 0, one_shot=True)
    assert not p.ended
    feed(p, ("last", 0))
    if policy_name == "wait_any":
        assert ended_with(p) == 0
    failing = policy(policy_name, async_tasks=2)
    failing.async_ended(0, "migrate", 4, one_shot=True)
    if policy_name in ("wait_any", "wait_err"):
        assert ended_with(failing) == 4


@pytest.mark.parametrize("status", [0, 5])
def test_wait_any_ends_when_the_foreground_sequence_ends(status: int) -> None:
    """should end a wait_any run when the last foreground item ends, with its status"""
    p = policy("wait_any", async_tasks=1)
    assert feed(p, ("fg", 0), ("last", status)) == [True, False]
    assert ended_with(p) == status


def test_wait_any_ends_when_a_foreground_item_fails() -> None:
    """should end a wait_any run when a foreground item fails, skipping the later items"""
    p = policy("wait_any", async_tasks=1)
    assert feed(p, ("fg", 4)) == [False]
    assert ended_with(p) == 4


def test_wait_any_goes_on_after_a_successful_foreground_item() -> None:
    """should run the next foreground item when one that is not the last succeeds"""
    p = policy("wait_any", async_tasks=1)
    assert feed(p, ("fg", 0), ("fg", 0)) == [True, True]
    assert ended_with(p) is None


def test_wait_any_with_nothing_to_wait_for_ends_with_0() -> None:
    """should end a wait_any run with 0 when there are no tasks at all (only boot and halt)"""
    assert ended_with(policy("wait_any", foreground=False)) == 0


def test_the_first_end_decides() -> None:
    """should keep the status of the event that ended the run: later ends change nothing"""
    p = policy("wait_any", async_tasks=2)
    feed(p, ("async", 0, 3), ("async", 1, 9), ("last", 5))
    assert ended_with(p) == 3


# ---------------------------------------------------------------------------------------------
# pyinit's mode: wait_err


def test_wait_err_only_logs_successes() -> None:
    """should not end a wait_err run when tasks succeed, only when one fails, with its status"""
    p = policy("wait_err", async_tasks=3)
    assert feed(p, ("async", 0, 0), ("fg", 0), ("last", 0)) == [True, True]
    assert ended_with(p) is None
    feed(p, ("async", 2, 6))
    assert ended_with(p) == 6


def test_wait_err_ends_at_the_first_failing_foreground_item() -> None:
    """should end a wait_err run at the first failing foreground item and skip the rest"""
    p = policy("wait_err", async_tasks=1)
    assert feed(p, ("fg", 0), ("fg", 4)) == [True, False]
    assert ended_with(p) == 4


def test_wait_err_ends_with_0_once_everything_succeeded() -> None:
    """should end a wait_err run with 0 when every task has ended and none failed"""
    p = policy("wait_err", async_tasks=2)
    feed(p, ("last", 0), ("async", 1, 0))
    assert ended_with(p) is None  # D1 still runs
    feed(p, ("async", 0, 0))
    assert ended_with(p) == 0


def test_wait_err_without_foreground() -> None:
    """should end a wait_err run of async tasks only when one fails"""
    p = policy("wait_err", async_tasks=2, foreground=False)
    feed(p, ("async", 0, 0))
    assert ended_with(p) is None
    feed(p, ("async", 1, 2))
    assert ended_with(p) == 2


# ---------------------------------------------------------------------------------------------
# pyinit's mode: wait_all


def test_wait_all_waits_for_every_task_and_keeps_the_first_failure() -> None:
    """should end a wait_all run only when every task has ended, with the first failure in
    time (not the last-listed task's, as TrivialRC would)"""
    p = policy("wait_all", async_tasks=2)
    assert feed(p, ("async", 1, 4), ("fg", 5), ("last", 0)) == [True, True]
    assert ended_with(p) is None  # D1 still runs
    feed(p, ("async", 0, 6))
    assert ended_with(p) == 4


def test_wait_all_runs_every_foreground_item_after_a_failure() -> None:
    """should go on with the next foreground item after one fails under wait_all"""
    p = policy("wait_all")
    assert feed(p, ("fg", 3), ("fg", 0), ("last", 0))[:2] == [True, True]
    assert ended_with(p) == 3


def test_wait_all_with_no_failure_ends_with_0() -> None:
    """should end a wait_all run with 0 when no task failed"""
    p = policy("wait_all", async_tasks=1)
    feed(p, ("last", 0), ("async", 0, 0))
    assert ended_with(p) == 0


@given(st.lists(st.integers(0, 255), min_size=1, max_size=6), st.integers(0, 255))
def test_wait_all_status_is_the_first_failure_in_time(asyncs: list[int], main: int) -> None:
    """should, for any statuses and any order of ends, give the first non-zero status in time"""
    p = policy("wait_all", async_tasks=len(asyncs))
    events: list[Event] = [("async", i, s) for i, s in enumerate(asyncs)]
    events.insert(len(events) // 2, ("last", main))
    feed(p, *events)
    in_time = [e[-1] for e in events]
    assert ended_with(p) == next((s for s in in_time if s), 0)


# ---------------------------------------------------------------------------------------------
# pyinit's mode: wait_forever, stop signals, the timeout


@pytest.mark.parametrize("compat", [False, True])
def test_wait_forever_is_not_ended_by_tasks(compat: bool) -> None:
    """should keep a wait_forever run going whatever the tasks do, and run every foreground
    item even after one fails"""
    p = policy("wait_forever", compat=compat, async_tasks=2)
    go_on = feed(p, ("async", 0, 3), ("fg", 4), ("last", 0), ("async", 1, 0))
    assert go_on[0] is True
    assert ended_with(p) is None


@pytest.mark.parametrize("compat", [False, True])
@pytest.mark.parametrize("name", POLICIES)
@pytest.mark.parametrize(("signum", "expected"), [(15, 143), (2, 130), (3, 131)])
def test_stop_signal_with_no_foreground_item_gives_128_plus_n(
    name: str, compat: bool, signum: int, expected: int
) -> None:
    """should end any run stopped by signal N with 128+N when no foreground item was running
    (TrivialRC mode too: trc's 0 for wait_forever + TERM and its ignored QUIT are bash
    artefacts spec §4 does not copy)"""
    p = policy(name, compat=compat, async_tasks=1)
    p.stop_signal(signum, None)
    assert ended_with(p) == expected


@pytest.mark.parametrize("compat", [False, True])
@pytest.mark.parametrize("name", POLICIES)
def test_stop_signal_takes_the_running_foreground_items_status(name: str, compat: bool) -> None:
    """should end a run stopped while a foreground item ran with that item's status (it got
    the signal and decided, as with tini)"""
    p = policy(name, compat=compat, async_tasks=1)
    p.stop_signal(15, 7)
    assert ended_with(p) == 7


@pytest.mark.parametrize("compat", [False, True])
@pytest.mark.parametrize("name", POLICIES)
def test_timeout_gives_124(name: str, compat: bool) -> None:
    """should end a run whose --timeout expired with 124, as timeout(1)"""
    p = policy(name, compat=compat, async_tasks=1)
    p.timeout()
    assert ended_with(p) == TIMEOUT == 124


def test_a_signal_after_the_end_changes_nothing() -> None:
    """should keep the status of a run that had already ended when a stop signal came"""
    p = policy("wait_any", async_tasks=1)
    feed(p, ("async", 0, 3))
    p.stop_signal(15, None)
    p.timeout()
    assert ended_with(p) == 3
    assert p.reason == "D1 ended"


# ---------------------------------------------------------------------------------------------
# TrivialRC mode (docs/trc.md §3.7, §4)


@pytest.mark.parametrize("status", [0, 11])
def test_trc_wait_any_first_foreground_item_stops_the_run(status: int) -> None:
    """should, in TrivialRC mode, end a wait_any run when the first foreground item ends,
    whatever its status (`-F 'echo 11; exit 11' -F 'echo 22; exit 22'` -> 11)"""
    p = policy("wait_any", compat=True, async_tasks=1)
    assert feed(p, ("fg", status)) == [False]
    assert ended_with(p) == status


@pytest.mark.parametrize("status", [0, 11, 143])
def test_trc_wait_any_async_end_gives_143(status: int) -> None:
    """should, in TrivialRC mode, end a wait_any run ended by an async task with 143, whatever
    the task's own status (trc's main got SIGTERM from it)"""
    p = policy("wait_any", compat=True, async_tasks=2, foreground=False)
    feed(p, ("async", 0, status))
    assert ended_with(p) == 143


def test_trc_wait_any_with_nothing_to_wait_for_ends_with_0() -> None:
    """should, in TrivialRC mode, end a run with no tasks at all with 0 (`trc` alone)"""
    assert ended_with(policy("wait_any", compat=True, foreground=False)) == 0


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        # -D 'exit 3' -D 'sleep 0.2': the earlier async's failure is not reflected
        ([("async", 0, 3), ("async", 1, 0)], 0),
        # -D 'sleep 0.2' -D 'exit 3': the last-listed async's status, though it ended first
        ([("async", 1, 3), ("async", 0, 0)], 3),
        # -D ... -F 'exit 4': the last sync status when the last-listed async succeeded
        ([("fg", 0), ("last", 4), ("async", 1, 0), ("async", 0, 2)], 4),
        # ... replaced by the last-listed async's status when that is non-zero
        ([("fg", 0), ("last", 4), ("async", 0, 2), ("async", 1, 3)], 3),
        # a failing sync item that is not the last: only the last sync status counts
        ([("fg", 5), ("last", 0), ("async", 0, 0), ("async", 1, 0)], 0),
    ],
    ids=[
        "earlier-async-fails",
        "last-listed-fails-first",
        "last-sync",
        "last-async-wins",
        "earlier-sync-fails",
    ],
)
def test_trc_wait_all_takes_the_last_listed_async_status(
    events: list[Event], expected: int
) -> None:
    """should, in TrivialRC mode, end wait_all with the last sync item's status, replaced by the
    last-listed async task's status when that is non-zero"""
    p = policy(
        "wait_all", compat=True, async_tasks=2, foreground=any(e[0] != "async" for e in events)
    )
    go_on = feed(p, *events)
    assert all(go_on[:-1])  # a failing sync item does not stop the later ones
    assert ended_with(p) == expected


def test_trc_wait_err_ends_at_the_first_failing_sync_item() -> None:
    """should, in TrivialRC mode, end wait_err at the first failing sync item, with its status
    (exitcodes-test (b): `-F 'exit 0' -F 'exit 4' exit 5` -> 4, `exit 5` never runs)"""
    p = policy("wait_err", compat=True, async_tasks=2)
    assert feed(p, ("fg", 0), ("fg", 4)) == [True, False]
    assert ended_with(p) == 4


def test_trc_wait_err_does_not_act_on_async_failures() -> None:
    """should, in TrivialRC mode, not end wait_err when an async task fails; at the end only
    the last-listed async task's status counts (`-D 'exit 3' -D 'sleep 1'` -> 0)"""
    p = policy("wait_err", compat=True, async_tasks=2, foreground=False)
    feed(p, ("async", 0, 3))
    assert ended_with(p) is None
    feed(p, ("async", 1, 0))
    assert ended_with(p) == 0


@given(
    st.lists(st.integers(0, 255), min_size=1, max_size=6),
    st.integers(0, 255),
    st.randoms(use_true_random=False),
)
def test_trc_wait_all_status_rule_for_any_order(
    asyncs: list[int], last_sync: int, rnd: random.Random
) -> None:
    """should, in TrivialRC mode and for any order of ends, give the last-listed async task's
    status if non-zero, else the last sync item's"""
    p = policy("wait_all", compat=True, async_tasks=len(asyncs))
    events: list[Event] = [("async", i, s) for i, s in enumerate(asyncs)]
    rnd.shuffle(events)
    events.insert(rnd.randint(0, len(events)), ("last", last_sync))
    feed(p, *events)
    assert ended_with(p) == (asyncs[-1] or last_sync)


# ---------------------------------------------------------------------------------------------
# Halt items (spec §4: "never hides an earlier failure"; trc: the last halt item's status)


def final_status(run_status: int, halts: list[int], compat: bool) -> int:
    """What stages.run_halt computes: each halt item's status folded into the run's."""
    final = run_status
    for status in halts:
        final = after_halt(final, status, compat)
    return final


@pytest.mark.parametrize(
    ("run_status", "halts", "expected"),
    [
        (0, [], 0),
        (0, [0], 0),
        (0, [4], 4),  # a failing halt item turns a success into a failure
        (3, [4], 3),  # ... but never hides an earlier failure
        (3, [0], 3),  # and a successful one does not clear it
        (0, [4, 0], 4),  # an earlier halt item's failure stands too
        (0, [0, 4, 5], 4),
        (143, [0], 143),
    ],
)
def test_halt_in_pyinit_mode(run_status: int, halts: list[int], expected: int) -> None:
    """should let a failing halt item turn 0 into its status, never replacing a failure"""
    assert final_status(run_status, halts, compat=False) == expected


@pytest.mark.parametrize(
    ("run_status", "halts", "expected"),
    [
        (5, [], 5),
        (5, [11], 11),  # exitcodes-test (c): -H 'exit 11' exit 5 -> 11
        (5, [0], 0),  # exitcodes-test (d): -H 'exit 0' exit 5 -> 0
        (0, [4, 0], 0),  # the last halt item's status, not the first failure
        (143, [7, 0, 9], 9),
    ],
)
def test_halt_in_trc_mode(run_status: int, halts: list[int], expected: int) -> None:
    """should, in TrivialRC mode, replace the run's status with the last halt item's"""
    assert final_status(run_status, halts, compat=True) == expected


@pytest.mark.parametrize(("after_stop", "final"), [(143, 143), (137, 137), (0, 143), (None, 143)])
def test_wait_any_a_stopped_foreground_decides_and_never_succeeds(
    after_stop: int | None, final: int
) -> None:
    """should, when an async task ends with 0 while the foreground runs, end the run and take
    the foreground's status once stopped, with 0 (or no status) becoming 128 + its stop
    signal"""
    policy = WaitPolicy("wait_any", async_tasks=1, foreground=True)
    policy.async_ended(0, "D1", 0)
    assert policy.ended
    policy.foreground_stopped(after_stop, 15)
    assert policy.status == final


def test_wait_any_an_async_failure_while_the_foreground_runs_keeps_its_status() -> None:
    """should keep a failing async task's own status: only a 0 is replaced"""
    policy = WaitPolicy("wait_any", async_tasks=1, foreground=True)
    policy.async_ended(0, "D1", 3)
    policy.foreground_stopped(143, 15)
    assert policy.status == 3
