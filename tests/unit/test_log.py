"""Log, pure: pyinit's own lines in TrivialRC's text format or as JSON, levels and streams
(spec §7, trivialrc.md "say/log/warn/debug")."""

from __future__ import annotations

import base64
import json
import re
import time
import types
from collections.abc import Iterator

import pytest

from pyinit import log as log_module
from pyinit.log import (
    DEBUG,
    ERROR,
    INFO,
    STDERR,
    STDOUT,
    WARN,
    Log,
    json_line,
    rfc3339,
    task_line_json,
)

pytestmark = pytest.mark.timeout(10)

TEXT = re.compile(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+) \[(\w+)/(\d+)\]: (.*)\n\Z", re.S)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JSON_FIELDS = {"time", "task", "stage", "pid", "stream", "level", "message"}


class Captured:
    """The `write(stream, data)` a Log is given, recording every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bytes]] = []

    def __call__(self, stream: int, data: bytes) -> None:
        self.calls.append((stream, data))

    @property
    def lines(self) -> list[bytes]:
        return [data for _stream, data in self.calls]


def make(**kwargs: object) -> tuple[Log, Captured]:
    out = Captured()
    kwargs.setdefault("main_pid", 1)
    return Log(out, **kwargs), out  # type: ignore[arg-type]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    """Log's clock, settable: `frozen.now` is what time.time() returns in pyinit.log; the
    local time zone is UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    clock = types.SimpleNamespace(now=1796119200.25)  # 2026-12-01 10:00:00.250 UTC
    fake = types.SimpleNamespace(
        time=lambda: clock.now, strftime=time.strftime, localtime=time.localtime, gmtime=time.gmtime
    )
    monkeypatch.setattr(log_module, "time", fake)
    yield clock
    monkeypatch.undo()
    time.tzset()


def test_text_format_is_trivialrcs() -> None:
    """should write `YYYY-MM-DD HH:MM:SS NAME [ns/pid]: message`, local time, one line."""
    rc, out = make(verbosity=INFO)
    before = time.time()
    rc.info("Launching in the background: trc.d/async.web", "async", 42, "web")
    after = time.time()
    [(stream, line)] = out.calls
    assert stream == STDERR
    match = TEXT.match(line)
    assert match, line
    stamp, name, ns, pid, message = match.groups()
    assert (name, ns, pid) == (b"pyinit", b"async", b"42")
    assert message == b"Launching in the background: trc.d/async.web"
    allowed = {
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)).encode() for t in (before, after)
    }
    assert stamp in allowed


def test_exact_line_with_a_fixed_clock(frozen: types.SimpleNamespace) -> None:
    """should give exactly TrivialRC's line for a known time, name, stage and pid."""
    rc, out = make(name="trc", main_pid=7)
    rc.warn("Exiting in the background (exitcode=1): trc.d/async.web", "async", 42)
    assert out.lines == [
        b"2026-12-01 10:00:00 trc [async/42]: Exiting in the background (exitcode=1): "
        b"trc.d/async.web\n"
    ]


def test_timestamp_follows_the_clock(frozen: types.SimpleNamespace) -> None:
    """should show the current second on every line, also when the second changes between
    lines (the stamp is cached per second, never stale)."""
    rc, out = make()
    rc.warn("a")
    frozen.now += 0.5
    rc.warn("b")
    frozen.now += 0.5
    rc.warn("c")
    frozen.now += 3600
    rc.warn("d")
    stamps = [TEXT.match(line).group(1) for line in out.lines]  # type: ignore[union-attr]
    assert stamps == [
        b"2026-12-01 10:00:00",
        b"2026-12-01 10:00:00",
        b"2026-12-01 10:00:01",
        b"2026-12-01 11:00:01",
    ]


def test_pid_defaults_to_pyinits_own() -> None:
    """should show pyinit's pid (main_pid) and the `main` stage when a line is about no task."""
    rc, out = make(main_pid=1234)
    rc.warn("got SIGTERM: stopping")
    assert TEXT.match(out.lines[0]).groups()[2:4] == (b"main", b"1234")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("verbosity", "shown"),
    [
        (ERROR, ["error"]),
        (WARN, ["error", "warn"]),
        (INFO, ["error", "warn", "info"]),
        (DEBUG, ["error", "warn", "info", "debug"]),
    ],
)
def test_levels_gated_by_verbosity(verbosity: int, shown: list[str]) -> None:
    """should show errors only with -q, warnings too by default, launch/exit (info) lines with
    -v, debug lines with -vv."""
    rc, out = make(verbosity=verbosity)
    rc.error("error")
    rc.warn("warn")
    rc.info("info")
    rc.debug("debug")
    messages = [
        TEXT.match(line).group(5).lstrip(b" -").decode()  # type: ignore[union-attr]
        for line in out.lines
    ]
    assert messages == shown
    assert [rc.enabled(level) for level in (ERROR, WARN, INFO, DEBUG)] == [
        level <= verbosity for level in (ERROR, WARN, INFO, DEBUG)
    ]


def test_force_shows_a_line_whatever_the_verbosity() -> None:
    """should write a forced line (a bash item's own `log`) even below the verbosity."""
    rc, out = make(verbosity=ERROR)
    rc.emit(INFO, "from the item", "async", 9, "web", force=True)
    assert TEXT.match(out.lines[0]).group(5) == b"from the item"  # type: ignore[union-attr]


def test_debug_lines_read_dash_message() -> None:
    """should write debug lines as TrivialRC does: ` - message`, two spaces after the colon."""
    rc, out = make(verbosity=DEBUG)
    rc.debug("skipping trc.d/x~: a leftover")
    assert out.lines[0].endswith(b"[main/1]:  - skipping trc.d/x~: a leftover\n")


def test_everything_on_stderr_by_default() -> None:
    """should keep every level off stdout in pyinit's own mode (the application's stdout stays
    clean)."""
    rc, out = make(verbosity=DEBUG)
    rc.error("e")
    rc.warn("w")
    rc.info("i")
    rc.debug("d")
    assert [stream for stream, _ in out.calls] == [STDERR] * 4


def test_split_streams_in_trc_mode() -> None:
    """should, in TrivialRC mode, write log/info and debug lines to stdout and warn/err lines
    to stderr, as trc's `log` and `warn` do."""
    rc, out = make(verbosity=DEBUG, split_streams=True)
    rc.error("e")
    rc.warn("w")
    rc.info("i")
    rc.debug("d")
    assert [stream for stream, _ in out.calls] == [STDERR, STDERR, STDOUT, STDOUT]


def test_note_is_a_warning_or_a_trc_debug_line() -> None:
    """should show pyinit's own commentary as a warning, and in TrivialRC mode only as a debug
    line (trc has no such message)."""
    rc, out = make()
    rc.note("got SIGTERM: stopping")
    assert len(out.lines) == 1
    rc, out = make(notes_are_debug=True)
    rc.note("got SIGTERM: stopping")
    assert out.lines == []
    rc, out = make(notes_are_debug=True, verbosity=DEBUG)
    rc.note("got SIGTERM: stopping")
    assert out.lines[0].endswith(b":  - got SIGTERM: stopping\n")


def test_text_keeps_undecodable_bytes() -> None:
    """should write a file name that was not UTF-8 (decoded with surrogateescape) back as its
    original bytes."""
    rc, out = make()
    name = b"trc.d/async.\xff\xfe".decode(errors="surrogateescape")
    rc.warn(f"Exiting in the background (exitcode=1): {name}")
    assert out.lines[0].endswith(b"(exitcode=1): trc.d/async.\xff\xfe\n")


def test_text_message_is_one_line() -> None:
    """should never let a message with a newline in it (a file name) break into two log
    lines."""
    rc, out = make()
    rc.warn("bad file: trc.d/async.a\nb")
    assert out.lines[0].count(b"\n") == 1
    assert out.lines[0].endswith(b"trc.d/async.a b\n")


def test_json_fields(frozen: types.SimpleNamespace) -> None:
    """should write one JSON object per line with time (RFC 3339, UTC, ms), task, stage, pid,
    stream, level and message."""
    rc, out = make(json=True, verbosity=INFO, main_pid=1)
    rc.warn("web exited (exitcode=1): restart 1 in 1s", "async", 42, "web")
    rc.info("Exited (exitcode=0)")
    [(s1, first), (s2, second)] = out.calls
    assert (s1, s2) == (STDERR, STDERR)
    assert first.endswith(b"\n")
    assert first.count(b"\n") == 1
    assert json.loads(first) == {
        "time": "2026-12-01T10:00:00.250Z",
        "task": "web",
        "stage": "async",
        "pid": 42,
        "stream": "stderr",
        "level": "warn",
        "message": "web exited (exitcode=1): restart 1 in 1s",
    }
    record = json.loads(second)
    assert set(record) == JSON_FIELDS
    assert (record["task"], record["stage"], record["pid"], record["level"]) == (
        "pyinit",
        "pyinit",
        1,
        "info",
    )


def test_json_stage_of_a_task_is_its_own() -> None:
    """should give pyinit's lines about a task the stage its output lines carry (boot, main),
    not TrivialRC's namespace (main for a boot item, sync for the main command)."""
    rc, out = make(json=True, verbosity=INFO)
    rc.stages.update({"B1": "boot", "web": "main"})
    rc.info("Launching", "main", 5, "B1")
    rc.info("Launching", "sync", 6, "web")
    rc.info("Launching", "async", 7, "other")  # not started through the loop: the ns stays
    assert [json.loads(line)["stage"] for line in out.lines] == ["boot", "main", "async"]


def test_json_time_is_now() -> None:
    """should stamp JSON lines with the current UTC time."""
    rc, out = make(json=True)
    before = time.time()
    rc.error("boom")
    after = time.time()
    stamp = json.loads(out.lines[0])["time"]
    assert RFC3339.match(stamp), stamp
    assert rfc3339(before)[:19] <= stamp[:19] <= rfc3339(after)[:19]


def test_json_levels_and_streams() -> None:
    """should name each level and the stream it went to, in both stream modes."""
    for split, streams in (
        (False, ["stderr"] * 4),
        (True, ["stderr", "stderr", "stdout", "stdout"]),
    ):
        rc, out = make(json=True, verbosity=DEBUG, split_streams=split)
        rc.error("e")
        rc.warn("w")
        rc.info("i")
        rc.debug("d")
        records = [json.loads(line) for line in out.lines]
        assert [r["level"] for r in records] == ["error", "warn", "info", "debug"]
        assert [r["stream"] for r in records] == streams
        assert [s for s, _ in out.calls] == [1 if n == "stdout" else 2 for n in streams]


def test_json_debug_message_is_bare() -> None:
    """should give a debug line's message without TrivialRC's ` - ` mark (the level says it)."""
    rc, out = make(json=True, verbosity=DEBUG)
    rc.debug("forwarding SIGHUP to every task")
    assert json.loads(out.lines[0])["message"] == "forwarding SIGHUP to every task"


def test_json_keeps_unicode_and_escapes_control_characters() -> None:
    """should keep non-ASCII as UTF-8 and escape newlines and quotes, one line per object."""
    rc, out = make(json=True)
    rc.warn('naïve "quoted"\nsecond line \x1b[31m', task="café")
    line = out.lines[0]
    assert "naïve".encode() in line
    assert line.count(b"\n") == 1
    record = json.loads(line)
    assert record["message"] == 'naïve "quoted"\nsecond line \x1b[31m'
    assert record["task"] == "café"


def test_json_survives_undecodable_names() -> None:
    """should still write valid JSON (never raise) for a message or task name holding bytes
    that were not UTF-8."""
    rc, out = make(json=True)
    name = b"web\xff".decode(errors="surrogateescape")
    rc.warn(f"{name} exited", task=name)
    line = out.lines[0]
    line.decode("utf-8")  # valid UTF-8
    assert b"\\udc" not in line  # lone surrogate escapes: strict parsers reject them
    record = json.loads(line)
    assert record["message"] == "web\ufffd exited"
    assert record["task"] == "web\ufffd"
    assert base64.b64decode(record["message_b64"]) == b"web\xff exited"
    assert base64.b64decode(record["task_b64"]) == b"web\xff"
    assert "stage_b64" not in record


def test_rfc3339() -> None:
    """should format UTC with milliseconds and a Z."""
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1796119200.25) == "2026-12-01T10:00:00.250Z"
    assert rfc3339(1796119200.9999) == "2026-12-01T10:00:00.999Z"
    assert RFC3339.match(rfc3339(time.time()))


def test_json_line_is_compact() -> None:
    """should write compact JSON with one newline at the end."""
    assert json_line({"a": 1, "b": "x y"}) == b'{"a":1,"b":"x y"}\n'


def test_task_line_json_fields() -> None:
    """should format a task's line as one JSON object with time, task, stage, pid, stream and
    the line, invalid UTF-8 replaced, control characters escaped."""
    fmt = task_line_json("web", "async", 42, "stderr", clock=lambda: 1796119200.25)
    line = fmt(b'listening \xff "on" \\ :8080\t\x01')
    assert line.endswith(b"}\n")
    assert line.count(b"\n") == 1
    assert json.loads(line) == {
        "time": "2026-12-01T10:00:00.250Z",
        "task": "web",
        "stage": "async",
        "pid": 42,
        "stream": "stderr",
        "line": 'listening \ufffd "on" \\ :8080\t\x01',
        "line_b64": base64.b64encode(b'listening \xff "on" \\ :8080\t\x01').decode(),
    }
    assert list(json.loads(line)) == ["time", "task", "stage", "pid", "stream", "line", "line_b64"]
    assert "line_b64" not in json.loads(fmt(b"valid \xc3\xa9"))  # only when it was not UTF-8


def test_task_line_json_matches_json_line() -> None:
    """should give exactly what json_line gives for the same fields (one JSON style)."""
    fmt = task_line_json("café", "main", 7, "stdout", clock=lambda: 1796119200.5)
    for raw in (b"", b"plain", b"na\xc3\xafve \xe2\x80\xa8", b"\x00\x1b[1m"):
        assert fmt(raw) == json_line(
            {
                "time": "2026-12-01T10:00:00.500Z",
                "task": "café",
                "stage": "main",
                "pid": 7,
                "stream": "stdout",
                "line": raw.decode(errors="replace"),
            }
        )


def test_task_line_json_time_follows_the_clock() -> None:
    """should stamp each line with the clock's current millisecond."""
    now = [1796119200.0]
    fmt = task_line_json("t", "async", 1, "stdout", clock=lambda: now[0])
    stamps = []
    for step in (0.0, 0.0004, 0.0011, 1.5, 86400.0):
        now[0] += step
        stamps.append(json.loads(fmt(b"x"))["time"])
    assert stamps == [
        "2026-12-01T10:00:00.000Z",
        "2026-12-01T10:00:00.000Z",
        "2026-12-01T10:00:00.001Z",
        "2026-12-01T10:00:01.501Z",
        "2026-12-02T10:00:01.501Z",
    ]


def test_task_line_json_undecodable_task_name() -> None:
    """should still give valid JSON for a task named with bytes that were not UTF-8."""
    name = b"web\xff".decode(errors="surrogateescape")
    record = json.loads(task_line_json(name, "async", 1, "stdout")(b"hi"))
    assert record["line"] == "hi"
    assert record["task"].startswith("web")
