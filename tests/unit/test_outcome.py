"""The first stop signal reaches the foreground item, whenever it lands (outcome.py).

The handler delivers it itself when the item is already its foreground (forwarding.py). One
that lands a moment earlier, between the previous item's end and this one being routed, reached
no one; the loop then delivers it. These tests drive `Outcome` with fakes and record what it
sends, so the window that a process test hits once in many runs is hit every time here.
"""

from __future__ import annotations

import signal
from types import SimpleNamespace
from typing import Any

import pytest

from pyinit import outcome
from pyinit.forwarding import ROUTER, Route

pytestmark = pytest.mark.timeout(10)

PID = 4242


class Log:
    def note(self, message: str) -> None:
        self.last = message


def make(
    monkeypatch: pytest.MonkeyPatch, routed: int, allowed: frozenset[int] | None = None
) -> tuple[outcome.Outcome, Any, list[tuple[int, int]]]:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(
        outcome, "deliver", lambda route, signum: sent.append((route.pid, signum)), raising=False
    )
    monkeypatch.setattr(ROUTER, "foreground", routed)
    monkeypatch.setattr(ROUTER, "rewrite", {})
    task = SimpleNamespace(pid=PID, running=True, route=Route(PID, True, allowed), forwarded=set())
    tasks = SimpleNamespace(foreground=task)
    plan = SimpleNamespace(mode=SimpleNamespace(stop_signals=frozenset()), timeout=None)
    return outcome.Outcome(tasks, plan, Log(), 0.0), task, sent  # type: ignore[arg-type]


def test_a_stop_signal_the_handler_delivered_is_not_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """should only note a first stop signal that the handler gave the foreground item."""
    out, task, sent = make(monkeypatch, routed=PID)
    out._stop_requested(signal.SIGTERM, PID)
    assert sent == []
    assert task.forwarded == {signal.SIGTERM}
    assert out.signal_delivered
    assert out.signalled is task


def test_a_stop_signal_that_reached_no_one_is_delivered_by_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """should deliver a first stop signal that landed before the item was routed."""
    out, task, sent = make(monkeypatch, routed=PID)
    out._stop_requested(signal.SIGTERM, 0)
    assert sent == [(PID, signal.SIGTERM)]
    assert out.signal_delivered
    assert task.forwarded == {signal.SIGTERM}


@pytest.mark.parametrize(
    ("routed", "allowed"),
    [
        pytest.param(0, None, id="stop_delay-the-shutdown-sends-it-later"),
        pytest.param(PID, frozenset({signal.SIGHUP}), id="its-signals-leave-it-out"),
    ],
)
def test_a_stop_signal_the_foreground_is_not_to_get_now_is_not_sent(
    monkeypatch: pytest.MonkeyPatch, routed: int, allowed: frozenset[int] | None
) -> None:
    """should leave a foreground with a stop_delay, or one whose signals leave TERM out, to
    the shutdown, as the handler does."""
    out, task, sent = make(monkeypatch, routed=routed, allowed=allowed)
    out._stop_requested(signal.SIGTERM, 0)
    assert sent == []
    assert not out.signal_delivered
    assert out.signalled is task
