"""Supervision for real (spec §5-§6): restart policies, backoff, crash loops, and a fast graceful
group shutdown, with `python -m pyinit` as PID 1 and as a subreaper (the `mode` fixture).

Delays are measured from pyinit's own log timestamps (`--log-format=json`, RFC 3339 with
milliseconds), not from this process's clock, so test-side latency does not count.
"""

from __future__ import annotations

import re
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import Run, StartPyinit, must

pytestmark = pytest.mark.timeout(30)

#: How far a measured restart delay may be from the configured one (a shared machine).
TOLERANCE = 0.15
RESTART = re.compile(r"(\S+) exited \(exitcode=(\d+)\): restart (\d+) in ([0-9.]+)s")
#: A bash item that ignores SIGTERM; the `|| :` keeps the item's ERR trap from ending it when
#: its `sleep` is killed by the signal sent to the whole group.
STUBBORN = "trap '' TERM; echo ready; while :; do sleep 0.05 || :; done"


def stamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["time"]).timestamp()


def launches(run: Run, task: str) -> list[dict[str, Any]]:
    return [e for e in run.events() if e["task"] == task and e["message"].startswith("Launching")]


def restarts(run: Run) -> list[dict[str, Any]]:
    return [e for e in run.events() if RESTART.search(e["message"])]


def out_lines(run: Run) -> list[str]:
    return run.text("stdout").splitlines()


def write_toml(workdir: Path, text: str) -> list[str]:
    (workdir / "pyinit.toml").write_text(text)
    return ["-w", str(workdir)]


def assert_nothing_left(run: Run) -> None:
    if run.mode == "subreaper":
        assert run.left_running() == 0, run.text()


# --- restarts ---------------------------------------------------------------------------------


def test_crash_loop_backs_off_then_gives_up(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """should restart a failing task after 0.2, 0.4, 0.8, 0.8 s (doubling, capped), give up
    after max_restarts with a "failed for good" line and its reason, and exit with its status."""
    workdir = write_toml(
        tmp_path,
        '[defaults]\nrestart = "on-failure"\nrestart_delay = 0.2\n'
        "restart_max_delay = 0.8\nmax_restarts = 4\n",
    )
    run = run_pyinit(mode, [*workdir, "-v", "--log-format=json", "-D", "exit 3"])
    assert run.wait() == 3
    lines = restarts(run)
    assert [must(RESTART.search(e["message"])).groups() for e in lines] == [
        ("D1", "3", "1", "0.2"),
        ("D1", "3", "2", "0.4"),
        ("D1", "3", "3", "0.8"),
        ("D1", "3", "4", "0.8"),
    ]
    assert {(e["level"], e["task"]) for e in lines} == {("warn", "D1")}
    starts = launches(run, "D1")
    assert len(starts) == 5
    measured = [stamp(start) - stamp(line) for line, start in zip(lines, starts[1:], strict=True)]
    print(f"\nrestart delays ({mode}): " + ", ".join(f"{d:.3f}" for d in measured))
    for got, want in zip(measured, [0.2, 0.4, 0.8, 0.8], strict=True):
        assert abs(got - want) <= TOLERANCE, measured
    gave_up = [e for e in run.events() if "failed for good" in e["message"]]
    assert len(gave_up) == 1
    assert gave_up[0]["task"] == "D1"
    assert gave_up[0]["level"] in ("warn", "error")
    assert "exitcode=3" in gave_up[0]["message"]
    assert "4 restarts" in gave_up[0]["message"]  # the reason: the crash-loop limit
    assert stamp(gave_up[0]) > stamp(starts[-1])
    assert_nothing_left(run)


def test_restart_lines_are_warnings_at_default_verbosity(
    mode: str, run_pyinit: StartPyinit
) -> None:
    """should, with only the command line, restart exactly --max-restarts times, saying for
    each the task, its status, the restart count and the next delay, then give up."""
    run = run_pyinit(
        mode,
        [
            "--restart",
            "on-failure",
            "--restart-delay",
            "0.05",
            "--max-restarts",
            "3",
            "-D",
            "echo run; exit 3",
        ],
    )
    assert run.wait() == 3
    assert out_lines(run) == ["D1: run"] * 4
    text = run.text()
    lines = [line for line in text.splitlines() if RESTART.search(line)]
    assert len(lines) == 3, text
    for number, (line, delay) in enumerate(zip(lines, ["0.05", "0.1", "0.2"], strict=True), 1):
        assert re.search(
            rf"pyinit \[async/\d+\]: D1 exited \(exitcode=3\): restart {number} "
            rf"in {delay}s$",
            line,
        ), line
    gave_up = [line for line in text.splitlines() if "failed for good" in line]
    assert len(gave_up) == 1, text
    assert "D1" in gave_up[0]
    assert "exitcode=3" in gave_up[0]
    assert "Launching" not in text  # -v lines stay hidden: only the warnings are shown
    assert_nothing_left(run)


def test_the_main_command_is_restarted_too(mode: str, run_pyinit: StartPyinit) -> None:
    """should restart the main command under --restart on-failure and end with its status."""
    run = run_pyinit(
        mode,
        [
            "--restart",
            "on-failure",
            "--restart-delay",
            "0.05",
            "--max-restarts",
            "2",
            "--",
            "sh",
            "-c",
            "echo run; exit 4",
        ],
    )
    assert run.wait() == 4
    assert out_lines(run) == ["run"] * 3
    assert len(RESTART.findall(run.text())) == 2


def test_on_failure_does_not_restart_a_success(mode: str, run_pyinit: StartPyinit) -> None:
    """should leave a task that exited 0 alone under on-failure (another task keeps the run
    going for a second, long enough for a wrong restart to show)."""
    run = run_pyinit(
        mode,
        [
            "--wait",
            "wait_all",
            "--restart",
            "on-failure",
            "--restart-delay",
            "0.05",
            "-D",
            "echo run; exit 0",
            "-D",
            "sleep 1",
        ],
    )
    assert run.wait() == 0
    assert out_lines(run) == ["D1: run"]
    assert not RESTART.search(run.text())


def test_always_restarts_a_success(mode: str, run_pyinit: StartPyinit) -> None:
    """should restart a task that exited 0 under always, up to the limit, and end with 0."""
    run = run_pyinit(
        mode,
        [
            "--restart",
            "always",
            "--restart-delay",
            "0.05",
            "--max-restarts",
            "2",
            "-D",
            "echo run; exit 0",
        ],
    )
    assert run.wait() == 0
    assert out_lines(run) == ["D1: run"] * 3
    found = RESTART.findall(run.text())
    assert found == [("D1", "0", "1", "0.05"), ("D1", "0", "2", "0.1")]


def test_always_reaching_the_limit_is_logged(mode: str, run_pyinit: StartPyinit) -> None:
    """should say at the default verbosity that an `always` task will not be restarted any
    more once it reached the limit, even though its last status was 0."""
    run = run_pyinit(
        mode,
        ["--restart", "always", "--restart-delay", "0.05", "--max-restarts", "2", "-D", "exit 0"],
    )
    assert run.wait() == 0
    after = run.text().split("restart 2 in", 1)[1]
    assert re.search(r"D1.*(restart limit|not be restarted|no more restarts)", after), run.text()


@pytest.mark.parametrize(
    ("toml", "policy", "code", "runs"),
    [
        ("", "on-failure", 125, 1),
        ("", "always", 125, 1),
        ("[task.D1]\nno_restart_code = 42\n", "on-failure", 42, 1),
        ("[task.D1]\nno_restart_code = 42\n", "on-failure", 125, 2),
    ],
    ids=["default-125", "default-125-always", "configured-42", "125-once-42-is-configured"],
)
def test_the_do_not_restart_code(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path, toml: str, policy: str, code: int, runs: int
) -> None:
    """should not restart a task that exits with the "do not restart" code (125 unless
    configured otherwise), log why, and end the run with that code; other codes restart."""
    workdir = write_toml(tmp_path, toml)
    run = run_pyinit(
        mode,
        [
            *workdir,
            "--restart",
            policy,
            "--restart-delay",
            "0.05",
            "--max-restarts",
            "1",
            "-D",
            f"echo run; exit {code}",
        ],
    )
    assert run.wait() == code
    assert out_lines(run) == ["D1: run"] * runs
    text = run.text()
    assert len(RESTART.findall(text)) == runs - 1
    gave_up = [line for line in text.splitlines() if "failed for good" in line]
    assert len(gave_up) == 1, text
    assert f"exitcode={code}" in gave_up[0]
    if runs == 1:
        assert "do not restart" in gave_up[0]


COUNTED = """\
n=$(( $(cat {counter} 2>/dev/null || echo 0) + 1 )); echo $n > {counter}
if [ $n -eq 3 ]; then sleep 0.6; fi
exit 3
"""


def test_backoff_resets_after_a_stable_run(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """should go back to restart_delay after a run longer than restart_reset: the third run
    stays up 0.6 s (reset 0.3 s), so the delays are 0.2, 0.4, then 0.2 again, then 0.4."""
    workdir = write_toml(
        tmp_path,
        '[defaults]\nrestart = "on-failure"\nrestart_delay = 0.2\n'
        "restart_max_delay = 0.8\nrestart_reset = 0.3\n"
        "max_restarts = 4\n",
    )
    code = COUNTED.format(counter=tmp_path / "counter")
    run = run_pyinit(mode, [*workdir, "-v", "--log-format=json", "-D", code])
    assert run.wait() == 3
    lines = restarts(run)
    assert [must(RESTART.search(e["message"])).group(4) for e in lines] == [
        "0.2",
        "0.4",
        "0.2",
        "0.4",
    ]
    starts = launches(run, "D1")
    measured = [stamp(start) - stamp(line) for line, start in zip(lines, starts[1:], strict=True)]
    print(f"\nrestart delays ({mode}): " + ", ".join(f"{d:.3f}" for d in measured))
    for got, want in zip(measured, [0.2, 0.4, 0.2, 0.4], strict=True):
        assert abs(got - want) <= TOLERANCE, measured
    assert (tmp_path / "counter").read_text().strip() == "5"


def test_boot_and_halt_items_run_once(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """should run boot and halt items once even when their policy says always; a failing halt
    item still turns the successful run into a failure."""
    workdir = write_toml(
        tmp_path,
        '[task.B1]\nrestart = "always"\nrestart_delay = 0\n'
        '[task.H1]\nrestart = "always"\nrestart_delay = 0\n',
    )
    run = run_pyinit(mode, [*workdir, "-B", "echo boot", "-H", "echo halt; exit 4", "--", "true"])
    assert run.wait() == 4
    assert out_lines(run) == ["B1: boot", "H1: halt"]
    assert not RESTART.search(run.text())


def test_a_stop_cancels_a_pending_restart(mode: str, run_pyinit: StartPyinit) -> None:
    """should stop at once, without the restart, when SIGTERM comes during a backoff."""
    run = run_pyinit(
        mode, ["--restart", "on-failure", "--restart-delay", "30", "-D", "echo run; exit 3"]
    )
    run.expect(r"D1 exited \(exitcode=3\): restart 1 in 30s")
    start = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    assert time.monotonic() - start < 3
    assert out_lines(run) == ["D1: run"]
    assert_nothing_left(run)


# --- stopping ---------------------------------------------------------------------------------


def test_a_stubborn_task_is_killed_after_the_grace(mode: str, run_pyinit: StartPyinit) -> None:
    """should SIGKILL a task that ignores SIGTERM once --grace has passed, and end the run."""
    run = run_pyinit(mode, ["--grace", "1", "-D", STUBBORN])
    run.expect("^D1: ready", "stdout")
    start = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 5, elapsed
    assert re.search(r"D1.*SIGKILL", run.text()), run.text()
    assert_nothing_left(run)


@pytest.mark.timeout(60)
def test_fifty_tasks_stop_at_once(mode: str, run_pyinit: StartPyinit) -> None:
    """should stop 50 tasks that exit on SIGTERM together, and exit as soon as they are gone
    (well within 0.5 s on an idle machine; only a generous bound is asserted)."""
    items = []
    for _ in range(50):
        items += ["-D", "echo up; exec sleep 1000"]
    run = run_pyinit(mode, items)
    for number in range(1, 51):
        run.expect(rf"^D{number}: up$", "stdout", timeout=20)
    start = time.monotonic()
    run.signal(signal.SIGTERM)
    status = run.wait()
    elapsed = time.monotonic() - start
    print(f"\n50 tasks stopped and pyinit exited in {elapsed:.3f}s ({mode})")
    assert status == 143
    assert elapsed < 3
    assert "SIGKILL" not in run.text()
    assert_nothing_left(run)


def test_a_second_signal_is_delivered_and_changes_nothing(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """should, on a second SIGTERM during the stop and a SIGINT during halt, deliver them (to
    the task still stopping, to the halt item running) and log them at -v; the plan and the
    status stand: the halt item still completes and the status stays 143 (not 130)."""
    marker = tmp_path / "halted"
    slow_stop = (
        "trap 'echo stopping; sleep 0.3; exit 0' TERM; echo ready; "
        "while :; do sleep 0.05 || :; done"
    )
    halt = f"trap 'echo got INT' INT; echo halting; sleep 0.5 || :; touch {marker}"
    run = run_pyinit(mode, ["-v", "-D", slow_stop, "-H", halt])
    run.expect("^D1: ready", "stdout")
    run.signal(signal.SIGTERM)
    run.expect("^D1: stopping", "stdout")
    run.signal(signal.SIGTERM)
    run.expect("^H1: halting", "stdout")
    run.signal(signal.SIGINT)
    run.expect("^H1: got INT", "stdout")
    assert run.wait() == 143
    assert marker.exists()
    text = run.text()
    assert len(re.findall(r"got SIG(TERM|INT) while stopping: forwarded", text)) == 2, text
    assert "Traceback" not in text
    assert_nothing_left(run)


def test_per_task_stop_signal(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """should stop a task with its own stop_signal: one that only exits on SIGUSR1 stops
    promptly, well before the 5 s grace, and nothing needs SIGKILL."""
    workdir = write_toml(tmp_path, '[task.D1]\nstop_signal = "USR1"\n')
    only_usr1 = (
        "trap '' TERM; trap 'echo got-usr1; exit 0' USR1; echo ready; "
        "while :; do sleep 0.05 || :; done"
    )
    run = run_pyinit(
        mode, [*workdir, "--grace", "5", "-D", only_usr1, "-D", "echo ready; exec sleep 1000"]
    )
    run.expect("^D1: ready", "stdout")
    run.expect("^D2: ready", "stdout")
    start = time.monotonic()
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    elapsed = time.monotonic() - start
    assert elapsed < 2.5, elapsed
    assert "D1: got-usr1" in out_lines(run)
    assert "SIGKILL" not in run.text()
    assert_nothing_left(run)


def test_per_task_grace(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """should SIGKILL a stubborn task after its own grace (0.3 s), not after the longest grace
    of the others (2 s), while another task still takes 1 s to stop."""
    workdir = write_toml(tmp_path, "[defaults]\ngrace = 2\n[task.D1]\ngrace = 0.3\n")
    slow = "trap 'sleep 1; exit 0' TERM; echo ready; while :; do sleep 0.05 || :; done"
    run = run_pyinit(mode, [*workdir, "-v", "--log-format=json", "-D", STUBBORN, "-D", slow])
    run.expect(r'"task":"D1".*"line":"ready"', "stdout")
    run.expect(r'"task":"D2".*"line":"ready"', "stdout")
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    found = run.events()
    got = next(e for e in found if re.search(r"got SIGTERM", e["message"]))
    d1_exit = next(e for e in found if e["task"] == "D1" and "exitcode=137" in e["message"])
    assert stamp(d1_exit) - stamp(got) < 1.0, found


# --- identity, directory, environment ---------------------------------------------------------

IDENTITY = 'echo "$PYINIT_TASK uid=$(id -u) gid=$(id -g) groups=$(id -G)"'


def identities(run: Run) -> dict[str, dict[str, str]]:
    found = {}
    for line in out_lines(run):
        words = line.split(": ", 1)[1].split(" ", 1)
        found[words[0]] = dict(re.findall(r"(\w+)=(\S+(?: \d+)*)", words[1]))
    return found


def test_user_drops_privileges_for_that_task_only(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """should run a task with `user = "nobody"` as 65534 with no root group, one with only
    `group` under that group alone, and the others as root."""
    workdir = write_toml(tmp_path, '[task.D1]\nuser = "nobody"\n[task.D2]\ngroup = "nogroup"\n')
    run = run_pyinit(
        mode, [*workdir, "--wait", "wait_all", "-D", IDENTITY, "-D", IDENTITY, "-D", IDENTITY]
    )
    assert run.wait() == 0, run.text()
    ids = identities(run)
    assert ids["D1"]["uid"] == "65534"
    assert ids["D1"]["gid"] == "65534"
    assert "0" not in ids["D1"]["groups"].split()
    assert ids["D2"]["uid"] == "0"
    assert ids["D2"]["gid"] == "65534"
    assert ids["D2"]["groups"].split() == ["65534"]
    assert ids["D3"]["uid"] == "0"
    assert ids["D3"]["gid"] == "0"


def test_a_numeric_user_without_passwd_entry_is_not_root(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """should run a task with `user = "54321"` (no passwd entry, as common in containers) as
    uid 54321, never silently as root."""
    workdir = write_toml(tmp_path, '[task.D1]\nuser = "54321"\ngroup = "nogroup"\n')
    run = run_pyinit(mode, [*workdir, "-D", IDENTITY])
    assert run.wait() == 0, run.text()
    ids = identities(run)
    assert ids["D1"]["uid"] == "54321"
    assert ids["D1"]["groups"].split() == ["65534"]


def test_cwd_and_env_per_task(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    """should start a task in its `cwd` with its `env` added over pyinit's environment; the
    other tasks keep pyinit's directory and environment."""
    (tmp_path / "srv").mkdir()
    toml = f'[task.D1]\ncwd = "{tmp_path / "srv"}"\n'
    workdir = write_toml(tmp_path, toml + 'env = { GREETING = "hello", SHARED = "task" }\n')
    show = 'echo "$PYINIT_TASK pwd=$(pwd) greeting=${GREETING:-none} shared=$SHARED"'
    run = run_pyinit(
        mode,
        [*workdir, "--wait", "wait_all", "-D", show, "-D", show],
        env={"SHARED": "pyinit"},
        cwd=tmp_path,
    )
    assert run.wait() == 0, run.text()
    lines = set(out_lines(run))
    assert lines == {
        f"D1: D1 pwd={tmp_path / 'srv'} greeting=hello shared=task",
        f"D2: D2 pwd={tmp_path} greeting=none shared=pyinit",
    }
