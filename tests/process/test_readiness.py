"""Readiness and start order: `ready`, `ready_timeout`, `after`, the foreground's wait
(docs/readiness.md).

The parsing and the graph rules are pure; every form is then tried on a real program (a Python
server, `systemd-notify --ready`, `redis-server --supervised systemd`), as PID 1 and as a child
subreaper. A task that gets ready writes the time just before it signals; the task that waited
for it writes the time it started: the second must come after the first, and soon after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit import ready
from pyinit.errors import ConfigError

from conftest import ROOT, StartPyinit, child, need, port_for

pytestmark = pytest.mark.timeout(60)
#: How late a dependent may start after the event it waited for: the issue's 100 ms plus one
#: ready_interval (0.5 s), and room for a loaded 2-core CI machine.
LATE = 1.5


# -- parsing (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "field", "value"),
    [
        ("notify", "notify", "kind", "notify"),
        ("fd:3", "fd", "fd", 3),
        ("fd:1023", "fd", "fd", 1023),
        ("log:listening on [0-9]+", "log", "pattern", b"listening on [0-9]+"),
        ("log:a:b", "log", "pattern", b"a:b"),
        ("listen:6379", "listen", "port", 6379),
        ("tcp:6379", "tcp", "host", "127.0.0.1"),
        ("tcp:10.0.0.1:80", "tcp", "host", "10.0.0.1"),
        ("tcp:[::1]:80", "tcp", "host", "::1"),
        ("file:/run/app.ready", "file", "path", "/run/app.ready"),
        ("http://127.0.0.1:8080/healthz", "http", "path", "/healthz"),
        ("http://127.0.0.1/", "http", "port", 80),
        ("http://[::1]:81/x?y=1", "http", "host", "::1"),
        ("tcp:localhost:5", "tcp", "host", "127.0.0.1"),
    ],
)
def test_ready_forms(text: str, kind: str, field: str, value: object) -> None:
    """should read each documented form into its kind and its argument."""
    form = ready.parse_ready(text, "task.x.ready")
    assert form.kind == kind
    assert getattr(form, field) == value
    assert form.text == text


def test_a_command_form() -> None:
    """should take a list of strings as a command, run without a shell."""
    form = ready.parse_ready(["pg_isready", "-q"], "task.x.ready")
    assert (form.kind, form.argv, form.text) == ("command", ("pg_isready", "-q"), "pg_isready -q")


@pytest.mark.parametrize(
    "value",
    ["", "notify:1", "fd:2", "fd:0", "fd:x", "fd:1024", "log:", "log:(", "listen:0",
     "listen:65536", "listen:http", "tcp:host:", "tcp:", "file:", "http", 3, None, [], [""],
     [1], "tcp:db:5432", "http://db:80/", "https://127.0.0.1/", "http:/x", "http://127.0.0.1:0/",
     "http://127.0.0.1/a b", "tcp:999.1.1.1:5"],
)  # fmt: skip
def test_bad_ready_forms(value: object) -> None:
    """should refuse anything else with one line naming the key."""
    with pytest.raises(ConfigError) as info:
        ready.parse_ready(value, "task.x.ready")
    assert str(info.value).startswith("task.x.ready: ")
    assert "\n" not in str(info.value)


def test_after_conditions() -> None:
    """should read NAME as NAME:ready, keep the four conditions, and take an unknown suffix as
    part of the name."""
    assert ready.parse_after(["db", "m:done", "w:started", "x:exited", "y:ready"], "a") == (
        ("db", "ready"),
        ("m", "done"),
        ("w", "started"),
        ("x", "exited"),
        ("y", "ready"),
    )
    assert ready.parse_after("db", "a") == (("db", "ready"),)
    assert ready.parse_after(["a:b"], "a") == (("a:b", "ready"),)
    for bad in ([1], [""], {"db": 1}, [":done"]):
        with pytest.raises(ConfigError):
            ready.parse_after(bad, "task.x.after")


def test_cycles_and_levels() -> None:
    """should name a cycle as a path (the same one every time), and give levels otherwise."""
    assert ready.cycle({"web": ("db",), "db": ("web",)}) == ["db", "web", "db"]
    assert ready.cycle({"a": ("b",), "b": ("c",), "c": ("a",), "d": ()}) == ["a", "b", "c", "a"]
    assert ready.cycle({"web": ("db", "cache"), "worker": ("db",)}) is None
    assert ready.levels({"web": ("db", "cache"), "worker": ("db",), "db": ()}) == [
        ["cache", "db"],
        ["web", "worker"],
    ]
    assert ready.levels({"c": ("b",), "b": ("a",)}) == [["a"], ["b"], ["c"]]


# -- bad input: status 2, one line, nothing started -------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[task.D1]\nafter = ["D2"]\n[task.D2]\nafter = ["D1:done"]\n',
         "task.D1.after: cycle D1 -> D2 -> D1"),
        ('[task.D1]\nafter = ["nope"]\n', "task.D1.after: no task named 'nope'"),
        ('[task.D1]\nafter = ["D1"]\n', "task.D1.after: D1 cannot wait for itself"),
        ('[task.D1]\nready = "listen:99999"\n', "task.D1.ready: expected a TCP port"),
        ('[task.D1]\nready = "socket"\n', 'task.D1.ready: expected "notify", "fd:N"'),
        ('[defaults]\nafter = ["D1"]\n', "defaults.after: after belongs in [task.NAME]"),
        ('[task.D1]\nmain_after = "started"\n',
         "task.D1.main_after: main_after belongs in [defaults]"),
        ('[task.D1]\nready_interval = 0\n', "task.D1.ready_interval: expected a number"),
        ('[task.H1]\nafter = ["D1"]\n', "task.H1.after: a halt item runs in its stage's order"),
        ('[task.D1]\nafter = ["H1"]\n', "task.D1.after: H1 is a halt item"),
    ],
)  # fmt: skip
def test_bad_order_is_status_2_before_anything_starts(
    tmp_path: Path, toml: str, message: str
) -> None:
    """should print one line naming the key (and the cycle), exit 2, and start nothing."""
    (tmp_path / "pyinit.toml").write_text(toml)
    marker = tmp_path / "started"
    items = ["-D", f"touch {marker}", "-D", "true", "-H", "true", "--", "true"]
    proc = subprocess.run(
        [sys.executable, "-m", "pyinit", "-w", str(tmp_path), *items],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert not marker.exists()


# -- every form, on real programs --------------------------------------------------------------


def stamp(path: Path) -> str:
    """Shell code that writes the time (seconds, float) to `path`."""
    return f"{sys.executable} -c 'import time; print(time.time())' > {path}"


def read_time(path: Path) -> float:
    return float(path.read_text())


def server(tmp_path: Path, port: int, stamp_path: Path, fails: int = 0) -> str:
    return f"exec {sys.executable} {child('late_http_server.py')} {port} {stamp_path} {fails}"


FORMS = ["notify", "fd", "log", "file", "listen", "tcp", "http", "command"]


@pytest.mark.parametrize("form", FORMS)
def test_the_main_command_starts_when_the_task_is_ready(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path, form: str
) -> None:
    """should start the main command only after the async task's readiness event, and soon
    after it; the ready line names the form."""
    t_ready, t_main = tmp_path / "t_ready", tmp_path / "t_main"
    port = port_for(mode, 40 + FORMS.index(form))
    if form == "notify":
        notify = need("systemd-notify", "systemd")
        setting = "notify"
        code = f"sleep 0.3; {stamp(t_ready)}; {notify} --ready; sleep 30"
    elif form == "fd":
        setting, code = "fd:3", f"sleep 0.3; {stamp(t_ready)}; echo >&3; sleep 30"
    elif form == "log":
        setting, code = (
            "log:^up on [0-9]+$",
            f"sleep 0.3; echo up; {stamp(t_ready)}; echo up on 1; sleep 30",
        )
    elif form == "file":
        setting = f"file:{tmp_path}/flag"
        code = f"sleep 0.3; {stamp(t_ready)}; touch {tmp_path}/flag; sleep 30"
    elif form == "command":
        setting = ["test", "-e", f"{tmp_path}/flag"]  # type: ignore[assignment]  # argv form
        code = f"sleep 0.3; {stamp(t_ready)}; touch {tmp_path}/flag; sleep 30"
    elif form == "http":
        setting = f"http://127.0.0.1:{port}/healthz"
        code = server(tmp_path, port, t_ready)
    else:
        setting = f"{form}:{port}"
        code = server(tmp_path, port, t_ready)
    value = json.dumps(setting)  # a TOML string or array, as JSON writes them
    (tmp_path / "pyinit.toml").write_text(f"[task.D1]\nready = {value}\nready_interval = 0.1\n")
    run = run_pyinit(
        mode, ["-v", "-w", str(tmp_path), "-D", code, "--", "sh", "-c", stamp(t_main)]
    )  # fmt: skip
    assert run.wait() == 0, run.text()
    run.expect(r"sh waiting for D1 \(ready\)")
    run.expect(r"D1 is ready after [0-9.]+s \(")
    late = read_time(t_main) - read_time(t_ready)
    assert 0 < late < LATE, (late, run.text())


def test_redis_supervised_systemd(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """should take redis-server's own sd_notify READY=1 (unmodified) as its readiness, show its
    STATUS= lines, and start the client only then."""
    redis = need("redis-server", "redis-server")
    cli = need("redis-cli", "redis-tools")
    port = port_for(mode, 50)
    (tmp_path / "pyinit.toml").write_text('[task.db]\nready = "notify"\n')
    (tmp_path / "trc.d").mkdir()
    db = tmp_path / "trc.d" / "async.db"
    db.write_text(
        f"#!/bin/sh\nexec {redis} --port {port} --supervised systemd --save '' --dir {tmp_path}\n"
    )
    db.chmod(0o755)
    run = run_pyinit(mode, ["-v", "-w", str(tmp_path), "--", cli, "-p", str(port), "ping"])
    assert run.wait() == 0, run.text()
    run.expect(r"db: status: Ready to accept connections")
    ready_line = run.expect(r"db is ready after [0-9.]+s \(notify: READY=1\)")
    assert b"PONG\n" in run.lines["stdout"]
    order = run.lines["stderr"]
    launch = next(i for i, line in enumerate(order) if b"Launching in the foreground" in line)
    assert order.index(ready_line) < launch


def test_after_between_background_tasks(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """should start D2 after D1 is ready and D3 after D2 has exited 0 (`done`), say once what
    each waits for, and not hold the main command for tasks that declare no `ready`."""
    t_ready, t2, t3 = tmp_path / "t_ready", tmp_path / "t2", tmp_path / "t3"
    (tmp_path / "pyinit.toml").write_text(
        '[task.D1]\nready = "log:^ready$"\n'
        '[task.D2]\nafter = ["D1"]\n'
        '[task.D3]\nafter = ["D2:done"]\n'
    )
    items = [
        "-D", f"sleep 0.3; {stamp(t_ready)}; echo ready; sleep 30",
        "-D", f"{stamp(t2)}; sleep 0.2",
        "-D", f"{stamp(t3)}; echo STAMPED; sleep 30",
    ]  # fmt: skip
    run = run_pyinit(
        mode, ["-v", "--wait", "wait_forever", "-w", str(tmp_path), *items, "--", "sleep", "30"]
    )
    run.expect(r"D2 waiting for D1 \(ready\)")
    run.expect(r"D3 waiting for D2 \(done\)")
    run.expect(r"D3: STAMPED", stream="stdout", timeout=15)
    assert 0 < read_time(t2) - read_time(t_ready) < LATE
    assert read_time(t3) > read_time(t2)
    run.signal(15)
    run.wait()
    assert run.text().count("D2 waiting for") == 1


def test_a_failed_dependency_is_never_started(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """should not start a task whose dependency failed for good, say why, and end the run with
    the dependency's status (the wait policy sees that failure)."""
    marker = tmp_path / "ran"
    (tmp_path / "pyinit.toml").write_text('[task.D2]\nafter = ["D1:done"]\n')
    run = run_pyinit(
        mode,
        ["-w", str(tmp_path), "--wait", "wait_all", "-D", "exit 3", "-D", f"touch {marker}"],
    )
    assert run.wait() == 3, run.text()
    run.expect(r"D2 not started: D1 failed \(exitcode=3\)")
    assert not marker.exists()


def test_ready_timeout_is_a_failed_run(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """should stop a task that is not ready within ready_timeout, restart it by its policy, give
    up at the crash-loop limit, and never start what waits for it."""
    (tmp_path / "pyinit.toml").write_text(
        '[task.D1]\nready = "fd:3"\nready_timeout = 0.3\nrestart = "on-failure"\n'
        "max_restarts = 1\nrestart_delay = 0.1\n"
        '[task.D2]\nafter = ["D1"]\n'
    )
    run = run_pyinit(
        mode, ["-w", str(tmp_path), "-D", "exec sleep 30", "-D", "echo D2 RAN", "--", "true"]
    )
    assert run.wait() == 143, run.text()
    run.expect(r'D1 not ready after 0.3s \(ready = "fd:3"\): stopping it')
    run.expect(r"D1 exited \(exitcode=143\): restart 1 in 0.1s")
    run.expect(r"D1 failed for good \(exitcode=143\)")
    run.expect(r"D2 not started: D1 failed \(exitcode=143\)")
    assert b"D2 RAN" not in b"".join(run.lines["stdout"])
    assert "without writing a newline" not in run.text()  # its death closed fd 3, not the task


def test_main_after_started_keeps_the_old_order(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """with `main_after = "started"`, the main command should not wait for readiness."""
    (tmp_path / "pyinit.toml").write_text(
        '[defaults]\nmain_after = "started"\n[task.D1]\nready = "fd:3"\n'
    )
    run = run_pyinit(mode, ["-v", "-w", str(tmp_path), "-D", "exec sleep 30", "--", "echo", "MAIN"])
    assert run.wait() == 0, run.text()
    assert b"MAIN\n" in run.lines["stdout"]
    assert "waiting for" not in run.text()


def test_notify_from_another_task_is_ignored(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """should ignore READY=1 sent to a task's socket by a process of another task, and stay
    responsive while a task floods its own socket."""
    sock = tmp_path / "sock"
    sender = (
        "import os, socket, time\n"
        f"while not os.path.exists('{sock}'): time.sleep(0.02)\n"
        f"name = open('{sock}').read().strip()\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "for _ in range(50):\n"
        "    s.sendto(b'READY=1', '\\0' + name[1:]); time.sleep(0.02)\n"
        "time.sleep(30)\n"
    )
    flood = (
        "import os, socket\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "a = '\\0' + os.environ['NOTIFY_SOCKET'][1:]\n"
        "for i in range(20000):\n"
        "    try: s.sendto(b'X_JUNK=%d' % i + b'x' * 4000, a)\n"
        "    except OSError: pass\n"
        "s.sendto(b'STATUS=flooded\\nREADY=1', a)\n"
        "import time; time.sleep(30)\n"
    )
    (tmp_path / "sender.py").write_text(sender)
    (tmp_path / "flood.py").write_text(flood)
    (tmp_path / "pyinit.toml").write_text(
        '[defaults]\nmain_after = "started"\n'
        '[task.D1]\nready = "notify"\n'
        '[task.D3]\nready = "notify"\n'
    )
    items = [
        "-D", f'echo "$NOTIFY_SOCKET" > {sock}.tmp; mv {sock}.tmp {sock}; exec sleep 30',
        "-D", f"exec {sys.executable} {tmp_path}/sender.py",
        "-D", f"exec {sys.executable} {tmp_path}/flood.py",
    ]  # fmt: skip
    run = run_pyinit(mode, ["-vv", "-w", str(tmp_path), *items, "--", "sleep", "2"])
    run.expect(r"ignored a notify message from <pid=[0-9]+>, which is not one of its processes")
    run.expect(r"D3 is ready after [0-9.]+s \(notify: READY=1\)", timeout=20)
    assert run.wait() == 0, run.text()
    assert "D1 is ready" not in run.text()
    assert "D3: status: flooded" in run.text()


def test_a_one_shot_dependency_does_not_end_the_run(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """under wait_any, a migration others wait for with `:done` should end without ending the
    run; the dependent and the main command should run, and the run end with the main's 0."""
    (tmp_path / "pyinit.toml").write_text('[task.D2]\nafter = ["D1:done"]\nready = "log:^up$"\n')
    items = ["-D", "sleep 0.2; echo migrated", "-D", "echo up; exec sleep 30"]
    run = run_pyinit(mode, ["-w", str(tmp_path), *items, "--", "sh", "-c", "echo MAIN"])
    assert run.wait() == 0, run.text()
    out = b"".join(run.lines["stdout"])
    assert out.index(b"D1: migrated") < out.index(b"D2: up") < out.index(b"MAIN")


def test_check_prints_ready_after_and_the_start_order(tmp_path: Path) -> None:
    """--check should show each task's ready form and after list as written, and the start
    order as levels, with what the foreground waits for."""
    (tmp_path / "pyinit.toml").write_text(
        '[task.D1]\nready = "listen:8080"\nready_timeout = 5\n'
        '[task.D2]\nafter = ["D1", "D3:done"]\n'
    )
    items = ["-D", "true", "-D", "true", "-D", "true", "--", "true"]
    proc = subprocess.run(
        [sys.executable, "-m", "pyinit", "--check", "-w", str(tmp_path), *items],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert 'task D1: ready="listen:8080", ready_timeout=5s' in out
    assert "task D2: after=[D1:ready, D3:done]" in out
    assert "start order (boot first, then):\n  1. D1, D3\n  2. D2\n" in out
    assert "the foreground waits for: D1 (ready)" in out


def test_stop_levels() -> None:
    """should stop first what nothing waits for, then what only those waited for."""
    graph = {"web": ("migrate",), "migrate": ("db",), "worker": ("db", "web")}
    assert ready.stop_levels(graph, ["db", "migrate", "web", "worker", "other"]) == [
        ["worker", "other"],
        ["web"],
        ["migrate"],
        ["db"],
    ]
    assert ready.stop_levels({}, ["a", "b"]) == [["a", "b"]]


@pytest.mark.parametrize("order", ["dependents-first", "parallel"])
def test_dependents_stop_before_their_dependencies(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path, order: str
) -> None:
    """should stop D2 (which waits for D1) first and D1 only once D2 is gone, although D2 takes
    0.3 s to stop; with stop_order = "parallel", both at once (D1 is gone first)."""
    (tmp_path / "pyinit.toml").write_text(
        f'[defaults]\nstop_order = "{order}"\n[task.D2]\nafter = ["D1:started"]\n'
    )
    items = [
        "-D", "echo up; exec sleep 30",
        "-D", "trap 'sleep 0.3; exit 0' TERM; echo up; sleep 30 & wait",
    ]  # fmt: skip
    run = run_pyinit(mode, ["-v", "-w", str(tmp_path), "--wait", "wait_forever", *items])
    run.expect(r"D1: up", stream="stdout")
    run.expect(r"D2: up", stream="stdout")
    run.signal(15)
    assert run.wait() == 143, run.text()
    text = run.text()
    d1 = text.index("Exiting in the background (exitcode=143): echo up")
    d2 = text.index("Exiting in the background (exitcode=0): trap")
    assert (d2 < d1) == (order == "dependents-first"), text
    assert ("stopping D2" in text) == (order == "dependents-first")


def test_http_is_ready_on_200_to_399_only(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """should not take a 503 for ready, and take the 200 that follows."""
    port = port_for(mode, 60)
    (tmp_path / "pyinit.toml").write_text(
        f'[task.D1]\nready = "http://127.0.0.1:{port}/"\nready_interval = 0.1\n'
    )
    code = server(tmp_path, port, tmp_path / "t", fails=3)
    run = run_pyinit(mode, ["-v", "-w", str(tmp_path), "-D", code, "--", "echo", "MAIN"])
    assert run.wait() == 0, run.text()
    run.expect(r"D1 is ready after [0-9.]+s \(GET / answered 200\)")
    assert "answered 503" not in run.text()


@pytest.mark.parametrize("how", ["fd", "systemd-notify", "python"])
def test_a_bash_item_says_ready(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path, how: str
) -> None:
    """`ready` in a bash item should do what its ready setting asks: a newline on fd N, or
    READY=1 by systemd-notify, or by the Python pyinit runs on where there is no systemd-notify
    (PATH holds only bash and sleep here)."""
    setting = "fd:5" if how == "fd" else "notify"
    (tmp_path / "pyinit.toml").write_text(f'[task.D1]\nready = "{setting}"\n')
    code = "sleep 0.2; ready; exec sleep 30"
    if how == "python":
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for program in ("bash", "sleep"):
            found = shutil.which(program)
            assert found is not None
            (bin_dir / program).symlink_to(found)
        code = f"PATH={bin_dir}; {code}"
    elif how == "systemd-notify":
        need("systemd-notify", "systemd")
    run = run_pyinit(mode, ["-v", "-w", str(tmp_path), "-D", code, "--", "/bin/echo", "MAIN"])
    assert run.wait() == 0, run.text()
    run.expect(r"D1 is ready after")
    assert b"MAIN\n" in run.lines["stdout"]


def test_ready_without_a_ready_setting_warns(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """`ready` in an item that declares no ready form should say there is no one to tell."""
    run = run_pyinit(mode, ["-w", str(tmp_path), "-D", "ready || echo FAILED", "--", "sleep", "1"])
    run.expect(r"D1 has no ready = \"notify\" or \"fd:N\" in pyinit.toml")
    run.expect(r"D1: FAILED", stream="stdout")
    run.wait()


# -- fuzzing the parsers and the notify message reader -----------------------------------------

TOML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(TOML_VALUES, st.text(max_size=60).map(lambda t: "http://" + t)))
def test_fuzz_ready_values(value: object) -> None:
    """any value should give a form or one ConfigError line, never another exception."""
    try:
        form = ready.parse_ready(value, "task.x.ready")
    except ConfigError as e:
        message = str(e)
    else:
        message = ""
    if message:
        assert "\n" not in message
        return
    assert form.kind in ("notify", "fd", "log", "listen", "tcp", "http", "file", "command")


@settings(max_examples=300, deadline=None)
@given(TOML_VALUES)
def test_fuzz_after_values(value: object) -> None:
    """any value should give (name, condition) pairs or one ConfigError line."""
    try:
        pairs = ready.parse_after(value, "task.x.after")
    except ConfigError as e:
        message = str(e)
    else:
        message = ""
    if message:
        assert "\n" not in message
        return
    assert all(name and condition in ready.CONDITIONS for name, condition in pairs)


class FakeLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, *args: object, **kwargs: object) -> None:
        self.lines.append(message)

    debug = warn = info


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_fuzz_notify_messages(data: bytes) -> None:
    """any datagram should be read without an exception; READY=1 on a line of its own makes
    the task ready, and nothing else does."""
    from pyinit.probes import NotifyProbe

    got: list[str] = []
    probe = NotifyProbe.__new__(NotifyProbe)  # no socket: only the message reader is tried
    probe.name, probe.log, probe.on_ready = "x", FakeLog(), got.append  # type: ignore[assignment]  # a fake log
    probe.ready, probe.pid, probe.status = False, 5, ""
    probe.due = None
    probe._message(data, 5)
    assert bool(got) == (b"READY=1" in data.split(b"\n"))


def test_pyinit_tells_systemd_ready_once_its_tasks_are(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """under systemd (NOTIFY_SOCKET set), pyinit's READY=1 should come only once every task
    that declares `ready` is ready, with STATUS= saying what is awaited until then."""
    import socket

    name = f"pyinit-ready-{tmp_path.name}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(10)
    (tmp_path / "pyinit.toml").write_text('[task.D1]\nready = "fd:3"\n')
    try:
        run = run_pyinit(
            mode,
            ["-w", str(tmp_path), "--wait", "wait_forever", "-D", "sleep 0.5; echo >&3; sleep 30"],
            env={"NOTIFY_SOCKET": "@" + name},
        )
        assert sock.recv(4096) == b"STATUS=waiting for D1"
        assert sock.recv(4096) == b"STATUS=ready"
        assert sock.recv(4096) == b"READY=1"
        run.signal(15)
        assert sock.recv(4096) == b"STOPPING=1"
        assert run.wait() == 143
    finally:
        sock.close()


def test_the_readiness_example(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """examples/readiness (the README's): db, then migrate, then web and worker, then the main
    command, which gets its 200; the log says who waited for what."""
    need("redis-server", "redis-server")
    need("redis-cli", "redis-tools")
    work = tmp_path / "readiness"
    shutil.copytree(ROOT / "examples" / "readiness", work, symlinks=True)
    db_port, web_port = port_for(mode, 70), port_for(mode, 71)
    toml = work / "pyinit.toml"
    toml.write_text(toml.read_text().replace("127.0.0.1:8080", f"127.0.0.1:{web_port}"))
    run = run_pyinit(
        mode,
        ["-v", "-w", str(work), "--", sys.executable, str(work / "check.py")],
        env={"DB_PORT": str(db_port), "WEB_PORT": str(web_port)},
    )
    assert run.wait() == 0, run.text()
    assert b"web answered 200\n" in run.lines["stdout"]
    text = run.text()
    order = [
        "migrate waiting for db (ready)",
        "web waiting for migrate (done)",
        "db is ready after",
        "async.migrate",
        "web is ready after",
        "Launching in the foreground",
    ]
    positions = [text.index(line) for line in order]
    assert positions == sorted(positions), text


def test_closing_the_ready_fd_without_a_newline_is_said(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """a task that closes its fd:N and goes on running should get one warning: it will not be
    ready in this run."""
    (tmp_path / "pyinit.toml").write_text(
        '[defaults]\nmain_after = "started"\n[task.D1]\nready = "fd:3"\n'
    )
    run = run_pyinit(
        mode, ["-w", str(tmp_path), "-D", "exec 3>&-; exec sleep 30", "--", "sleep", "30"]
    )
    run.expect(r"D1 closed fd 3 without writing a newline: it will not be ready in this run")
    run.signal(15)
    assert run.wait() == 143
