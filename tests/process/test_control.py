"""pyinitctl and the control socket (docs/control.md), against a real pyinit, PID 1 and
subreaper: every verb and exit status, held tasks, restarts, peer credentials, a read-only /run,
and a fuzzed protocol.

The client runs as `python -m pyinit.ctl` (what the `pyinitctl` console script runs), with
PYINIT_CONTROL naming the test's own socket: test runs share /run and the abstract names of
this network namespace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pyinit import ctl

from conftest import ROOT, Run, StartPyinit, pyinitctl

pytestmark = pytest.mark.timeout(60)


def start(
    mode: str,
    run_pyinit: StartPyinit,
    tmp_path: Path,
    items: list[str],
    toml: str = "",
    address: str = "",
) -> tuple[Run, str]:
    """pyinit with a control socket in tmp_path (or at `address`), once the socket is there."""
    address = address or str(tmp_path / "control.sock")
    (tmp_path / "pyinit.toml").write_text(toml)
    run = run_pyinit(
        mode,
        ["-vv", "-w", str(tmp_path), "--wait", "wait_any", *items],
        env={"PYINIT_CONTROL": address},
    )
    run.expect(r"control socket: " + address.replace(".", r"\."))
    return run, address


# -- the client alone (no pyinit) -------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [[], ["bogus"], ["stop"], ["stop", "a", "b"], ["signal", "web"], ["wait", "web"],
     ["wait", "web", "--ready", "--down"], ["status", "--force"], ["logs", "web", "-n", "x"],
     ["restart", "web", "--wait", "down"], ["wait", "web", "--ready", "--timeout", "soon"],
     ["ready", "web"], ["status", "--bogus"]],
)  # fmt: skip
def test_usage_errors_are_status_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    """should refuse a bad command line with one line on stderr and status 2, before it even
    looks for pyinit."""
    done = pyinitctl(str(tmp_path / "none.sock"), *args)
    assert done.returncode == 2, done
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("pyinitctl: ")


def test_no_pyinit_is_status_4(tmp_path: Path) -> None:
    """should say where it looked and exit 4 when no pyinit answers."""
    done = pyinitctl(str(tmp_path / "none.sock"), "status")
    assert done.returncode == 4
    assert "no pyinit to talk to" in done.stderr
    assert "none.sock" in done.stderr


def test_the_client_imports_nothing_of_pyinits_but_itself() -> None:
    """pyinitctl should start on the standard library alone (exec probes run it often)."""
    code = "import sys, pyinit.ctl; print(sorted(m for m in sys.modules if m.startswith('pyinit')))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    ).stdout
    assert out.strip() == "['pyinit', 'pyinit.ctl']"


# -- every verb --------------------------------------------------------------------------------

ITEMS = ["-D", "exec sleep 100", "-D", "echo up; echo second line; exec sleep 100", "-D", "exit 3"]
TOML = '[task.D1]\nrestart = "always"\nrestart_delay = 0.1\n[task.D2]\nready = "log:^up$"\n'


def test_status_and_its_exit_codes(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """status should list every task with its state, say 3 when one is not running, 0 for
    running ones, 5 (with a did-you-mean) for an unknown name, and give JSON with --json."""
    run, address = start(mode, run_pyinit, tmp_path, ["--wait", "wait_forever", *ITEMS], TOML)
    run.expect(r"D3 exited|Exiting in the background \(exitcode=3\)")
    run.expect(r"D2 is ready")
    done = pyinitctl(address, "status")
    assert done.returncode == 3, done
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "TASK",
        "STAGE",
        "STATE",
        "PID",
        "UPTIME",
        "READY",
        "RESTARTS",
        "LAST",
        "EXIT",
    ]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["D1"][1:3] == ["async", "running"]
    assert rows["D2"][2] == "running"
    assert rows["D2"][5] == "yes"
    assert rows["D3"][2] == "failed"
    assert rows["D3"][-1] == "3"
    assert pyinitctl(address, "status", "D1", "D2").returncode == 0
    missing = pyinitctl(address, "status", "D4")
    assert missing.returncode == 5
    assert "no such task: D4 (did you mean D1?)" in missing.stderr
    as_json = json.loads(pyinitctl(address, "status", "--json", "D2").stdout)
    assert as_json["tasks"][0]["name"] == "D2"
    assert as_json["tasks"][0]["ready"] is True
    assert pyinitctl(address, "ready").returncode == 0


def test_stop_holds_and_start_releases(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """stop should stop the task and hold it: not restarted (restart = "always"), and its end
    does not end a wait_any run; start should run it again, with a new pid."""
    run, address = start(mode, run_pyinit, tmp_path, ITEMS[:4], TOML)
    run.expect(r"D2 is ready")
    before = json.loads(pyinitctl(address, "status", "--json", "D1").stdout)["tasks"][0]["pid"]
    stopped = pyinitctl(address, "stop", "D1")
    assert stopped.returncode == 0, stopped
    assert "D1 is held" in stopped.stdout
    run.expect(r"stop D1 \(uid 0\)")
    status = pyinitctl(address, "status", "D1")
    assert status.returncode == 3
    assert " held " in status.stdout
    assert "restart 1" not in run.text()  # held: no restart
    assert run.proc.poll() is None  # a held task's end does not end the run
    started = pyinitctl(address, "start", "D1")
    assert started.returncode == 0
    assert "D1 is running" in started.stdout
    after = json.loads(pyinitctl(address, "status", "--json", "D1").stdout)["tasks"][0]
    assert after["state"] == "running"
    assert after["pid"] != before
    assert pyinitctl(address, "start", "D1").returncode == 1  # already running
    run.signal(15)
    assert run.wait() == 143


def test_restart_gives_a_new_pid_and_waits_for_ready(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """restart should stop then start the task, and with --wait ready answer once it is ready."""
    run, address = start(mode, run_pyinit, tmp_path, ITEMS[:4], TOML)
    run.expect(r"D2 is ready")
    done = pyinitctl(address, "restart", "D2", "--wait", "ready", "--timeout", "10")
    assert done.returncode == 0, done
    pids = re.findall(r"<pid=([0-9]+)>", done.stdout)
    assert len(pids) == 2, done.stdout
    assert pids[0] != pids[1]
    run.expect(r"D2 is ready", count=2)


def test_signal_wait_logs_and_events(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """signal should reach the task; wait --down should time out (1) and then hold (0); logs
    should give the last lines; events should stream state changes."""
    run, address = start(mode, run_pyinit, tmp_path, ITEMS[:4], TOML)
    run.expect(r"D2 is ready")
    events = subprocess.Popen(
        [sys.executable, "-m", "pyinit.ctl", "events", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYINIT_CONTROL": address},
    )
    try:
        assert events.stdout is not None
        assert json.loads(events.stdout.readline())["kind"] == "hello"
        assert pyinitctl(address, "wait", "D1", "--down", "--timeout", "0.2").returncode == 1
        assert pyinitctl(address, "wait", "D2", "--ready").returncode == 0
        logs = pyinitctl(address, "logs", "D2", "-n", "1")
        assert logs.returncode == 0
        assert logs.stdout == "second line\n"
        signalled = pyinitctl(address, "signal", "D1", "TERM")
        assert signalled.returncode == 0
        assert "sent SIGTERM to D1" in signalled.stdout
        kinds = []
        while "restart" not in kinds:
            kinds.append(json.loads(events.stdout.readline())["kind"])
        assert kinds[0] == "exit"
        assert json.loads(events.stdout.readline())["kind"] in ("start", "release")
    finally:
        events.kill()
        events.wait()
        if events.stdout is not None:
            events.stdout.close()
    assert pyinitctl(address, "signal", "D1", "NOPE").returncode == 2
    assert pyinitctl(address, "logs", "nope").returncode == 5


def test_the_main_command_needs_force(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """stop on the main command should be refused without --force; with it, its end ends the
    run as usual."""
    run, address = start(mode, run_pyinit, tmp_path, ["-D", "exec sleep 100", "--", "sleep", "100"])
    refused = pyinitctl(address, "stop", "sleep")
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    assert pyinitctl(address, "stop", "sleep", "--force").returncode == 0
    assert run.wait() == 143


def test_another_uid_may_only_read(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """a client whose uid is neither root nor pyinit's should get status, and a refusal for
    stop, with an audit line."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv (apt-get install util-linux)")
    python = "/usr/bin/python3"
    if not os.access(python, os.X_OK):
        pytest.skip("needs /usr/bin/python3 (a Python any uid may run)")
    # An abstract name: pytest's directories are 0700, and a peer needs no file permission.
    address = f"@pyinit-test/{os.getpid()}/{mode}/{tmp_path.name}"
    run, address = start(mode, run_pyinit, tmp_path, ITEMS[:2], address=address)
    nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    status = pyinitctl(address, "status", python=python, user=nobody)
    assert status.returncode == 0, status
    assert "D1" in status.stdout
    refused = pyinitctl(address, "stop", "D1", python=python, user=nobody)
    assert refused.returncode == 1
    assert "uid 65534 may only read" in refused.stderr
    run.expect(r"refused stop D1 \(uid 65534\)")
    assert pyinitctl(address, "status", "D1").returncode == 0  # still running


# -- where the socket is -----------------------------------------------------------------------

READ_ONLY_RUN = r"""
set -e
mount --bind /run /run
mount -o remount,ro,bind /run
PYTHONPATH={root} {python} -m pyinit -vv --wait wait_forever -D 'exec sleep 100' 2> {log} &
P=$!
for i in $(seq 200); do grep -q 'control socket' {log} && break; sleep 0.05; done
grep 'control socket' {log}
PYTHONPATH={root} {python} -m pyinit.ctl status
kill $P
wait $P || true
"""


def test_a_read_only_run_falls_back_to_an_abstract_name(tmp_path: Path) -> None:
    """with /run read-only, pyinit should listen on the abstract @pyinit/control and the client
    find it by itself (its own mount and network namespace here, so nothing is shared)."""
    script = READ_ONLY_RUN.format(root=ROOT, python=sys.executable, log=tmp_path / "log")
    env = {k: v for k, v in os.environ.items() if k != "PYINIT_CONTROL"}
    done = subprocess.run(
        ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert "control socket: @pyinit/control" in done.stdout, (done.stdout, done.stderr)
    assert "D1" in done.stdout, done.stdout
    assert "running" in done.stdout


def test_the_default_path_and_a_stale_socket(tmp_path: Path) -> None:
    """in its own mount namespace (a private /run), pyinit should take /run/pyinit/control.sock,
    also over a stale socket file a killed pyinit left, and remove it at the end."""
    script = (
        "set -e; mount -t tmpfs tmpfs /run; mkdir -p /run/pyinit; "
        f'{sys.executable} -c "import socket; s = socket.socket(socket.AF_UNIX); '
        "s.bind('/run/pyinit/control.sock')\"; "
        f"PYTHONPATH={ROOT} {sys.executable} -m pyinit -vv --wait wait_forever "
        f"-D 'exec sleep 100' 2> {tmp_path}/log & P=$!; "
        f"for i in $(seq 200); do grep -q 'control socket' {tmp_path}/log && break; "
        "sleep 0.05; done; "
        f"grep 'control socket' {tmp_path}/log; stat -c '%a' /run/pyinit; "
        f"PYTHONPATH={ROOT} {sys.executable} -m pyinit.ctl status; kill $P; wait $P || true; "
        "test -e /run/pyinit/control.sock && echo LEFT || echo REMOVED"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYINIT_CONTROL"}
    done = subprocess.run(
        ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert "control socket: /run/pyinit/control.sock" in done.stdout, (done.stdout, done.stderr)
    assert "\n755\n" in done.stdout
    assert "running" in done.stdout
    assert done.stdout.rstrip().endswith("REMOVED")


# -- fuzzing the socket ------------------------------------------------------------------------


def connect(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        raise
    return sock


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.timeout(120)
def test_fuzzed_requests_never_hurt_pyinit(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """1,000 malformed requests, oversize lines, 100 connections opened and abandoned, and an
    events client that never reads: each error is one reply, pyinit goes on supervising
    (a crash-looping task keeps restarting) and its RSS stays bounded."""
    import random

    from conftest import figure

    items = ["--wait", "wait_forever", "-D", "exec sleep 100", "-D", "sleep 0.05; exit 1"]
    toml = (
        '[task.D2]\nrestart = "always"\nrestart_delay = 0.02\nrestart_max_delay = 0.02\n'
        "max_restarts = 100000\n"
    )
    run, address = start(mode, run_pyinit, tmp_path, items, toml)
    pid = run.pid  # pyinit's, in the host's pid namespace
    before = rss_kib(pid)
    rng = random.Random(7)
    garbage = [
        b"{", b"[]", b"null", b'{"v": 2, "verb": "status"}', b'{"v": 1}', b'{"v": 1, "verb": 5}',
        b'{"v": 1, "verb": "stop"}', b'{"v": 1, "verb": "stop", "task": ["x"]}',
        b'{"v": 1, "verb": "wait", "tasks": "D1"}',
        b'{"v": 1, "verb": "logs", "task": "D1", "lines": -1}',
        b'{"v": 1, "verb": "signal", "task": "D1", "signal": {}}', b"\xff\xfe", b'"text"',
        b'{"v": 1, "verb": "__init__"}', b'{"v": 1, "verb": "status", "tasks": [1, 2]}',
    ]  # fmt: skip
    sock = connect(address)
    reader = sock.makefile("rb")
    for n in range(1000):
        line = rng.choice(garbage) if n % 3 else bytes(rng.randrange(256) for _ in range(40))
        sock.sendall(line.replace(b"\n", b" ") + b"\n")
        reply = json.loads(reader.readline())
        assert reply["v"] == 1, (line, reply)
        assert "ok" in reply
    sock.sendall(b"x" * 70000)  # a line over the limit: one error, then the close
    reply = json.loads(reader.readline())
    assert reply["ok"] is False
    assert "over 65536" in reply["error"]
    assert reader.readline() == b""
    reader.close()
    sock.close()
    slow = connect(address)  # an events client that never reads
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b'{"v": 1, "verb": "events"}\n')
    abandoned = []
    for _ in range(100):
        try:
            abandoned.append(connect(address))
        except OSError:
            break
    for s in abandoned[:50]:
        s.close()
    run.expect(r"D2 exited \(exitcode=1\): restart 50 ", timeout=60)  # still supervising
    for s in abandoned[50:]:
        s.close()
    status = pyinitctl(address, "status", "D1")
    assert status.returncode == 0, status
    after = rss_kib(pid)
    figure("control fuzz", mode, rss_before_kib=before, rss_after_kib=after)
    assert after - before < 20 * 1024, (before, after)
    slow.close()
    run.signal(15)
    assert run.wait() == 143


def test_protocol_constants_match_the_docs() -> None:
    """the README's exit-status table and docs/control.md should list what ctl.py returns."""
    text = (ROOT / "docs" / "control.md").read_text()
    for code in (ctl.OK, ctl.FAILED, ctl.USAGE, ctl.NOT_RUNNING, ctl.UNREACHABLE, ctl.NO_TASK):
        assert f"| {code} |" in text
    for verb in ctl.VERBS:
        assert f"`{verb}" in text, verb


def test_bash_completes_verbs_and_task_names(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """`eval "$(pyinitctl completion)"` should complete the verbs, then the names of the tasks
    the running pyinit lists."""
    _run, address = start(
        mode, run_pyinit, tmp_path, ["-D", "exec sleep 100", "-D", "exec sleep 100"]
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pyinitctl").write_text(f'#!/bin/sh\nexec {sys.executable} -m pyinit.ctl "$@"\n')
    (bin_dir / "pyinitctl").chmod(0o755)
    script = (
        'eval "$(pyinitctl completion)"; '
        'COMP_WORDS=(pyinitctl re); COMP_CWORD=1; _pyinitctl; echo "${COMPREPLY[*]}"; '
        'COMP_WORDS=(pyinitctl stop D); COMP_CWORD=2; _pyinitctl; echo "${COMPREPLY[*]}"'
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
        "PYINIT_CONTROL": address,
    }
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=30, check=False
    )
    assert done.stdout.splitlines() == ["restart ready", "D1 D2"], done
    assert pyinitctl(address, "names").stdout == "D1\nD2\n"
