"""Fault injection, stubborn and sneaky tasks: processes that ignore SIGTERM, leave
their process group or session, double-fork into daemons, outlive the task that started them,
or keep forking under a new pid. None of them may outlive pyinit, as PID 1 and as subreaper.

How "none outlives pyinit" is seen in both modes: a halt item runs after the stop and the
sweep, and lists every process of the PID namespace but itself, pyinit and the namespace's
init (`survivors N [...]`); in subreaper mode ns_init also reports what was left after pyinit
exited (`run.left_running()`). Figures go to `FIGURE` lines for the README table.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Run, child, figure, survivors_item

pytestmark = pytest.mark.timeout(60)

PY = sys.executable
GRACE = 1

#: A classic daemon: fork, setsid, fork again; the grandchild ignores SIGTERM and lives on in
#: a session of its own, re-parented to pyinit; the task itself stays.
DAEMON = r"""
import os, signal, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.write(1, b"daemon up\n")
        while True:
            time.sleep(1)
    os._exit(0)
os.wait()
while True:
    time.sleep(1)
"""

#: A child that moves itself to a process group of its own (setpgid) and ignores SIGTERM.
NEW_GROUP = r"""
import os, signal, time
if os.fork() == 0:
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.write(1, b"regrouped\n")
    while True:
        time.sleep(1)
while True:
    time.sleep(1)
"""


SNEAKY = {
    # name: (bash code of a -D item, the line it prints once its trick is done)
    "stubborn": ("trap '' TERM; echo stubborn; while :; do sleep 0.05 || :; done", "stubborn"),
    "daemon": (f"exec {PY} -c '{DAEMON}'", "daemon up"),
    "setsid": (
        "setsid sh -c \"trap '' TERM; echo escaped; while :; do sleep 0.05; done\" & wait",
        "escaped",
    ),
    "setpgid": (f"exec {PY} -c '{NEW_GROUP}'", "regrouped"),
    "orphans": (
        "sleep 1000 & (trap '' TERM; exec sleep 1000) & setsid sleep 1000 & "
        "echo left-children; exit 0",
        "left-children",
    ),
}


def start(mode: str, args: list[str], **kwargs: Any) -> Run:
    return Run(mode, args, **kwargs)


def sneaky_args(tmp_path: Path, names: list[str]) -> tuple[list[str], dict[str, str]]:
    """-D items for `names`, a halt item counting survivors, and the D-name of each."""
    args: list[str] = []
    tasks = {}
    for number, name in enumerate(names, 1):
        if name == "orphans":  # a sync item: its exit must not end a wait_any run
            args += ["-F", SNEAKY[name][0]]
            tasks["F1"] = name
        else:
            args += ["-D", SNEAKY[name][0]]
            tasks[f"D{number}"] = name
    return [*args, *survivors_item(tmp_path)], tasks


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["sigterm", "main-exits"])
def test_sneaky_tasks_do_not_outlive_pyinit(mode: str, tmp_path: Path, ending: str) -> None:
    """should, whether the run ends by SIGTERM or because the main command exited, stop a task
    that ignores SIGTERM, a double-forked daemon in its own session, a setsid'd process, a
    child that changed its process group and the children of a task that already exited,
    within grace + kill wait, leaving no process behind."""
    names = list(SNEAKY)
    args, tasks = sneaky_args(tmp_path, names)
    main = ["--", PY, "-c", "import sys; sys.stdin.readline(); sys.exit(6)"]
    run = start(
        mode,
        [
            "-v",
            "--grace",
            str(GRACE),
            "--wait",
            "wait_forever" if ending == "sigterm" else "wait_any",
            *args,
            *main,
        ],
        stdin=subprocess.PIPE,
    )
    try:
        for prefix, name in tasks.items():
            run.expect(f"^{prefix}: {SNEAKY[name][1]}$", "stdout")
        stopped = time.monotonic()
        if ending == "sigterm":
            run.signal(signal.SIGTERM)
        else:
            assert run.proc.stdin is not None
            run.proc.stdin.write(b"exit\n")
            run.proc.stdin.flush()
        code = run.wait(30)
        took = time.monotonic() - stopped
    finally:
        run.kill()
    # SIGTERM: the main command gets it and dies of it (143); otherwise its own status.
    assert code == (143 if ending == "sigterm" else 6), run.text()
    assert run.survivors() == 0
    if mode == "subreaper":
        assert run.left_running() == 0, run.text()
    figure(
        f"sneaky-{ending}",
        mode,
        tasks=len(names),
        survivors=0,
        left_running=run.left_running() if mode == "subreaper" else 0,
        stop_seconds=f"{took:.2f}",
        grace=GRACE,
    )
    # Grace for the stubborn task, then the sweep's own TERM-then-KILL: not much more.
    assert took < GRACE + 4, f"stopping took {took:.2f}s"


@pytest.mark.slow
def test_a_process_that_keeps_forking_does_not_outlive_pyinit(mode: str, tmp_path: Path) -> None:
    """should stop a process that forks a new generation of itself as fast as it can (a new
    pid each time, SIGTERM ignored): no generation may survive pyinit."""
    runner = child("fork_runner.py")
    run = start(
        mode,
        [
            "--grace",
            str(GRACE),
            "--wait",
            "wait_forever",
            "-D",
            f"exec {PY} {runner}",
            *survivors_item(tmp_path),
        ],
    )
    try:
        run.expect("^D1: generation 200$", "stdout")
        stopped = time.monotonic()
        run.signal(signal.SIGTERM)
        code = run.wait(30)
        took = time.monotonic() - stopped
    finally:
        run.kill()
    assert code == 143, run.text()
    assert run.survivors() == 0
    if mode == "subreaper":
        assert run.left_running() == 0, run.text()
    figure("fork-runner", mode, survivors=0, stop_seconds=f"{took:.2f}", grace=GRACE)
    assert took < GRACE + 4
