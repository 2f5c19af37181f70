"""Task output through a real pyinit, as PID 1 and as a subreaper: every line whole, once, with
its task's prefix, on the stream the task used, in order; bytes unchanged; nothing lost when a
task dies; a slow or gone reader costs neither memory nor pyinit's life; JSON, prefix formats,
the main command's pass-through, colours (spec §7, README "Output")."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import NS_INIT, PYINIT, ROOT, Run, StartPyinit, child, command

pytestmark = pytest.mark.timeout(30)

PY = sys.executable
LIMIT = 65536  # pyinit.output.LINE_LIMIT
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
TASK_FIELDS = {"time", "task", "stage", "pid", "stream", "line"}
OWN_FIELDS = {"time", "task", "stage", "pid", "stream", "level", "message"}
#: What the optional "event" of pyinit's own lines may say (README, Output).
EVENTS = {"start", "ready", "restart", "give-up", "unhealthy", "healthy"}


def expected_lines(tag: bytes, count: int) -> dict[str, list[bytes]]:
    """What tests/children/line_writer.py's lines should look like after pyinit, without the
    prefix, per stream."""
    out = [b"%s %d" % (tag, i) for i in range(count) if i % 7 != 3]
    err = [b"%s %d" % (tag, i) for i in range(count) if i % 7 == 3]
    out += [b"L" * LIMIT, b"M" * LIMIT + b"\\", b"M" * (100000 - LIMIT), b"end of " + tag]
    err += [b"E" * LIMIT]
    return {"stdout": out, "stderr": err}


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def by_prefix(
    data: bytes, names: list[bytes], others: re.Pattern[bytes] | None = None
) -> dict[bytes, list[bytes]]:
    """Split pyinit's output into each task's lines (prefix `NAME: ` removed). Every line must
    be a task's line or match `others` (pyinit's own lines, ns_init's report)."""
    assert data.endswith(b"\n") or not data, data[-200:]
    got: dict[bytes, list[bytes]] = {name: [] for name in names}
    for line in data.split(b"\n")[:-1]:
        name, sep, rest = line.partition(b": ")
        if sep and name in got:
            got[name].append(rest)
        elif others is None or not others.search(line):
            raise AssertionError(f"a line that is no task's: {line[:200]!r}")
    return got


OWN_LINE = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d pyinit \[\w+/\d+\]: |^ns_init: left")


def read_pty(master: int, timeout: float = 20) -> bytes:
    """Everything written to a pty until every slave fd is closed (EIO)."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


# -- every line, whole, once, in order ---------------------------------------------------------


@pytest.mark.timeout(60)
def test_two_busy_tasks_every_line_whole_once_in_order(
    mode: str, tmp_path: Path, run_pyinit: StartPyinit
) -> None:
    """should deliver every line of two tasks writing 200,000 lines each at once exactly once,
    whole, with the task's prefix, on the stream the task used, in the task's order; keep a
    64 KiB line whole, cut a longer one with the mark, and end the last unterminated line."""
    writer = child("line_writer.py")
    out_path = tmp_path / "stdout"
    with open(out_path, "wb") as out:
        run = run_pyinit(
            mode,
            [
                "--wait",
                "wait_all",
                "-D",
                f"exec {PY} {writer} a 200000 1",
                "-D",
                f"exec {PY} {writer} b 200000 2",
            ],
            stdout=out.fileno(),
        )
        assert run.wait(50) == 0, run.text()
    stdout = by_prefix(out_path.read_bytes(), [b"D1", b"D2"])
    stderr = by_prefix(b"".join(run.lines["stderr"]), [b"D1", b"D2"], OWN_LINE)
    for name, tag in ((b"D1", b"a"), (b"D2", b"b")):
        expected = expected_lines(tag, 200000)
        assert stdout[name] == expected["stdout"], name
        assert stderr[name] == expected["stderr"], name


def test_bytes_pass_unchanged(mode: str, tmp_path: Path, run_pyinit: StartPyinit) -> None:
    """should pass invalid UTF-8, NUL, \\r and escape sequences byte for byte."""
    payload = b"\xff\xfebad\x80\n\x00nul\x00\ncr\r\n\x1b[1mbold\x1b[0m\n\xc3\x28 \xed\xa0\x80\n"
    path = script(
        tmp_path, "bytes.py", f"import os\nos.write(1, {payload!r})\nos.write(2, {payload!r})\n"
    )
    run = run_pyinit(mode, ["--wait", "wait_all", "-D", f"exec {PY} {path}"])
    assert run.wait() == 0
    expected = [b"D1: " + line + b"\n" for line in payload.split(b"\n")[:-1]]
    assert run.lines["stdout"] == expected
    assert [line for line in run.lines["stderr"] if line.startswith(b"D1: ")] == expected


def test_unterminated_last_line_is_written_at_exit(mode: str, run_pyinit: StartPyinit) -> None:
    """should write a task's last line that has no newline when the task ends, as a line of
    its own, before pyinit's news of the task's exit."""
    run = run_pyinit(
        mode, ["-v", "--wait", "wait_all", "-D", "printf 'one\\ntwo'", "-D", "printf 'err' >&2"]
    )
    assert run.wait() == 0
    assert run.lines["stdout"] == [b"D1: one\n", b"D1: two\n"]
    err = run.text()
    assert "D2: err\n" in err
    assert err.index("D2: err\n") < err.index("(exitcode=0): printf 'err' >&2")


# -- nothing lost when a task dies -------------------------------------------------------------


@pytest.mark.parametrize("how", ["self", "group"])
def test_task_killed_mid_write_loses_nothing(
    mode: str, tmp_path: Path, run_pyinit: StartPyinit, how: str
) -> None:
    """should deliver every byte a task wrote before it was SIGKILLed (by itself, or with its
    whole process group), the unfinished last line included, and end with 128+9."""
    killer = child("group_killer.py")
    run = run_pyinit(mode, ["-v", "--wait", "wait_all", "-D", f"exec {PY} {killer} 50000 {how}"])
    assert run.wait() == 137, run.text()
    assert run.lines["stdout"] == [b"D1: line %d\n" % i for i in range(50000)] + [b"D1: partial\n"]
    err = run.text()
    assert "D1: last words\n" in err
    assert err.index("D1: last words") < err.index("(exitcode=137)")


def test_lines_written_at_shutdown_are_not_lost(
    mode: str, tmp_path: Path, run_pyinit: StartPyinit
) -> None:
    """should deliver what a task writes while it stops (its TERM handler's output), even when
    the run is ending."""
    code = (
        "import os, signal, sys, time\n"
        "def bye(*_):\n"
        "    os.write(1, b''.join(b'bye %d\\n' % i for i in range(20000)) + b'gone')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "os.write(1, b'ready\\n')\n"
        "while True: time.sleep(1)\n"
    )
    path = script(tmp_path, "stopper.py", code)
    run = run_pyinit(mode, ["-D", f"exec {PY} {path}", "--", "sh", "-c", "sleep 30"])
    run.expect("^D1: ready", "stdout")
    run.signal(15)
    assert run.wait() == 143
    assert run.lines["stdout"] == [b"D1: ready\n"] + [b"D1: bye %d\n" % i for i in range(20000)] + [
        b"D1: gone\n"
    ]


# -- a reader that is gone or slow -------------------------------------------------------------


def test_stdout_reader_gone_pyinit_carries_on(
    mode: str, tmp_path: Path, run_pyinit: StartPyinit
) -> None:
    """should, when nobody reads pyinit's stdout any more (EPIPE), drop that output, keep
    logging on stderr and exit with the status of the task that failed."""
    writer = child("line_writer.py")
    r, w = os.pipe()
    os.close(r)
    run = run_pyinit(
        mode,
        ["-v", "--wait", "wait_all", "-D", f"{PY} {writer} a 100000; exit 3", "-D", "seq 1000 >&2"],
        stdout=w,
    )
    os.close(w)
    assert run.wait() == 3
    err = run.text()
    assert "Traceback" not in err
    assert "(exitcode=3)" in err
    assert [line for line in run.lines["stderr"] if line.startswith(b"D2: ")] == [
        b"D2: %d\n" % i for i in range(1, 1001)
    ]


def test_stderr_reader_gone_stdout_still_complete(mode: str, tmp_path: Path) -> None:
    """should, with pyinit's stderr gone (EPIPE), still deliver every stdout line and exit
    with the right status."""
    writer = child("line_writer.py")
    args = ["-v", "--wait", "wait_all", "-D", f"{PY} {writer} a 20000; exit 4"]
    # Only pyinit's stderr loses its reader (ns_init must still be able to report).
    no_reader = (
        "import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 2); "
        "os.execvp(sys.argv[1], sys.argv[1:])"
    )
    inner = [PY, "-c", no_reader, *PYINIT, *args]
    base = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
    cmd = [*base, *inner] if mode == "pid1" else [*base, PY, str(NS_INIT), *inner]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(cmd, capture_output=True, env=env, timeout=25, check=False)
    assert result.returncode == 4, result.stderr
    stdout = by_prefix(result.stdout, [b"D1"])
    assert stdout[b"D1"] == expected_lines(b"a", 20000)["stdout"]
    assert b"Traceback" not in result.stderr


def test_stdout_to_a_file_shared_with_the_main_command(
    mode: str, tmp_path: Path, run_pyinit: StartPyinit
) -> None:
    """should, with stdout a regular file the main command also writes to, keep every line of
    both: pyinit writes at the same file offset, never over the command's lines."""
    out_path = tmp_path / "log"
    main = "i=0; while [ $i -lt 500 ]; do echo main $i; i=$((i+1)); done"
    with open(out_path, "wb") as out:
        run = run_pyinit(
            mode,
            ["--wait", "wait_all", "-D", "seq 2000", "--", "sh", "-c", main],
            stdout=out.fileno(),
        )
        assert run.wait() == 0
    lines = out_path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert [x for x in lines if x.startswith(b"D1: ")] == [b"D1: %d" % i for i in range(1, 2001)]
    assert [x for x in lines if x.startswith(b"main ")] == [b"main %d" % i for i in range(500)]
    assert len(lines) == 2501


@pytest.mark.timeout(60)
def test_slow_reader_keeps_memory_bounded(mode: str, run_pyinit: StartPyinit) -> None:
    """should, while a task writes 200 MB and pyinit's stdout is read slowly, keep pyinit's
    RSS from growing by more than ~20 MB (it stops reading the task instead), and deliver
    every byte."""
    text = b"a line of text for the slow reader, forty-some bytes"
    total = 200_000_000
    r, w = os.pipe()
    run = run_pyinit(
        mode, ["--wait", "wait_all", "-D", f"yes '{text.decode()}' | head -c {total}"], stdout=w
    )
    os.close(w)
    line = b"D1: " + text + b"\n"
    got = 0
    whole = 0
    leftover = b""
    baseline = 0
    peak = 0
    next_pause = 1 << 20
    proc = psutil.Process(run.pid)
    try:
        while True:
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            got += len(chunk)
            buf = leftover + chunk
            cut = buf.rfind(b"\n") + 1
            whole += buf.count(line, 0, cut)
            leftover = buf[cut:]
            if got >= next_pause:  # stall now and then: pyinit's queue fills up
                time.sleep(0.15)
                try:
                    rss = proc.memory_info().rss
                except psutil.NoSuchProcess:
                    break
                baseline = baseline or rss
                peak = max(peak, rss)
                next_pause += 10_000_000
    finally:
        os.close(r)
    assert run.wait(30) == 0, run.text()
    full_lines = total // len(text + b"\n")
    tail = total - full_lines * len(text + b"\n")
    assert whole == full_lines
    assert got == full_lines * len(line) + (len(b"D1: ") + tail + 1 if tail else 0)
    print(f"pyinit RSS: {baseline / 2**20:.1f} MiB at first, {peak / 2**20:.1f} MiB at most")
    assert peak - baseline < 20 << 20, f"RSS grew from {baseline >> 20} to {peak >> 20} MiB"


@pytest.mark.timeout(60)
def test_stdout_and_stderr_one_pipe_lines_never_mix(mode: str, tmp_path: Path) -> None:
    """should, when pyinit's stdout and stderr are one pipe (`2>&1`) read slowly, still keep
    every line whole: a stderr line never lands inside a stdout line pyinit was half-way
    through writing."""
    wide = (
        "import os, sys\nfd = int(sys.argv[1])\n"
        "data = b''.join(b'%s %06d ' % (sys.argv[2].encode(), i) + b'.' * 300 + b'\\n'"
        " for i in range(20000))\n"
        "pos = 0\n"
        "while pos < len(data):\n"
        "    pos += os.write(fd, data[pos:pos + 50000])\n"
    )
    path = script(tmp_path, "wide.py", wide)
    r, w = os.pipe()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [
        "-v",
        "--wait",
        "wait_all",
        "-D",
        f"exec {PY} {path} 1 out",
        "-D",
        f"exec {PY} {path} 2 err",
    ]
    proc = subprocess.Popen(
        command(mode, args), stdout=w, stderr=w, env=env, stdin=subprocess.DEVNULL
    )
    os.close(w)
    chunks = []
    read = 0
    try:
        while True:
            chunk = os.read(r, 3000)
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
            if read > 500_000:
                read = 0
                time.sleep(0.05)
    finally:
        os.close(r)
        try:
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0
    got = by_prefix(b"".join(chunks), [b"D1", b"D2"], OWN_LINE)
    for name, tag in ((b"D1", b"out"), (b"D2", b"err")):
        assert got[name] == [b"%s %06d " % (tag, i) + b"." * 300 for i in range(20000)], name


# -- JSON ----------------------------------------------------------------------------------------


def parse_json_lines(data: bytes, allow: re.Pattern[bytes] | None = None) -> list[dict[str, Any]]:
    records = []
    for line in data.splitlines():
        if allow is not None and allow.search(line):
            continue
        records.append(json.loads(line))
    return records


def test_json_every_line_is_an_object(mode: str, tmp_path: Path, run_pyinit: StartPyinit) -> None:
    """should, with --log-format=json, write every line on stdout and stderr as one JSON
    object: task lines with time, task, stage, pid, stream, line; pyinit's own with level and
    message."""
    path = child("json_task.py")
    started = time.time()
    run = run_pyinit(
        mode,
        [
            "-v",
            "--log-format=json",
            "--wait",
            "wait_all",
            "-D",
            f"exec {PY} {path}",
            "-D",
            f"exec {PY} {path}",
        ],
    )
    assert run.wait() == 0
    out = parse_json_lines(b"".join(run.lines["stdout"]))
    err = parse_json_lines(b"".join(run.lines["stderr"]), re.compile(rb"^ns_init: left"))
    own = [r for r in err if "level" in r]
    tasks_err = [r for r in err if "level" not in r]
    assert own, "pyinit's own lines (-v) should be there"
    for record in own:
        assert set(record) - {"event"} == OWN_FIELDS, record
        assert record.get("event", "start") in EVENTS, record
        assert record["level"] in ("error", "warn", "info", "debug")
        assert record["stream"] == "stderr"
    assert {r.get("event") for r in own} >= {"start"}, own  # -v: the launch lines
    for record in out + tasks_err:
        bad = record.get("line", "").startswith("bad ")
        assert set(record) == TASK_FIELDS | ({"line_b64"} if bad else set()), record
        assert RFC3339.match(record["time"]), record
        assert record["task"] in ("D1", "D2")
        assert record["stage"] == "async"
    assert {r["stream"] for r in out} == {"stdout"}
    assert {r["stream"] for r in tasks_err} == {"stderr"}
    for name in ("D1", "D2"):
        lines = [r for r in out if r["task"] == name]
        hello = lines[0]["line"]
        assert hello.startswith("hello from ")
        pid = int(hello.split()[-1])
        assert [r["line"] for r in lines] == [
            hello,
            'bad \ufffd\ufffd utf-8 "quoted" \\ back',
            "no newline at the end",
        ]
        assert base64.b64decode(lines[1]["line_b64"]) == b'bad \xff\xfe utf-8 "quoted" \\ back'
        assert {r["pid"] for r in lines} == {pid}
        [oops] = [r for r in tasks_err if r["task"] == name]
        assert oops["line"] == f"oops from {pid}"
        assert oops["pid"] == pid
        launch = [r for r in own if r["task"] == name and "Launching" in r["message"]]
        assert [r["pid"] for r in launch] == [pid]
    stamps = [r["time"] for r in out + err]
    now = time.time()
    lo = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started - 1))
    hi = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now + 1))
    assert all(lo <= s[:19] <= hi for s in stamps), stamps


def test_json_pid_of_lines_written_after_the_task_exited(
    mode: str, run_pyinit: StartPyinit
) -> None:
    """should give a line that a task's background child writes after the task exited the
    task's pid, not 0 (a sync item's: a service's leftovers are stopped when it exits)."""
    run = run_pyinit(
        mode,
        [
            "--log-format=json",
            "--wait",
            "wait_err",
            "-F",
            'echo "pid $$"; (sleep 0.3; echo late) & exit 0',
            "--",
            "sleep",
            "1",
        ],
    )
    assert run.wait() == 0
    records = parse_json_lines(b"".join(run.lines["stdout"]))
    assert [r["line"] for r in records] == [records[0]["line"], "late"]
    pid = int(records[0]["line"].split()[1])
    assert [r["pid"] for r in records] == [pid, pid]


def test_json_main_command_output_is_json_with_prefix_main(
    mode: str, run_pyinit: StartPyinit
) -> None:
    """should, with --log-format=json and --prefix-main, write the main command's lines as
    JSON objects too."""
    run = run_pyinit(
        mode,
        [
            "--log-format=json",
            "--prefix-main",
            "--",
            "sh",
            "-c",
            "echo main out; echo main err >&2",
        ],
    )
    assert run.wait() == 0
    [out] = parse_json_lines(b"".join(run.lines["stdout"]))
    assert (out["task"], out["line"], out["stream"]) == ("sh", "main out", "stdout")
    errs = parse_json_lines(b"".join(run.lines["stderr"]), re.compile(rb"^ns_init: left"))
    assert [r["line"] for r in errs if "line" in r] == ["main err"]


def test_json_one_stage_vocabulary(mode: str, run_pyinit: StartPyinit) -> None:
    """should give a task's output lines and pyinit's own lines about it the same stage: boot
    for a boot item, main for the main command (TrivialRC's log namespaces are main and sync),
    and `pyinit` to lines about no task."""
    run = run_pyinit(
        mode, ["-v", "--log-format=json", "-B", "echo booting", "--", "sh", "-c", "echo serving"]
    )
    assert run.wait() == 0
    records = parse_json_lines(
        b"".join(run.lines["stdout"] + run.lines["stderr"]), re.compile(rb"^ns_init: left")
    )
    stages: dict[str, set[str]] = {}
    for record in records:
        stages.setdefault(record["task"], set()).add(record["stage"])
    assert stages["B1"] == {"boot"}, records
    assert stages["sh"] == {"main"}, records
    assert {r["task"] for r in records if "line" in r} == {"B1", "sh"}
    assert any("Launching" in r.get("message", "") for r in records if r["task"] == "B1")
    assert all(r["stage"] == "pyinit" for r in records if r["task"] == "pyinit")


def test_json_long_utf8_line_is_cut_between_characters(mode: str, run_pyinit: StartPyinit) -> None:
    """should cut a task's 100 KB line of 2- and 3-byte characters at a character boundary
    within 64 KiB, so each piece is clean UTF-8 and the pieces join back into the line."""
    text = "é€" * 20000
    write = "import sys; sys.stdout.buffer.write(('é€' * 20000).encode() + b'\\n')"
    run = run_pyinit(mode, ["--log-format=json", "--", sys.executable, "-c", write])
    assert run.wait() == 0
    records = parse_json_lines(b"".join(run.lines["stdout"]))
    assert len(records) == 2
    assert all("line_b64" not in r and "\ufffd" not in r["line"] for r in records)
    first = records[0]["line"]
    assert first.endswith("\\")
    assert len(first[:-1].encode()) <= 65536
    assert first[:-1] + records[1]["line"] == text


def test_json_undecodable_file_name_is_valid_utf8(
    mode: str, tmp_path: Path, run_pyinit: StartPyinit
) -> None:
    """should write pyinit's lines naming a stage file whose name is not UTF-8 as valid
    UTF-8 (U+FFFD) with the raw name in `message_b64`: no lone surrogate escapes."""
    (tmp_path / "trc.d").mkdir()
    name = os.fsencode(tmp_path / "trc.d") + b"/async.caf\xe9"
    with open(name, "w") as f:
        f.write("exit 0\n")
    run = run_pyinit(mode, ["-v", "--log-format=json", "-w", str(tmp_path)])
    assert run.wait() == 0
    raw = b"".join(run.lines["stderr"])
    assert b"\\udc" not in raw
    raw.decode()  # all of it valid UTF-8
    records = parse_json_lines(raw, re.compile(rb"^ns_init: left"))
    launch = [r for r in records if "Launching" in r.get("message", "")]
    assert launch, records
    assert "caf\ufffd" in launch[0]["message"]
    assert b"async.caf\xe9" in base64.b64decode(launch[0]["message_b64"])


def test_json_main_command_output_is_json_by_default(mode: str, run_pyinit: StartPyinit) -> None:
    """should, with --log-format=json, make every line JSON, the main command's included
    (spec §7: every line, task output and pyinit's own)."""
    run = run_pyinit(mode, ["--log-format=json", "--", "sh", "-c", "echo main out"])
    assert run.wait() == 0
    [out] = parse_json_lines(b"".join(run.lines["stdout"]))
    assert out["line"] == "main out"


# -- prefix formats and the main command -------------------------------------------------------


def test_prefix_format_name_pid_stage(mode: str, run_pyinit: StartPyinit) -> None:
    """should expand {name}, {pid} and {stage} in --prefix."""
    run = run_pyinit(
        mode,
        [
            "--prefix",
            "[{name}:{pid}:{stage}] ",
            "--wait",
            "wait_all",
            "-D",
            'echo "pid $$"; echo "err $$" >&2',
        ],
    )
    assert run.wait() == 0
    [line] = run.lines["stdout"]
    match = re.match(rb"^\[D1:(\d+):async\] pid (\d+)\n$", line)
    assert match, line
    assert match.group(1) == match.group(2)
    assert f"[D1:{int(match.group(1))}:async] err {int(match.group(1))}\n" in run.text()


def test_prefix_format_time(mode: str, run_pyinit: StartPyinit) -> None:
    """should put the local time of each line in {time}."""
    before = time.time()
    run = run_pyinit(
        mode,
        [
            "--prefix",
            "{time} {name}| ",
            "--wait",
            "wait_all",
            "-D",
            "echo one; echo two; printf three",
        ],
    )
    assert run.wait() == 0
    after = time.time()
    lines = run.lines["stdout"]
    assert [line.split(b"| ", 1)[1] for line in lines] == [b"one\n", b"two\n", b"three\n"]
    lo = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(before - 1)).encode()
    hi = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(after + 1)).encode()
    for line in lines:
        match = re.match(rb"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) D1\| ", line)
        assert match, line
        assert lo <= match.group(1) <= hi


def test_prefix_pid_of_lines_written_after_the_task_exited(
    mode: str, run_pyinit: StartPyinit
) -> None:
    """should give {pid} the task's pid for lines read after the task exited (a background
    child's, which a sync item may leave), also on the per-line {time} path."""
    run = run_pyinit(
        mode,
        [
            "--prefix",
            "{time} [{pid}] ",
            "--wait",
            "wait_err",
            "-F",
            'echo "pid $$"; (sleep 0.3; echo late) & exit 0',
            "--",
            "sleep",
            "1",
        ],
    )
    assert run.wait() == 0
    first, late = run.lines["stdout"]
    pid = first.split()[-1]
    assert first.split()[2] == b"[" + pid + b"]"
    assert late.split()[2] == b"[" + pid + b"]"


def test_empty_prefix_passes_through(mode: str, tmp_path: Path, run_pyinit: StartPyinit) -> None:
    """should, with --prefix '', pass a task's output through byte for byte: no prefix, no
    newline added to an unterminated last line."""
    payload = b"a\n\xffb\r\n\x00\nno newline"
    path = script(tmp_path, "raw.py", f"import os\nos.write(1, {payload!r})\n")
    run = run_pyinit(mode, ["--prefix", "", "--wait", "wait_all", "-D", f"exec {PY} {path}"])
    assert run.wait() == 0
    assert b"".join(run.lines["stdout"]) == payload


def test_per_task_prefix_from_pyinit_toml(
    mode: str, tmp_path: Path, run_pyinit: StartPyinit
) -> None:
    """should use a task's own `prefix` from pyinit.toml over --prefix."""
    (tmp_path / "pyinit.toml").write_text('[task.D1]\nprefix = "<one> "\n')
    run = run_pyinit(
        mode,
        [
            "-w",
            str(tmp_path),
            "--prefix",
            "{name}> ",
            "--wait",
            "wait_all",
            "-D",
            "echo a",
            "-D",
            "sleep 0.2; echo b",
        ],
    )
    assert run.wait() == 0
    assert sorted(run.lines["stdout"]) == [b"<one> a\n", b"D2> b\n"]


def test_main_command_passes_through_unprefixed(mode: str, run_pyinit: StartPyinit) -> None:
    """should pass the main command's stdout and stderr through untouched by default, while
    other tasks' lines are prefixed."""
    run = run_pyinit(
        mode,
        [
            "--wait",
            "wait_err",
            "-D",
            "echo from async",
            "--",
            "sh",
            "-c",
            "sleep 0.3; echo from main; echo main err >&2",
        ],
    )
    assert run.wait() == 0
    assert sorted(run.lines["stdout"]) == [b"D1: from async\n", b"from main\n"]
    assert b"main err\n" in run.lines["stderr"]
    assert "sh: " not in run.text()


def test_prefix_main_prefixes_the_main_command(mode: str, run_pyinit: StartPyinit) -> None:
    """should prefix the main command's lines with its name with --prefix-main."""
    run = run_pyinit(
        mode, ["--prefix-main", "--", "sh", "-c", "echo from main; printf 'main err' >&2"]
    )
    assert run.wait() == 0
    assert run.lines["stdout"] == [b"sh: from main\n"]
    assert b"sh: main err\n" in run.lines["stderr"]


# -- colours -------------------------------------------------------------------------------------


def run_on_pty(mode: str, args: list[str], env: dict[str, str]) -> tuple[bytes, Run]:
    """Run pyinit with its stdout on a terminal (stderr stays a pipe); its terminal output."""
    master, slave = os.openpty()
    run = Run(mode, args, env=env, stdout=slave)
    os.close(slave)
    try:
        out = read_pty(master)
        assert run.wait() == 0
    finally:
        run.kill()
        os.close(master)
    return out, run


COLOURED = re.compile(rb"\x1b\[3[1-6]mD[12]\x1b\[0m: ")


def test_colours_on_a_terminal(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """should colour task names on a terminal, a different colour per task."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    out, _run = run_on_pty(mode, ["--wait", "wait_all", "-D", "echo one", "-D", "echo two"], {})
    names = set(COLOURED.findall(out))
    assert len(names) == 2, out
    assert b"one\r\n" in out
    assert b"two\r\n" in out


def test_no_colours_with_no_color(mode: str) -> None:
    """should never colour with NO_COLOR set, even on a terminal."""
    out, _run = run_on_pty(mode, ["--wait", "wait_all", "-D", "echo one"], {"NO_COLOR": "1"})
    assert b"\x1b" not in out
    assert b"D1: one\r\n" in out


def test_no_colours_on_a_pipe(mode: str, run_pyinit: StartPyinit) -> None:
    """should not colour output that goes to a pipe."""
    run = run_pyinit(mode, ["--wait", "wait_all", "-D", "echo one; echo two >&2"])
    assert run.wait() == 0
    assert run.lines["stdout"] == [b"D1: one\n"]
    assert b"D1: two\n" in run.lines["stderr"]


def test_no_colours_on_stderr_pipe_when_stdout_is_a_terminal(
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """should decide colours per stream: stderr to a pipe stays plain when stdout is a
    terminal."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    _out, run = run_on_pty(mode, ["--wait", "wait_all", "-D", "echo err >&2"], {})
    assert b"D1: err\n" in run.lines["stderr"]
