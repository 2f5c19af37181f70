"""No signal is swallowed, a lone command lives as long as it wants, and signals are routed per
task (README "Signals and shutdown"; pyinit/forwarding.py). Real processes, both modes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, Run, StartPyinit

pytestmark = pytest.mark.timeout(90)

PRINTER = str(ROOT / "tests" / "children" / "signal_printer.py")
ORDER = [
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTERM,
    signal.SIGWINCH,
    signal.SIGCONT,
]


def _name(signum: int) -> str:
    return signal.Signals(signum).name


def _wait_for_lines(run: Run, marker: bytes, count: int, timeout: float = 10) -> None:
    """Wait until `count` stdout lines hold `marker` (lines may repeat: expect() cannot tell)."""
    deadline = time.monotonic() + timeout
    while sum(marker in ln for ln in run.lines["stdout"]) < count:
        assert time.monotonic() < deadline, run.text("stdout")
        time.sleep(0.005)


@pytest.mark.parametrize(
    ("rewrite", "dropped", "as_"),
    [
        ([], None, {}),
        (["--rewrite", "TERM:QUIT"], None, {signal.SIGTERM: signal.SIGQUIT}),
        (["--rewrite", "INT:0"], signal.SIGINT, {}),
    ],
    ids=["plain", "TERM-as-QUIT", "INT-dropped"],
)
def test_every_signal_reaches_the_command_while_stopping(
    mode: str,
    run_pyinit: StartPyinit,
    rewrite: list[str],
    dropped: int | None,
    as_: dict[int, int],
) -> None:
    """HUP, INT, QUIT, USR1, USR2, TERM, WINCH and CONT sent one after another should each
    reach the command once, in order, although the first of INT/QUIT/TERM starts the shutdown;
    a --rewrite applies to every one of them, and SIG:0 drops that one and no other."""
    expected = [as_.get(s, s) for s in ORDER if s != dropped]
    run = run_pyinit(
        mode,
        [
            "-v",
            *rewrite,
            "--",
            sys.executable,
            PRINTER,
            "--name",
            "app",
            "--exit-after",
            str(len(expected)),
        ],
    )
    run.expect("^app ready", "stdout")
    seen = 0
    for signum in ORDER:
        run.signal(signum)
        if signum == dropped:
            run.expect(rf"ignored {_name(signum)}")
            continue
        seen += 1
        # wait for this one before the next, so "in order" is the order pyinit delivered
        _wait_for_lines(run, b" got ", seen)
    assert run.wait() == 0  # the command decided the status: it exited 0
    got = [ln.split()[-1].decode() for ln in run.lines["stdout"] if b" got " in ln]
    assert got == [_name(s) for s in expected]
    assert "SIGKILL" not in run.text()
    assert "already stopping" not in run.text()


def test_a_lone_command_drains_as_long_as_it_wants(mode: str, run_pyinit: StartPyinit) -> None:
    """In a tini-style run (a main command only) pyinit should wait for the command after
    forwarding SIGTERM for as long as it runs, with no SIGKILL: an app that drains for 8 s
    and exits 0 makes pyinit exit 0, never 137."""
    run = run_pyinit(mode, ["--", sys.executable, PRINTER, "--name", "app", "--drain", "8"])
    run.expect("^app ready", "stdout")
    start = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait(30) == 0
    assert time.monotonic() - start >= 7.5
    run.expect("^app drained", "stdout")
    assert "SIGKILL" not in run.text()


def test_the_same_command_in_a_group_gets_sigkill_after_the_grace(
    mode: str, run_pyinit: StartPyinit
) -> None:
    """In a group run (here with one background item) the grace works as before: the
    draining command gets SIGKILL after --grace 2, and the status is 137."""
    run = run_pyinit(
        mode,
        [
            "--grace",
            "2",
            "-D",
            "exec sleep 100",
            "--",
            sys.executable,
            PRINTER,
            "--name",
            "app",
            "--drain",
            "8",
        ],
    )
    run.expect("^app ready", "stdout")
    start = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait(30) == 137
    assert 1.8 < time.monotonic() - start < 6
    assert "SIGKILL" in run.text()


def test_an_explicit_grace_applies_to_a_lone_command(mode: str, run_pyinit: StartPyinit) -> None:
    """PYINIT_GRACE (like --grace) should bring the SIGKILL back to a tini-style run."""
    run = run_pyinit(
        mode,
        ["--", sys.executable, PRINTER, "--name", "app", "--drain", "8"],
        env={"PYINIT_GRACE": "1"},
    )
    run.expect("^app ready", "stdout")
    run.signal(signal.SIGTERM)
    assert run.wait(30) == 137


def test_grace_inf_never_kills_in_a_group(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """`grace = inf` in pyinit.toml should mean "never SIGKILL", in a group run too."""
    (tmp_path / "pyinit.toml").write_text("[defaults]\ngrace = inf\n")
    run = run_pyinit(
        mode,
        [
            "-w",
            str(tmp_path),
            "-D",
            "exec sleep 100",
            "--",
            sys.executable,
            PRINTER,
            "--name",
            "app",
            "--drain",
            "6",
        ],
    )
    run.expect("^app ready", "stdout")
    run.signal(signal.SIGTERM)
    assert run.wait(30) == 0
    assert "SIGKILL" not in run.text()


def test_rewrite_term_to_0_ignores_term(mode: str, run_pyinit: StartPyinit) -> None:
    """--rewrite TERM:0 should ignore TERM: no shutdown, nothing forwarded; INT still stops
    the run (dumb-init's -r 15:0)."""
    run = run_pyinit(
        mode, ["-v", "--rewrite", "TERM:0", "--", sys.executable, PRINTER, "--name", "app"]
    )
    run.expect("^app ready", "stdout")
    run.signal(signal.SIGTERM)
    run.expect("ignored SIGTERM")
    run.signal(signal.SIGHUP)  # still running and forwarding
    run.expect("^app got SIGHUP$", "stdout")
    assert b"app got SIGTERM\n" not in run.lines["stdout"]
    run.signal(signal.SIGINT)
    run.expect("^app got SIGINT$", "stdout")
    run.signal(signal.SIGKILL)  # the printer never exits by itself: end the test


TOML_ROUTES = """\
[task.D1]
signals = ["HUP"]
[task.D2]
signals = "none"
"""


def test_signals_key_picks_what_each_task_gets(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """`signals = ["HUP"]`, `signals = "none"` and the default "all": HUP, USR1 and USR2 should
    reach exactly the tasks whose setting lets them through."""
    (tmp_path / "pyinit.toml").write_text(TOML_ROUTES)
    item = f"exec {sys.executable} {PRINTER}"
    run = run_pyinit(
        mode,
        [
            "-w",
            str(tmp_path),
            "--wait",
            "wait_forever",
            "--prefix",
            "",
            "-D",
            item,
            "-D",
            item,
            "-D",
            item,
        ],
    )
    for task in ("D1", "D2", "D3"):
        run.expect(rf"^{task} ready", "stdout")
    for signum in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        run.signal(signum)
        run.expect(rf"^D3 got {_name(signum)}$", "stdout")
    run.expect("^D1 got SIGHUP$", "stdout")
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    got = {ln.decode().strip() for ln in run.lines["stdout"] if b" got " in ln}
    assert got == {
        "D1 got SIGHUP",
        "D3 got SIGHUP",
        "D3 got SIGUSR1",
        "D3 got SIGUSR2",
        "D1 got SIGTERM",
        "D2 got SIGTERM",
        "D3 got SIGTERM",
    }


def test_signal_target_pid_spares_the_workers(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """`signal_target = "pid"` should send forwarded signals to the task's own pid only, not
    to the child in its group; the default reaches both."""
    (tmp_path / "pyinit.toml").write_text('[task.D1]\nsignal_target = "pid"\n')
    item = f"exec {sys.executable} {PRINTER} --fork"
    run = run_pyinit(
        mode,
        ["-w", str(tmp_path), "--wait", "wait_forever", "--prefix", "", "-D", item, "-D", item],
    )
    for task in ("D1", "D1-child", "D2", "D2-child"):
        run.expect(rf"^{task} ready", "stdout")
    run.signal(signal.SIGUSR1)
    for task in ("D1", "D2", "D2-child"):
        run.expect(rf"^{task} got SIGUSR1$", "stdout")
    run.signal(signal.SIGTERM)
    run.wait()
    assert b"D1-child got SIGUSR1\n" not in run.lines["stdout"]


def test_a_task_killed_by_a_forwarded_signal_is_told_why(
    mode: str, run_pyinit: StartPyinit
) -> None:
    """A task that dies of a signal pyinit forwarded (USR1 ends a process by default) should
    get a warning naming the signal and the `signals` key that keeps it away."""
    run = run_pyinit(
        mode,
        [
            "--wait",
            "wait_forever",
            "-D",
            "exec sleep 100",
            "-D",
            f"exec {sys.executable} {PRINTER}",
        ],
    )
    run.expect("^D2: D2 ready", "stdout")
    run.signal(signal.SIGUSR1)
    line = run.expect(r"D1 was killed by SIGUSR1, which pyinit forwarded")
    assert b"signals" in line
    assert b"[task.D1]" in line
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


@pytest.mark.parametrize("problem", ["malformed", "writable"])
@pytest.mark.parametrize("flag", ["--help", "-V", "-l"])
def test_help_works_whatever_the_work_dir_holds(tmp_path: Path, problem: str, flag: str) -> None:
    """--help, -V and -l should answer with status 0 even when the current directory's
    pyinit.toml is malformed or writable by others: they read nothing from it."""
    toml = tmp_path / "pyinit.toml"
    toml.write_text("[bogus\n" if problem == "malformed" else "[defaults]\n")
    if problem == "writable":
        toml.chmod(0o666)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pyinit", flag],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    expected = {"--help": b"Usage: pyinit", "-V": b"pyinit ", "-l": b"MIT"}[flag]
    assert expected in done.stdout


STORM_TOML = """\
[task.D1]
restart = "always"
restart_delay = 0.01
restart_max_delay = 0.01
max_restarts = 100000
signals = "none"
"""


@pytest.mark.timeout(120)
def test_forwarding_stays_right_while_tasks_restart(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """USR1 sent to pyinit in a tight loop while a task restarts every 10 ms: pyinit should stay
    up, every run of the restarting task be reaped with its own status (3), and the
    long-running task beside it receive USR1."""
    (tmp_path / "pyinit.toml").write_text(STORM_TOML)
    run = run_pyinit(
        mode,
        [
            "-w",
            str(tmp_path),
            "-v",
            "--wait",
            "wait_forever",
            "--prefix",
            "",
            "-D",
            "exit 3",
            "-D",
            f"exec {sys.executable} {PRINTER}",
        ],
    )
    run.expect("^D2 ready", "stdout")
    run.expect("restart 5 in")
    stop = time.monotonic() + 4
    sent = 0
    while time.monotonic() < stop:
        os.kill(run.pid, signal.SIGUSR1)
        sent += 1
        if sent % 50 == 0:
            time.sleep(0.001)  # let the kernel deliver: coalescing is expected, not loss
    run.expect("^D2 got SIGUSR1$", "stdout")
    run.signal(signal.SIGTERM)
    assert run.wait(60) == 143
    text = run.text()
    exits = [ln for ln in text.splitlines() if "D1 exited (exitcode=" in ln]
    assert len(exits) > 50, text[-2000:]
    assert all("exitcode=3)" in ln for ln in exits), [ln for ln in exits if "=3)" not in ln]
    got = sum(1 for ln in run.lines["stdout"] if ln == b"D2 got SIGUSR1\n")
    assert 0 < got <= sent
    assert "Traceback" not in text


def test_pyinit_leaves_its_start_directory(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """pyinit's own cwd should be "/" once it runs (the start directory can be unmounted),
    while a task still starts in the start directory and its relative paths resolve."""
    (tmp_path / "data.txt").write_text("relative works\n")
    run = run_pyinit(mode, ["--", "sh", "-c", "cat data.txt; exec sleep 100"], cwd=tmp_path)
    run.expect("^relative works", "stdout")
    assert os.readlink(f"/proc/{run.pid}/cwd") == "/"
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


APP = """\
import os, time
def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        open(os.path.join(os.path.dirname(__file__), "inflight"), "w").close()
        time.sleep(3)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\\n"]
"""


def test_gunicorn_reloads_on_hup_with_signal_target_pid(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """A real gunicorn master with 2 workers and `signal_target = "pid"` should reload on
    HUP gracefully: a request in flight gets its 200, and no worker dies of the signal."""
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
    if gunicorn is None:
        pytest.skip("needs gunicorn (pip install gunicorn)")
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "pyinit.toml").write_text('[task.gunicorn]\nsignal_target = "pid"\n')
    port = 18000 + os.getpid() % 1000 + (500 if mode == "pid1" else 0)
    run = run_pyinit(
        mode,
        [
            "-w",
            str(tmp_path),
            "--",
            gunicorn,
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--chdir",
            str(tmp_path),
            "app:app",
        ],
    )
    run.expect("Booting worker", "stderr", timeout=30)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(base + "/", timeout=5).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    result: list[object] = []

    def slow() -> None:
        try:
            with urllib.request.urlopen(base + "/slow", timeout=20) as reply:
                result.append(reply.status)
        except OSError as e:
            result.append(e)

    request = threading.Thread(target=slow)
    request.start()
    deadline = time.monotonic() + 20
    while not (tmp_path / "inflight").exists():  # HUP must come while the request is served
        assert time.monotonic() < deadline
        time.sleep(0.01)
    run.signal(signal.SIGHUP)
    run.expect("Hang up: Master", "stderr", timeout=20)
    request.join(30)
    assert result == [200]
    run.signal(signal.SIGTERM)
    run.wait(30)
    assert "was sent SIGHUP" not in run.text()


def test_a_stopped_main_command_never_counts_as_success(mode: str, run_pyinit: StartPyinit) -> None:
    """A background item that exits 0 (a daemon that forked away) while the main command runs
    should end a wait_any run with a warning and the main command's status after the stop
    (143), never 0: a CI job that pyinit stopped did not pass."""
    run = run_pyinit(
        mode,
        ["-D", "sleep 0.3; exit 0", "--", "sh", "-c", "echo started; sleep 30; echo TESTS PASSED"],
    )
    run.expect("^started", "stdout")
    assert run.wait() == 143
    run.expect(r"D1 ended \(exitcode=0\) while sh was running: stopping it \(wait_any\)")
    assert b"TESTS PASSED\n" not in run.lines["stdout"]


def test_a_stopped_main_command_that_exits_0_still_fails(
    mode: str, run_pyinit: StartPyinit
) -> None:
    """The same when the main command exits 0 on SIGTERM: the run's status is 143."""
    run = run_pyinit(
        mode,
        ["-D", "sleep 0.3; exit 0", "--", sys.executable, PRINTER, "--name", "app", "--drain", "0"],
    )
    run.expect("^app ready", "stdout")
    assert run.wait() == 143
    run.expect("^app drained", "stdout")


def test_a_background_group_keeps_its_rule(mode: str, run_pyinit: StartPyinit) -> None:
    """With no foreground item, a background task that ends with 0 ends a wait_any run with 0
    (today's rule)."""
    run = run_pyinit(mode, ["-D", "exit 0", "-D", "exec sleep 30"])
    assert run.wait() == 0


def test_a_daemonizing_redis_cannot_turn_a_ci_job_green(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """`redis-server --daemonize yes` as a background item: its parent exits 0 at once, which
    must not end the run with 0; the job is stopped, the warning names redis, status 143."""
    redis = shutil.which("redis-server")
    if redis is None:
        pytest.skip("needs redis-server (apt-get install redis-server)")
    port = 16000 + os.getpid() % 1000 + (500 if mode == "pid1" else 0)
    run = run_pyinit(
        mode,
        [
            "-D",
            f"exec {redis} --port {port} --daemonize yes --save '' "
            f"--dir {tmp_path} --pidfile {tmp_path}/redis.pid",
            "--",
            "sh",
            "-c",
            "sleep 5; echo TESTS FAILED; exit 1",
        ],
    )
    assert run.wait() == 143
    run.expect(r"D1 ended \(exitcode=0\) while sh was running: stopping it")
    assert b"TESTS FAILED\n" not in run.lines["stdout"]
