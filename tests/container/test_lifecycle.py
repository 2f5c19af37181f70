"""pyinit as the PID 1 of real images under podman: logs, stop, signals, crash loops, statuses.

Each test starts its own container (`podman run -d`, a unique name, removed afterwards) from the
images of Dockerfile.example ("example": the stand-in programs) and docker/*/Dockerfile (the
seed's process manager with the real nc and ss), and reads `podman logs` for the lines it expects.
"""

import json
import re
from pathlib import Path

import pytest

from .harness import Images, Podman

# The body only: the session's preparation (conftest.py) has a time limit on every step.
pytestmark = pytest.mark.timeout(180, func_only=True)

# pyinit's own lines: `2026-11-27 10:00:00 pyinit [async/12]: message` (README, Output).
LOG = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d pyinit \[(main|boot|async|sync|halt)/(\d+)\]: "
DATE = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d "  # the listener's lines: what `date` printed
SS_HEADER = r"State +Recv-Q +Send-Q"


def bash(script: str) -> tuple[str, ...]:
    """A main command: bash running SCRIPT."""
    return ("bash", "-c", script)


def test_pyinit_way_prefixes_restarts_and_stops_with_143(images: Images, podman: Podman) -> None:
    """should show each program's lines prefixed, restart a killed one, stop on TERM with 143"""
    pm = podman.start(images.get("pyinit-way"))
    pm.wait_for(rf"^netlistener: {DATE}")  # nc prints what netsender sends it
    _, after = pm.wait_for(rf"^netmon: {SS_HEADER}")
    # Kill one program: pyinit logs the restart (a warning, shown by default) and restarts it.
    assert pm.exec("pkill", "-x", "ss").returncode == 0
    _, after = pm.wait_for(LOG + r".*netmon.*restart", since=after)
    pm.wait_for(rf"^netmon: {SS_HEADER}", since=after)
    assert pm.exec("pgrep", "-x", "ss").returncode == 0, "ss runs again"

    elapsed = pm.stop(10)
    assert pm.wait_exit() == 143, "stopped by SIGTERM with no main command (README)"
    assert elapsed < 10, f"podman stop took {elapsed:.1f}s: pyinit was SIGKILLed"
    pm.wait_for(LOG.replace(r"(\d+)", "1") + r".*exitcode=143")


def test_trc_way_runs_halt_on_podman_stop(images: Images, podman: Podman, tmp_path: Path) -> None:
    """should run the TrivialRC way's stages and, on podman stop, its halt item, then exit 143"""
    pm = podman.start(images.get("trc-way"))
    for task in ("netlistener", "netlistener-logger", "netmon", "netmon-logger", "netsender"):
        pm.wait_for(LOG + rf"Launching in the background: /opt/app/trc\.d/async\.{task}$")
    pm.wait_for(rf"^netlistener: {DATE}")  # prefixed by the seed's own logger tasks
    _, after = pm.wait_for(rf"^netmon: {SS_HEADER}")
    assert pm.exec("test", "-p", "/tmp/netmon.pipe").returncode == 0, "boot made the FIFOs"

    elapsed = pm.stop(10)
    assert pm.wait_exit() == 143
    assert elapsed < 10, f"podman stop took {elapsed:.1f}s: pyinit was SIGKILLed"
    _, halt = pm.wait_for(
        LOG + r"Running the shutdown script: /opt/app/trc\.d/halt\.remove-logs$", since=after
    )
    pm.wait_for(LOG + r"Exited \(exitcode=143\)$", since=halt)
    # The halt item removed the FIFOs: look into the stopped container's /tmp.
    podman.check("cp", f"{pm.name}:/tmp", str(tmp_path / "tmp"))
    assert not list((tmp_path / "tmp").glob("*.pipe")), list((tmp_path / "tmp").iterdir())


def test_trc_way_ends_on_hup_as_trivialrc(images: Images, podman: Podman) -> None:
    """should end the TrivialRC way on podman kill -s HUP with 129, halt included (README)"""
    pm = podman.start(images.get("trc-way"))
    _, after = pm.wait_for(rf"^netmon: {SS_HEADER}")
    podman.check("kill", "-s", "HUP", pm.name)
    assert pm.wait_exit() == 129
    pm.wait_for(LOG + r"Running the shutdown script: /opt/app/trc\.d/halt\.remove-logs$", after)


def test_hup_reaches_every_task(images: Images, podman: Podman) -> None:
    """should forward podman kill -s HUP to the main command and every task; the run goes on"""
    main = bash('trap "echo main: got HUP" HUP; echo main: ready; while :; do sleep 0.2; done')
    box = podman.start(images.get("example"), *main)
    box.wait_for(r"^netmon: " + SS_HEADER)
    _, after = box.wait_for(r"^main: ready$")
    podman.check("kill", "-s", "HUP", box.name)
    box.wait_for(r"^main: got HUP$", since=after)
    # The stand-in programs do not catch HUP: they die of it (128+1), pyinit restarts them.
    for task in ("netlistener", "netmon"):
        box.wait_for(LOG + rf".*{task}.*exitcode=129.*restart", since=after)
    box.wait_for(r"^netmon: " + SS_HEADER, since=after)
    assert box.state("Running") == "true"
    box.stop(10)
    assert box.wait_exit() == 143, "the main command (bash) ended by TERM"


def test_halt_items_run_on_podman_stop(images: Images, podman: Podman) -> None:
    """should run -H items after the tasks stop, within podman stop's 10 s, status kept"""
    entrypoint = ["pyinit", "-w", "/etc", "-H", 'echo "halt: status $_exit_status"', "--"]
    box = podman.start(images.get("example"), options=("--entrypoint", json.dumps(entrypoint)))
    _, after = box.wait_for(r"^netmon: " + SS_HEADER)
    elapsed = box.stop(10)
    assert box.wait_exit() == 143
    assert elapsed < 10, f"podman stop took {elapsed:.1f}s"
    box.wait_for(r"^(H1: )?halt: status 143$", since=after)


def test_crash_loop_ends_the_container_with_the_task_status(
    images: Images, podman: Podman, tmp_path: Path
) -> None:
    """should restart a failing program 5 times (pyinit.toml), then exit with its status 7
    and say why in /dev/termination-log (Kubernetes' terminationMessagePath)"""
    termination_log = tmp_path / "termination-log"
    termination_log.touch()
    pm = podman.start(
        images.get("pyinit-way"),
        options=(
            *("-e", "NETMON_CMD=python3 -c exit(7)", "-e", "PYINIT_RESTART_DELAY=0.2"),
            *("-v", f"{termination_log}:/dev/termination-log"),
        ),
    )
    assert pm.wait_exit(timeout=60) == 7
    reason = termination_log.read_text()
    assert re.search(r"netmon\b.*\b7\b", reason), reason
    lines = pm.logs()
    task_lines = LOG.replace("(main|boot|async|sync|halt)", "async") + r"netmon .*exitcode=7"
    restarts = [line for line in lines if re.search(task_lines, line)]
    assert len(restarts) == 6, "5 restarts, then the give-up:\n" + "\n".join(lines)
    assert all(re.search(rf"restart {n}\b", line) for n, line in enumerate(restarts[:5], 1))
    assert re.search(r"5 restarts within 60s", restarts[5]), restarts[5]
    assert re.search(LOG + r".*netmon.*exitcode=7", lines[-1]), "the reason for the end, last"


def test_main_command_status_is_the_container_status(images: Images, podman: Podman) -> None:
    """should exit 3 when the main command exits 3, and 137 when it is SIGKILLed"""
    cases = {
        3: "exit 3",
        137: "kill -KILL $$",
    }
    for status, script in cases.items():
        # tini's way: `pyinit -- COMMAND`, no stages.
        plain = podman.start(
            images.get("example"), "--", "sh", "-c", script, options=("--entrypoint", "pyinit")
        )
        # The example's own ENTRYPOINT, tasks running beside it; PYINIT_RESTART=never: its
        # pyinit.toml restarts every task, the main command included.
        staged = podman.start(
            images.get("example"),
            "sh",
            "-c",
            f"sleep 2; {script}",
            options=("-e", "PYINIT_RESTART=never"),
        )
        assert plain.wait_exit() == status, plain.logs()
        assert staged.wait_exit() == status, staged.logs()
        staged.wait_for(r"^netlistener: " + DATE)  # the tasks did run


def test_stop_kills_a_main_command_that_ignores_term(images: Images, podman: Podman) -> None:
    """should SIGKILL a main command that ignores SIGTERM after the 5 s grace: 137, inside 10 s"""
    script = 'trap "" TERM; echo main: ready; while :; do sleep 0.2; done'
    box = podman.start(images.get("example"), *bash(script))
    box.wait_for(r"^main: ready$")
    elapsed = box.stop(10)
    assert box.wait_exit() == 137, "the main command's status: killed by SIGKILL (README)"
    assert 4 < elapsed < 10, f"podman stop took {elapsed:.1f}s: grace 5 s, then pyinit's SIGKILL"


def test_under_podman_init_pyinit_is_a_subreaper(images: Images, podman: Podman) -> None:
    """should reap orphans and forward signals under --init (catatonit as PID 1)"""
    script = """
        trap 'echo "main: got USR1"' USR1
        sh -c 'sleep 300 & sleep 0.2 &'    # two orphans: they go to pyinit, not to PID 1
        sleep 2                            # the short one has ended: it must be reaped
        echo "ps: $(ps -eo pid=,ppid=,stat=,comm= | tr -s ' ' | paste -sd ';')"
        echo "main: ready"
        while :; do sleep 0.2; done
    """
    box = podman.start(images.get("example"), *bash(script), options=("--init",))
    match, after = box.wait_for(r"^ps: (.*)$")
    procs = [line.split() for line in match.group(1).split(";")]
    by_pid = {int(pid): (int(ppid), stat, comm) for pid, ppid, stat, comm in procs}
    assert by_pid[1][2] != "pyinit", "the engine's init is PID 1"
    pyinit = [pid for pid, (_, _, comm) in by_pid.items() if comm == "pyinit"]
    assert len(pyinit) == 1, procs
    assert by_pid[pyinit[0]][0] == 1, "pyinit is PID 1's child"
    sleeps = [ppid for ppid, _, comm in by_pid.values() if comm == "sleep"]
    assert pyinit[0] in sleeps, f"the orphan `sleep 300` was reparented to pyinit: {procs}"
    assert not [p for p in procs if p[2].startswith("Z")], f"a zombie was left: {procs}"

    # catatonit forwards USR1 to pyinit, which forwards it to every task's group.
    podman.check("kill", "-s", "USR1", box.name)
    box.wait_for(r"^main: got USR1$", since=after)
    box.wait_for(LOG + r".*netlistener.*exitcode=138.*restart", since=after)
    box.stop(10)
    assert box.wait_exit() == 143
