"""Health checks that act (docs/health.md): `[task.NAME.health]` parsed, then tried on real
processes, PID 1 and subreaper: an HTTP server that turns sick and well again, one that is
always sick (the crash-loop limit, the termination log), a hanging check that forks (killed
with its group, nothing left behind), the sd_notify watchdog with systemd-notify itself, and
`pyinitctl health` through each state.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit import ready
from pyinit.errors import ConfigError

from conftest import ROOT, StartPyinit, assert_usage_error, need, port_for, pyinit_once, pyinitctl

pytestmark = pytest.mark.timeout(60)
SERVER = ROOT / "tests" / "children" / "health_server.py"


# -- parsing (pure) ---------------------------------------------------------------------------


def test_health_table_defaults_and_forms() -> None:
    """should read every key, give the documented defaults, and take the readiness forms that
    can be asked again and again, plus "watchdog"."""
    h = ready.parse_health({"check": "http://127.0.0.1:8080/healthz"}, "task.web.health")
    assert (h.interval, h.timeout, h.retries, h.start_period, h.action, h.critical) == (
        10.0,
        2.0,
        3,
        0.0,
        "restart",
        True,
    )
    assert h.check.kind == "http"
    assert h.check.path == "/healthz"
    full = ready.parse_health(
        {
            "check": ["pg_isready", "-q"],
            "interval": 1,
            "timeout": 0.5,
            "retries": 1,
            "start_period": 30,
            "action": "stop",
            "critical": False,
        },
        "task.db.health",
    )
    assert full.check.argv == ("pg_isready", "-q")
    assert (full.interval, full.timeout, full.retries, full.start_period) == (1.0, 0.5, 1, 30.0)
    assert (full.action, full.critical) == ("stop", False)
    for form in ("tcp:80", "listen:80", "file:/tmp/ok", "watchdog"):
        assert ready.parse_health({"check": form}, "x").check.kind == form.partition(":")[0]


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ("nope", "expected a table"),
        ({}, "expected check ="),
        ({"check": "notify"}, "says when a task is ready, once"),
        ({"check": "log:up"}, "says when a task is ready, once"),
        ({"check": "tcp:99999"}, "task.x.health.check"),
        ({"check": "tcp:80", "interval": 0}, "task.x.health.interval: expected seconds"),
        ({"check": "tcp:80", "timeout": "2s"}, "task.x.health.timeout"),
        ({"check": "tcp:80", "retries": 0}, "task.x.health.retries"),
        ({"check": "tcp:80", "retries": True}, "task.x.health.retries"),
        ({"check": "tcp:80", "action": "reboot"}, "expected one of restart, stop, exit, none"),
        ({"check": "tcp:80", "critical": "no"}, "expected true or false"),
        ({"check": "tcp:80", "interval_s": 1}, "task.x.health.interval_s: unknown key"),
    ],
)
def test_bad_health_tables(table: object, says: str) -> None:
    """should give one ConfigError line naming the key."""
    with pytest.raises(ConfigError) as caught:
        ready.parse_health(table, "task.x.health")
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*ready.HEALTH_KEYS, "bogus"]) | st.text(max_size=8), VALUES, max_size=6
    )
    | VALUES
)
def test_fuzz_health_tables(value: object) -> None:
    """should give a HealthSettings or one ConfigError line, never another exception."""
    try:
        health = ready.parse_health(value, "task.x.health")
    except ConfigError as e:
        message = str(e)
    else:
        message = ""
        assert health.check.kind in ("listen", "tcp", "http", "file", "command", "watchdog")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        (
            '[task.D1]\nready = "tcp:80"\n[task.D1.health]\ncheck = "watchdog"\n',
            'health check "watchdog" listens on the notify socket',
        ),
        ("[task.D1.health]\ncheck = 5\n", "task.D1.health.check"),
        ('[defaults.health]\ncheck = "tcp:80"\nretries = -1\n', "defaults.health.retries"),
    ],
)
def test_bad_health_is_status_2_with_one_line(tmp_path: Path, toml: str, says: str) -> None:
    """should refuse a bad health table before anything starts: status 2, one line."""
    (tmp_path / "pyinit.toml").write_text(toml)
    done = pyinit_once("-w", str(tmp_path), "-D", "sleep 9", "--", "true")
    assert_usage_error(done, says)
    assert "Traceback" not in done.stderr


# -- real processes ---------------------------------------------------------------------------


def web_task(tmp_path: Path, port: int, health: str, extra: str = "") -> Path:
    """async.web: tests/children/health_server.py on `port`, its answer read from `code`."""
    code = tmp_path / "code"
    (tmp_path / "trc.d").mkdir()
    (tmp_path / "trc.d" / "async.web").write_text(f"exec {sys.executable} {SERVER} {port}\n")
    (tmp_path / "pyinit.toml").write_text(
        f'[task.web]\nready = "tcp:{port}"\nenv = {{ HEALTH_FILE = "{code}" }}\n'
        f"restart_delay = 0.1\n{extra}"
        f'[task.web.health]\ncheck = "http://127.0.0.1:{port}/healthz"\n'
        f"interval = 0.2\ntimeout = 1\nretries = 3\n{health}"
    )
    return code


def test_a_sick_server_is_restarted_and_healthy_again(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """503 three times in a row should restart only the web task (counted as restart 1), and
    its first 200 after that should say it is healthy again; the run goes on."""
    port = port_for(mode, 60)
    code = web_task(tmp_path, port, "")
    run = run_pyinit(mode, ["-v", "-w", str(tmp_path), "--", "sleep", "60"])
    run.expect(r"web is ready")
    code.write_text("503")
    run.expect(r"web unhealthy: 3 checks failed \(http 503\): stopping it \(SIGTERM\)")
    line = run.expect(r"web unhealthy: 3 checks failed \(http 503\): restart 1 in 0.1s")
    assert b"WARN" in line or b"pyinit [async/" in line
    code.write_text("200")
    run.expect(r"web healthy again", timeout=15)
    assert run.proc.poll() is None  # the main command runs on: only the task was restarted
    run.signal(15)
    assert run.wait() == 143


def test_a_boot_item_under_defaults_health_runs_once(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """[defaults.health] asks every task for restarts (its action is "restart"), but a boot
    item still runs once: its failure ends the run with its status, with no restart."""
    (tmp_path / "pyinit.toml").write_text('[defaults.health]\ncheck = "tcp:127.0.0.1:9"\n')
    args = ["-v", "-w", str(tmp_path), "-B", "echo boot-ran; exit 3", "--", "true"]
    run = run_pyinit(mode, args)
    assert run.wait(timeout=20) == 3
    assert run.text("stdout").count("B1: boot-ran") == 1  # its own line, once
    assert not re.search(r"B1 exited .*restart", run.text())


def test_always_sick_ends_as_a_crash_loop(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """a task that is never healthy should count against max_restarts, fail for good, end
    the run by the wait policy with its status, and say so in the termination log."""
    port = port_for(mode, 61)
    code = web_task(tmp_path, port, "", "max_restarts = 2\nrestart_window = 60\n")
    code.write_text("503")
    log = tmp_path / "termination-log"
    log.write_text("")
    run = run_pyinit(
        mode,
        ["-w", str(tmp_path), "--", "sleep", "60"],
        env={"PYINIT_TERMINATION_LOG": str(log)},
    )
    assert run.wait() == 143, run.text()
    run.expect(r"web unhealthy: 3 checks failed \(http 503\): restart 2 in")
    run.expect(r"web failed for good \(unhealthy: http 503 x3, exitcode=143\): crash loop")
    assert log.read_text() == (
        "pyinit: web unhealthy (http 503 x3), killed: exitcode=143; exit status 143\n"
    )


def test_action_exit_ends_the_run_and_json_names_the_event(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """action = "exit" should stop the task, end the run with its status, and the JSON log
    should name the event."""
    port = port_for(mode, 62)
    code = web_task(tmp_path, port, 'action = "exit"\n', "")
    code.write_text("500")
    run = run_pyinit(mode, ["--log-format", "json", "-w", str(tmp_path), "--", "sleep", "60"])
    assert run.wait() == 143, run.text()
    events = [json.loads(line) for line in run.lines["stderr"] if b'"event"' in line]
    sick = [e for e in events if e["event"] == "unhealthy"]
    assert sick, events
    assert (sick[0]["task"], sick[0]["level"]) == ("web", "warn")
    assert "3 checks failed (http 500)" in sick[0]["message"]


def marked(marker: str) -> list[str]:
    """Processes on this machine (any namespace) whose command line holds `marker`, with
    their state: a zombie counts too."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{pid} {state} {cmdline}")
    return found


def gone(marker: str, within: float = 10) -> list[str]:
    """Wait for every process marked `marker` to be gone (killed and reaped); what is left."""
    deadline = time.monotonic() + within
    while (left := marked(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_a_hanging_check_is_killed_with_its_children(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """a check that forks and hangs should be killed at `timeout` with its whole group, reaped
    (no zombie), its output kept for `pyinitctl status TASK`, and the task left running
    (action none)."""
    marker = f"31{os.getpid() % 1000:03d}.{1 if mode == 'pid1' else 2}"
    check = tmp_path / "check.sh"
    check.write_text(
        f"#!/bin/sh\necho checking\nsleep {marker} &\nsleep {marker} &\n"
        f"echo 'db is down' >&2\nexec sleep {marker}\n"
    )
    check.chmod(0o755)
    address = str(tmp_path / "control.sock")
    (tmp_path / "pyinit.toml").write_text(
        f'[task.D1.health]\ncheck = ["{check}"]\ninterval = 0.2\ntimeout = 0.5\n'
        'retries = 2\naction = "none"\n'
    )
    run = run_pyinit(
        mode,
        ["-w", str(tmp_path), "-D", "exec sleep 60", "--", "sleep", "60"],
        env={"PYINIT_CONTROL": address},
    )
    line = run.expect(r"D1 unhealthy: 2 checks failed \(timed out after 0.5s: db is down\)")
    assert b"reported only" in line
    assert gone(marker) == []  # the second check is killed at its timeout too
    assert run.proc.poll() is None
    status = pyinitctl(address, "status", "D1")
    assert "unhealthy" in status.stdout.splitlines()[1], status.stdout
    assert "D1 unhealthy: 2 checks failed" in status.stdout
    assert "checking\ndb is down" in status.stdout
    assert pyinitctl(address, "health").returncode == 1
    run.signal(15)
    assert run.wait() == 143
    assert gone(marker) == []
    assert "leaving" not in run.text()  # the checks are not the task's leftovers


def test_the_watchdog(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """a task that stops sending WATCHDOG=1 should be restarted once `timeout` has passed
    without one, and WATCHDOG=trigger should restart it at once; WATCHDOG_USEC and
    WATCHDOG_PID are set as systemd sets them."""
    notify = need("systemd-notify", "systemd")
    trigger = tmp_path / "trigger"
    (tmp_path / "pyinit.toml").write_text(
        '[task.D1]\nrestart_delay = 0.1\n[task.D1.health]\ncheck = "watchdog"\ntimeout = 1.5\n'
    )
    script = (
        'echo "usec=$WATCHDOG_USEC pid=$WATCHDOG_PID me=$$"; '
        f"for i in 1 2 3 4 5; do {notify} WATCHDOG=1; sleep 0.2; done; "
        f"if [ -e {trigger} ]; then {notify} WATCHDOG=trigger; fi; exec sleep 60"
    )
    run = run_pyinit(mode, ["-v", "-w", str(tmp_path), "-D", script, "--", "sleep", "60"])
    env_line = run.expect(r"usec=", stream="stdout").decode()
    usec, pid, me = (word.partition("=")[2] for word in env_line.split()[1:])
    assert (usec, pid) == ("1500000", me), env_line
    start = time.monotonic()
    # 1.5 s without one, against a ping every 0.2 s: room for a loaded machine.
    run.expect(r"D1 unhealthy: no WATCHDOG=1 for 1.5s: restart 1 in 0.1s", timeout=20)
    assert time.monotonic() - start >= 1.5
    run.expect(r"D1 healthy again")  # the new run's first WATCHDOG=1
    trigger.write_text("")
    run.expect(r"D1 unhealthy: it sent WATCHDOG=trigger: restart \d", timeout=15)
    run.signal(15)
    assert run.wait() == 143


def test_pyinitctl_health_through_each_state(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """healthy (0), unhealthy (1) and healthy again (0); a task left out by critical = false
    does not count; unreachable is 4. The HEALTH column shows each task's word."""
    port = port_for(mode, 63)
    code = web_task(tmp_path, port, 'action = "none"\n')
    with (tmp_path / "pyinit.toml").open("a") as f:
        f.write('[task.D2.health]\ncheck = "file:/nonexistent"\ninterval = 0.2\n')
        f.write('retries = 1\ncritical = false\naction = "none"\n')
    (tmp_path / "trc.d" / "async.D2").write_text("exec sleep 60\n")
    address = str(tmp_path / "control.sock")
    run = run_pyinit(
        mode, ["-vv", "-w", str(tmp_path), "--", "sleep", "60"], env={"PYINIT_CONTROL": address}
    )
    run.expect(r"D2 unhealthy: 1 check failed \(no file /nonexistent\)")
    run.expect(r"control socket")
    # A task whose checks have not passed yet is "starting": not unhealthy.
    done = pyinitctl(address, "health")
    assert (done.returncode, done.stdout) == (0, "healthy\n"), done
    run.expect(r"web is ready")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # polled as an operator would, until web's first pass
        status = pyinitctl(address, "status").stdout.splitlines()
        rows = {line.split()[0]: line.split() for line in status[1:]}
        if rows["web"][6] != "starting":
            break
        time.sleep(0.1)
    assert status[0].split()[6] == "HEALTH"
    assert (rows["web"][6], rows["D2"][6]) == ("healthy", "unhealthy"), status
    code.write_text("503")
    run.expect(r"web unhealthy: 3 checks failed \(http 503\): reported only")
    sick = pyinitctl(address, "health")
    assert (sick.returncode, sick.stdout) == (1, "unhealthy: web\n"), sick
    code.write_text("200")
    run.expect(r"web healthy again")
    assert pyinitctl(address, "health").returncode == 0
    run.signal(15)
    assert run.wait() == 143
    assert pyinitctl(address, "health").returncode == 4


# -- the HTTP endpoint ------------------------------------------------------------------------


def http_get(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send `request` raw and read the answer until pyinit closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def get(port: int, path: str) -> tuple[int, bytes]:
    answer = http_get(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_the_http_endpoint_paths(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """/healthz and /readyz should say 200 or 503 as pyinitctl health and ready do, /status
    the JSON of pyinitctl status --json, /metrics the Prometheus text; others 404, and no
    method but GET and HEAD."""
    port, http = port_for(mode, 64), port_for(mode, 65)
    code = web_task(tmp_path, port, 'action = "none"\n')
    run = run_pyinit(
        mode, ["-v", "--http", f"127.0.0.1:{http}", "-w", str(tmp_path), "--", "sleep", "60"]
    )
    run.expect(r"HTTP endpoint on 127.0.0.1:\d+: /healthz /readyz /status /metrics")
    run.expect(r"Launching in the foreground")  # web is ready: pyinit is
    assert get(http, "/readyz") == (200, b"ready\n")
    assert get(http, "/healthz") == (200, b"healthy\n")
    status, body = get(http, "/status")
    tasks = {t["name"]: t for t in json.loads(body)["tasks"]}
    assert status == 200
    assert tasks["web"]["state"] == "running"
    assert tasks["sleep"]["stage"] == "main"
    code.write_text("503")
    run.expect(r"web unhealthy: 3 checks failed \(http 503\)")
    assert get(http, "/healthz") == (503, b"unhealthy: web\n")
    status, metrics = get(http, "/metrics?x=1")
    assert status == 200
    text = metrics.decode()
    assert 'pyinit_task_up{task="web"} 1' in text
    assert 'pyinit_task_healthy{task="web"} 0' in text
    assert 'pyinit_task_restarts_total{task="web"} 0' in text
    assert "# TYPE pyinit_task_restarts_total counter" in text
    assert get(http, "/")[0] == 404
    assert get(http, "/stop")[0] == 404
    assert http_get(http, b"POST /healthz HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.0 405")
    head = http_get(http, b"HEAD /healthz HTTP/1.0\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 503")
    assert head.endswith(b"\r\n\r\n")
    run.signal(15)
    assert run.wait() == 143


def test_the_http_endpoint_survives_abuse(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """1,000 malformed requests and 100 abandoned connections should get answers or be
    closed, never hurt pyinit: it still answers /healthz at once, still restarts a task,
    and its RSS stays bounded."""
    http = port_for(mode, 66)
    (tmp_path / "pyinit.toml").write_text(
        '[task.D1]\nrestart = "always"\nrestart_delay = 0.1\nmax_restarts = 1000\n'
    )
    run = run_pyinit(
        mode,
        ["-v", "--http", f"127.0.0.1:{http}", "-w", str(tmp_path),
         "-D", "sleep 0.5", "--", "sleep", "60"],
    )  # fmt: skip
    run.expect(r"HTTP endpoint on")
    assert get(http, "/healthz")[0] == 200
    before = rss_kib(run.pid)
    rng = random.Random(14)
    for i in range(1000):
        kind = i % 4
        if kind == 0:  # random bytes
            request = rng.randbytes(rng.randrange(1, 300))
        elif kind == 1:  # a huge head
            request = b"GET /" + b"a" * 9000 + b"\r\n\r\n"
        elif kind == 2:  # a broken request line
            request = rng.choice([b"GET\r\n\r\n", b"GET / FTP/9\r\n\r\n", b"\r\n\r\n", b"\n\n"])
        else:  # half a request, then the client goes away
            request = b"GET /heal"
        try:
            with socket.create_connection(("127.0.0.1", http), timeout=10) as sock:
                sock.sendall(request)
                if kind != 3:
                    sock.shutdown(socket.SHUT_WR)
                    answer = sock.recv(200)
                    assert answer == b"" or answer.startswith(b"HTTP/1.0 4"), answer
        except (ConnectionResetError, BrokenPipeError):
            pass  # closed by pyinit while we wrote: allowed for garbage
    abandoned = []
    for _ in range(100):
        sock = socket.create_connection(("127.0.0.1", http), timeout=10)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # and never the blank line
        abandoned.append(sock)
    try:
        assert get(http, "/healthz")[0] == 200  # the oldest stalled one made room
    finally:
        for sock in abandoned:
            sock.close()
    restarts = len(re.findall(r"D1 exited", run.text()))
    run.expect(r"D1 exited", count=restarts + 1)  # it still supervises
    assert rss_kib(run.pid) - before < 4096, (before, rss_kib(run.pid))
    run.signal(15)
    assert run.wait() == 143
    assert "Traceback" not in run.text()


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--http", "nowhere"], {}, "--http: expected a TCP port"),
        (["--http", "example.com:80"], {}, "is not an IP address"),
        ([], {"PYINIT_HTTP": "127.0.0.1:0"}, "PYINIT_HTTP: expected a TCP port"),
    ],
)
def test_bad_http_addresses_are_status_2(
    tmp_path: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    done = pyinit_once(*args, "--", "true", env=env, cwd=tmp_path)
    assert_usage_error(done, says)


def test_http_from_pyinit_toml_and_off_loopback_warns(
    run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """[control] http in pyinit.toml should open it; an address off loopback gets a warning."""
    http = port_for("subreaper", 67)
    (tmp_path / "pyinit.toml").write_text(f'[control]\nhttp = "0.0.0.0:{http}"\n')
    run = run_pyinit("subreaper", ["-w", str(tmp_path), "--", "sleep", "60"])
    run.expect(r"the HTTP endpoint listens on 0.0.0.0:\d+, not on loopback")
    assert get(http, "/readyz")[0] == 200
    run.signal(15)
    assert run.wait() == 143


def test_action_stop_leaves_it_down_for_good(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """action = "stop" should stop the task and not restart it, whatever its restart policy:
    failed for good, so `pyinitctl health` says unhealthy while the run goes on."""
    port = port_for(mode, 68)
    code = web_task(tmp_path, port, 'action = "stop"\n', 'restart = "always"\n')
    code.write_text("503")
    address = str(tmp_path / "control.sock")
    run = run_pyinit(
        mode,
        ["-v", "--wait", "wait_forever", "-w", str(tmp_path), "--", "sleep", "60"],
        env={"PYINIT_CONTROL": address},
    )
    run.expect(r"web unhealthy: 3 checks failed \(http 503\): stopping it \(SIGTERM\) for good")
    run.expect(r"web failed for good \(unhealthy: http 503 x3, exitcode=143\)")
    assert "restart 1" not in run.text()
    status = pyinitctl(address, "status", "web")
    assert status.stdout.splitlines()[1].split()[2] == "failed", status.stdout
    sick = pyinitctl(address, "health")
    assert (sick.returncode, sick.stdout) == (1, "unhealthy: web\n"), sick
    run.signal(15)
    assert run.wait() == 143
