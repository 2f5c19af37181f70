"""Stages, wait policies, halt and boot state with real processes, in pyinit's mode (spec §2-§4).

Every process test runs twice (the `mode` fixture: pyinit as PID 1, and as a subreaper). Items
leave marker files in a work dir the test makes, so "nothing else ran" is checked on disk, and
tests wait for output lines or pyinit's exit, never for a fixed time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT, Run, StartPyinit

pytestmark = pytest.mark.timeout(60)

#: pyinit's own log line (TrivialRC's format): date, time, name, [ns/pid], message.
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (\S+) \[(main|async|sync|halt)/(\d+)\]: "
    r"(.*)$",
    re.MULTILINE,
)


class Done:
    """A finished pyinit: its status, output, and how long it ran."""

    def __init__(self, run: Run, status: int, elapsed: float) -> None:
        self.run = run
        self.status = status
        self.elapsed = elapsed
        self.out = run.text("stdout")
        self.err = run.text("stderr")

    def log(self, ns: str | None = None) -> list[tuple[str, int, str]]:
        """pyinit's own lines on stderr as (ns, pid, message), optionally of one ns only."""
        return [
            (m[2], int(m[3]), m[4]) for m in LOG_LINE.finditer(self.err) if ns is None or m[2] == ns
        ]

    def messages(self) -> list[str]:
        return [message for _ns, _pid, message in self.log()]


#: The `pyinit` fixture: pyinit(*args, env=..., timeout=...) -> Done.
RunPyinit = Callable[..., Done]


@pytest.fixture
def pyinit(mode: str, run_pyinit: StartPyinit) -> RunPyinit:
    """pyinit(*args, env=...) -> Done: run pyinit in this test's mode until it exits."""

    def go(*args: str, env: dict[str, str] | None = None, timeout: float = 20) -> Done:
        start = time.monotonic()
        run = run_pyinit(mode, list(args), env=env)
        status = run.wait(timeout)
        done = Done(run, status, time.monotonic() - start)
        if mode == "subreaper":
            assert run.left_running() == 0, done.err  # nothing outlives pyinit
        return done

    return go


class Workdir:
    """The work dir of one test: stage files in, marker files out."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "trc.d").mkdir(parents=True)

    def __str__(self) -> str:
        return str(self.path)

    def file(self, name: str, text: str, mode: int = 0o644) -> Path:
        path = self.path / name
        path.write_text(text)
        path.chmod(mode)
        return path

    def marks(self) -> set[str]:
        """The names of the marker files items left (see MARK)."""
        return {p.name.removeprefix("mark.") for p in self.path.glob("mark.*")}

    def lines(self, name: str) -> list[str]:
        path = self.path / name
        return path.read_text().splitlines() if path.exists() else []


#: Shell code that leaves a marker file in the work dir: `MARK.format("name")`.
MARK = 'touch "$RC_WORK_DIR/mark.{}"'
#: A main command that leaves the marker `main`.
MAIN_MARK = ["sh", "-c", MARK.format("main")]


@pytest.fixture
def wd(tmp_path: Path) -> Workdir:
    return Workdir(tmp_path / "wd")


def plain(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """pyinit without a PID namespace, for runs that must not start anything."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT)} if env is None else env
    return subprocess.run(
        [sys.executable, "-m", "pyinit", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=30,
        check=False,
    )


# ---------------------------------------------------------------------------------------------
# The wait-policy table (spec §4), pyinit's mode


@pytest.mark.parametrize(
    ("args", "status", "marks"),
    [
        # an async task ends: the run ends at once with its status (the main command is stopped)
        (["-D", "sleep 0.2; exit 3", "--", "sleep", "30"], 3, set()),
        # ... a successful one too, but a main command pyinit stopped never counts as a success:
        # the status is its own after the stop (README's wait-policy table)
        (["-D", "true", "--", "sleep", "30"], 143, set()),
        # the foreground sequence ends: its last item's status
        (["-D", "sleep 30", "-F", MARK.format("F1"), "--", "sh", "-c", "exit 5"], 5, {"F1"}),
        # a foreground item fails: the later ones never run
        (["-D", "sleep 30", "-F", "exit 4", "-F", MARK.format("F2"), "--", *MAIN_MARK], 4, set()),
    ],
    ids=["async-fails", "async-succeeds", "last-foreground", "foreground-fails"],
)
def test_wait_any(
    pyinit: RunPyinit, wd: Workdir, args: list[str], status: int, marks: set[str]
) -> None:
    """should end a wait_any run as soon as any task ends or the foreground sequence ends (its
    last item, or a failing one), with that task's status"""
    done = pyinit("-w", str(wd), *args)
    assert done.status == status, done.err
    assert done.elapsed < 10
    assert wd.marks() == marks


def test_a_task_being_restarted_has_not_ended(pyinit: RunPyinit, wd: Workdir) -> None:
    """should end a wait_any run only when a failing async task has no restart left (ended
    for good), with its status"""
    done = pyinit(
        "--restart",
        "on-failure",
        "--restart-delay",
        "0.01",
        "--max-restarts",
        "2",
        "-w",
        str(wd),
        "-D",
        'echo run >> "$RC_WORK_DIR/runs"; exit 3',
        "--",
        "sleep",
        "30",
    )
    assert done.status == 3, done.err
    assert wd.lines("runs") == ["run"] * 3
    assert done.elapsed < 10


def test_wait_err_only_logs_successes(pyinit: RunPyinit, wd: Workdir) -> None:
    """should, under wait_err, only log a task that succeeds and end at the first failure,
    with its status"""
    done = pyinit(
        "-v",
        "--wait",
        "wait_err",
        "-w",
        str(wd),
        "-D",
        "exit 0",
        "-D",
        "sleep 0.3; exit 4",
        "--",
        "sleep",
        "30",
    )
    assert done.status == 4, done.err
    assert 0.3 < done.elapsed < 10
    assert "Exiting in the background (exitcode=0): exit 0" in done.messages()
    assert "Exiting in the background (exitcode=4): sleep 0.3; exit 4" in done.messages()


def test_wait_err_ends_at_a_failing_foreground_item(pyinit: RunPyinit, wd: Workdir) -> None:
    """should, under wait_err, end at a failing foreground item and skip the later ones"""
    done = pyinit(
        "--wait", "wait_err", "-w", str(wd), "-D", "sleep 30", "-F", "exit 6", "--", *MAIN_MARK
    )
    assert done.status == 6, done.err
    assert done.elapsed < 10
    assert wd.marks() == set()


def test_wait_err_with_every_task_succeeding(pyinit: RunPyinit, wd: Workdir) -> None:
    """should, under wait_err, wait for every task and end with 0 when none failed"""
    done = pyinit(
        "--wait", "wait_err", "-w", str(wd), "-D", "sleep 0.3", "-F", "true", "--", "true"
    )
    assert done.status == 0, done.err
    assert done.elapsed > 0.3


def test_wait_all_takes_the_first_failure_in_time(pyinit: RunPyinit, wd: Workdir) -> None:
    """should, under wait_all, wait for every task and end with the first failure in time
    (here the first-listed task's; TrivialRC would take the last-listed one's, 5)"""
    done = pyinit(
        "--wait",
        "wait_all",
        "-w",
        str(wd),
        "-D",
        "sleep 0.1; exit 4",
        "-D",
        "sleep 0.5; exit 5",
        "--",
        "true",
    )
    assert done.status == 4, done.err
    assert done.elapsed > 0.5


def test_wait_all_runs_every_foreground_item(pyinit: RunPyinit, wd: Workdir) -> None:
    """should, under wait_all, go on with the foreground sequence after a failing item and
    end with that failure"""
    done = pyinit(
        "--wait",
        "wait_all",
        "-w",
        str(wd),
        "-F",
        "exit 3",
        "-F",
        MARK.format("F2"),
        "--",
        *MAIN_MARK,
    )
    assert done.status == 3, done.err
    assert wd.marks() == {"F2", "main"}


def test_wait_all_with_no_failure(pyinit: RunPyinit, wd: Workdir) -> None:
    """should, under wait_all, end with 0 once every task ended and none failed"""
    done = pyinit("--wait", "wait_all", "-w", str(wd), "-D", "sleep 0.2", "--", "true")
    assert done.status == 0, done.err
    assert done.elapsed > 0.2


def test_wait_forever_ends_only_by_a_signal(
    mode: str, run_pyinit: StartPyinit, wd: Workdir
) -> None:
    """should keep a wait_forever run going after every task ended (even failed), until a
    signal: then 128+N, as no foreground item runs"""
    run = run_pyinit(
        mode,
        [
            "-v",
            "--wait",
            "wait_forever",
            "-w",
            str(wd),
            "-D",
            "exit 3",
            "-F",
            "exit 4",
            "--",
            "true",
        ],
    )
    run.expect(r"Activated infinite loop")
    run.expect(r"Exiting in the background \(exitcode=3\)")
    assert run.proc.poll() is None
    run.signal(signal.SIGTERM)
    assert run.wait() == 143


def test_wait_forever_signal_during_the_main_command(
    mode: str, run_pyinit: StartPyinit, wd: Workdir
) -> None:
    """should, when a stop signal comes while the main command runs, give the command the
    signal and end with the status it chooses"""
    run = run_pyinit(
        mode,
        [
            "--wait",
            "wait_forever",
            "-w",
            str(wd),
            "--",
            "sh",
            "-c",
            "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done",
        ],
    )
    run.expect("^ready", "stdout")
    run.signal(signal.SIGTERM)
    assert run.wait() == 7


# ---------------------------------------------------------------------------------------------
# Boot failure and halt


def test_boot_failure_skips_everything_else(pyinit: RunPyinit, wd: Workdir) -> None:
    """should, when a boot item fails, skip the later boot items, async, sync, the main command
    and halt, and end with the boot item's status"""
    wd.file("trc.boot.1", MARK.format("boot1"))
    wd.file("trc.d/boot.2", "true\nexit 7\n")
    wd.file("trc.d/boot.3", MARK.format("boot3"))
    for stage in ("async", "sync", "halt"):
        wd.file(f"trc.d/{stage}.x", MARK.format(stage))
    done = pyinit(
        "-w",
        str(wd),
        "-B",
        MARK.format("B1"),
        "-D",
        MARK.format("D1"),
        "-F",
        MARK.format("F1"),
        "-H",
        MARK.format("H1"),
        "--",
        *MAIN_MARK,
    )
    assert done.status == 7, done.err
    assert wd.marks() == {"boot1"}


def test_a_failing_command_fails_a_boot_item(pyinit: RunPyinit, wd: Workdir) -> None:
    """should end boot at a failing command inside a boot item (bash `set -e`, as TrivialRC),
    and at `err`, with status 1"""
    wd.file("trc.d/boot.a", f"false\n{MARK.format('after-false')}\n")
    assert pyinit("-w", str(wd), "--", "true").status == 1
    (wd.path / "trc.d/boot.a").unlink()
    done = pyinit("-w", str(wd), "-B", 'err "no config"', "-B", MARK.format("B2"), "--", "true")
    assert done.status == 1
    assert "no config" in done.messages()
    assert wd.marks() == set()


HALT_RECORD = 'echo "$_exit_status" >> "$RC_WORK_DIR/halt"'


@pytest.mark.parametrize(
    ("main", "halts", "status", "seen"),
    [
        ("exit 0", [HALT_RECORD], 0, ["0"]),
        ("exit 3", [HALT_RECORD], 3, ["3"]),
        # a failing halt item turns 0 into its status; the next one reads the new status
        ("exit 0", [HALT_RECORD, "exit 4", HALT_RECORD], 4, ["0", "4"]),
        # ... but never hides an earlier failure
        ("exit 3", ["exit 4", HALT_RECORD], 3, ["3"]),
    ],
    ids=["ok", "failed", "halt-fails", "earlier-failure-stands"],
)
def test_halt_items_and_exit_status(
    pyinit: RunPyinit, wd: Workdir, main: str, halts: list[str], status: int, seen: list[str]
) -> None:
    """should run the halt items in order after the run, each seeing `_exit_status`; a failing
    halt item turns 0 into its status but never hides an earlier failure"""
    args = [arg for code in halts for arg in ("-H", code)]
    done = pyinit("-w", str(wd), *args, "--", "sh", "-c", main)
    assert done.status == status, done.err
    assert wd.lines("halt") == seen


def test_halt_runs_after_sigterm(mode: str, run_pyinit: StartPyinit, wd: Workdir) -> None:
    """should run the halt items after a SIGTERM stopped the run, with `_exit_status` 143"""
    run = run_pyinit(mode, ["-v", "-w", str(wd), "-D", "sleep 30", "-H", HALT_RECORD])
    run.expect("Launching in the background: sleep 30")
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    assert wd.lines("halt") == ["143"]


def test_sigterm_during_halt_reaches_the_halt_item(
    mode: str, run_pyinit: StartPyinit, wd: Workdir
) -> None:
    """should, when SIGTERM comes while halt runs after a normal end, deliver it to the halt
    item running (no signal is swallowed), then run every later halt item; a halt item that
    dies of it fails (143), which turns the run's 0 into 143 as any halt failure does
    (TrivialRC skipped the rest of halt there)"""
    run = run_pyinit(
        mode,
        [
            "-v",
            "-w",
            str(wd),
            "-H",
            'touch "$RC_WORK_DIR/started"; sleep 30',
            "-H",
            HALT_RECORD,
            "--",
            "true",
        ],
    )
    run.expect("Running the shutdown command: touch")
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    assert wd.lines("halt") == ["143"]
    run.expect("while stopping: forwarded SIGTERM to H1")


def test_sigterm_during_boot_stops_it_at_once(
    mode: str, run_pyinit: StartPyinit, wd: Workdir, tmp_path: Path
) -> None:
    """should stop a running boot item at once on SIGTERM (TrivialRC deferred the signal until
    it ended: a bash artefact spec §4 does not copy), skip everything else, halt included, and
    end with 143"""
    run = run_pyinit(
        mode,
        [
            "-v",
            "-w",
            str(wd),
            "-B",
            "sleep 30",
            "-B",
            MARK.format("B2"),
            "-H",
            MARK.format("H1"),
            "--",
            *MAIN_MARK,
        ],
        env={"TMPDIR": str(tmp_path)},
    )  # its boot state, if it gets killed
    run.expect("Launching in the boot: sleep 30")
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=3) == 143  # at once: the boot item got the signal
    assert wd.marks() == set()


# ---------------------------------------------------------------------------------------------
# Which files run, in which order

ORDER_RECORD = 'echo "$PYINIT_TASK" >> "$RC_WORK_DIR/order"\n'
SKIPPED = [
    "sync.x~",
    "sync.x.swp",
    "sync.x.bak",
    "sync.x.orig",
    "sync.x.rej",
    "sync.x.dpkg-new",
    "sync.x.rpmnew",
]


def test_file_order_and_skipped_files(pyinit: RunPyinit, wd: Workdir) -> None:
    """should run stage files in bytewise path order (trc.boot.* before trc.d/boot.*; sync.1
    sync.10 sync.2; uppercase first) and skip directories, hidden files, leftovers and
    dangling symlinks, each with a `skipping` debug line under -vv"""
    for name in (
        "trc.boot.z",
        "trc.d/boot.a",
        "trc.d/sync.1",
        "trc.d/sync.10",
        "trc.d/sync.2",
        "trc.d/sync.B",
        "trc.d/sync._z",
        "trc.d/sync.a",
        "trc.sync.0",
        *(f"trc.d/{n}" for n in SKIPPED),
        "trc.d/.sync.hidden",
    ):
        wd.file(name, ORDER_RECORD)
    (wd.path / "trc.d/sync.dir").mkdir()
    (wd.path / "trc.d/sync.dangling").symlink_to(wd.path / "nowhere")
    done = pyinit("-vv", "--wait", "wait_all", "-w", str(wd))
    assert done.status == 0, done.err
    assert wd.lines("order") == ["z", "a", "1", "10", "2", "B", "_z", "a", "0"]
    skipping = {
        os.path.basename(m.split(": ")[0].removeprefix(" - skipping "))
        for m in done.messages()
        if m.startswith(" - skipping ")
    }
    # (.sync.hidden does not even match the stage pattern: a line for it is optional)
    assert skipping - {".sync.hidden"} == {*SKIPPED, "sync.dir", "sync.dangling"}


# ---------------------------------------------------------------------------------------------
# How an item runs, and what it sees


def test_sourced_and_executed_items(pyinit: RunPyinit, wd: Workdir) -> None:
    """should source a non-executable file in bash inside a function (`local` and `return`
    work, the integrated functions exist), execute an executable file directly, and run a
    non-executable file whose #! names python with python"""
    wd.file(
        "trc.d/sync.1sourced",
        (
            "local x=local-ok\n"
            'echo "x=$x zero=$0"\n'
            "type say log warn err debug run >/dev/null && echo functions-ok\n"
            "return 0\n"
            "echo after-return\n"
        ),
    )
    wd.file(
        "trc.d/sync.2exec",
        ('#!/bin/sh\necho "zero=$0"\ncommand -v log >/dev/null || echo no-functions\n'),
        0o755,
    )
    wd.file(
        "trc.d/sync.3python", ("#!/usr/bin/env python3\nimport sys\nprint('python', sys.argv[0])\n")
    )
    done = pyinit("--wait", "wait_all", "-w", str(wd))
    assert done.status == 0, done.err
    assert done.out.splitlines() == [
        "1sourced: x=local-ok zero=pyinit",
        "1sourced: functions-ok",
        f"2exec: zero={wd.path}/trc.d/sync.2exec",
        "2exec: no-functions",
        f"3python: python {wd.path}/trc.d/sync.3python",
    ]


BOOT_STATE = """\
plain=not-exported
export EXPORTED=exported
greet() { echo "hello $1"; }
cd "$RC_WORK_DIR/sub"
"""
SEES = 'echo "$PYINIT_STAGE: $plain $EXPORTED $(greet "$PYINIT_TASK") $PWD"'


def test_boot_state_reaches_later_items(pyinit: RunPyinit, wd: Workdir) -> None:
    """should let later items see what a bash boot item did: sourced items its variables
    (exported or not) and functions, every item its `cd`, executables its exported variables"""
    (wd.path / "sub").mkdir()
    wd.file("trc.d/boot.state", BOOT_STATE)
    wd.file("trc.d/async.a", SEES + "\n")
    wd.file("trc.d/sync.s", SEES + "\n")
    wd.file("trc.d/halt.h", SEES + "\n")
    wd.file("trc.d/sync.t", '#!/bin/sh\necho "exec: [$plain] $EXPORTED $(pwd)"\n', 0o755)
    done = pyinit("--wait", "wait_all", "-w", str(wd), "-F", SEES)
    assert done.status == 0, done.err
    sub = wd.path / "sub"
    assert sorted(done.out.splitlines()) == sorted(
        [
            f"a: async: not-exported exported hello a {sub}",
            f"s: sync: not-exported exported hello s {sub}",
            f"t: exec: [] exported {sub}",
            f"F1: sync: not-exported exported hello F1 {sub}",
            f"h: halt: not-exported exported hello h {sub}",
        ]
    )


def test_boot_state_of_concurrent_runs_stays_apart(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """should keep each run's boot state to itself, also for two pyinits with the same pid
    (each PID 1, or 2, of its own namespace) on one /tmp, one ending while the other runs"""
    a, b = Workdir(tmp_path / "a"), Workdir(tmp_path / "b")
    run_a = run_pyinit(
        mode,
        [
            "--wait",
            "wait_all",
            "-w",
            str(a),
            "-B",
            "who=A",
            "-F",
            "sleep 0.6",
            "-F",
            'echo "who=$who"',
        ],
    )
    run_b = run_pyinit(
        mode,
        ["--wait", "wait_all", "-w", str(b), "-B", "sleep 0.2; who=B", "-F", 'echo "who=$who"'],
    )
    assert (run_a.wait(), run_b.wait()) == (0, 0)
    assert (run_a.text("stdout"), run_b.text("stdout")) == ("F2: who=A\n", "F1: who=B\n")


def test_boot_state_without_a_usable_tmpdir(pyinit: RunPyinit, wd: Workdir) -> None:
    """should carry boot state when TMPDIR names a directory that cannot be used, instead of
    failing every bash boot item"""
    done = pyinit(
        "--wait",
        "wait_all",
        "-w",
        str(wd),
        "-B",
        "who=boot",
        "-F",
        'echo "$who"',
        env={"TMPDIR": str(wd.path / "missing")},
    )
    assert done.status == 0, done.err
    assert done.out == "F1: boot\n"


def test_boot_set_adds_an_item(pyinit: RunPyinit, wd: Workdir) -> None:
    """should read the command line again after a boot item's `pyinit_set_args "$@" -F CODE`,
    so the added item runs (TrivialRC's self-configuring example, docs/boot-state.md)"""
    wd.file("trc.boot.self-conf", "pyinit_set_args \"$@\" -F 'echo appended'\n")
    done = pyinit("--wait", "wait_all", "-w", str(wd), "-F", "echo given")
    assert done.status == 0, done.err
    assert done.out.splitlines() == ["F1: given", "F2: appended"]


def test_boot_set_with_a_bad_option_is_one_error_line(pyinit: RunPyinit, wd: Workdir) -> None:
    """should, when a boot item's `pyinit_set_args` makes the command line invalid, end with
    status 2 and one error line naming the problem, never a Python traceback, and run nothing
    more"""
    wd.file("trc.boot.self-conf", 'pyinit_set_args "$@" --wait wait_sometimes\n')
    done = pyinit("-w", str(wd), "-F", MARK.format("F1"))
    assert "Traceback" not in done.err
    assert done.status == 2
    assert len([line for line in done.err.splitlines() if "wait_sometimes" in line]) == 1
    assert wd.marks() == set()


def test_executable_file_without_shebang_runs(pyinit: RunPyinit, wd: Workdir) -> None:
    """should run an executable stage file that has no #! line (TrivialRC sourced every file, so
    its trc.d directories have them; a shell would run one with sh) instead of failing with 126"""
    wd.file("trc.d/sync.legacy", f"{MARK.format('legacy')}\necho legacy-ran\n", 0o755)
    done = pyinit("-w", str(wd))
    assert done.status == 0, done.err
    assert wd.marks() == {"legacy"}
    assert "legacy: legacy-ran" in done.out.splitlines()


VARS = (
    'echo "$PYINIT_STAGE $PYINIT_TASK $SELF_NAME $RC_WAIT_POLICY $RC_WORK_DIR '
    '${_exit_status-unset} $MAINPID $(tr "\\0" " " < /proc/$MAINPID/cmdline)" >> '
    '"$RC_WORK_DIR/vars"'
)


def test_task_variables(mode: str, pyinit: RunPyinit, wd: Workdir) -> None:
    """should give every task MAINPID (pyinit's pid), SELF_NAME, RC_WAIT_POLICY, RC_WORK_DIR,
    PYINIT_TASK and PYINIT_STAGE, and halt items `_exit_status`"""
    wd.file("trc.d/async.web", VARS + "\n")
    done = pyinit(
        "--wait", "wait_all", "-w", str(wd), "-F", VARS, "-H", VARS, "--", "sh", "-c", VARS
    )
    assert done.status == 0, done.err
    rows = [line.split(maxsplit=7) for line in wd.lines("vars")]
    assert {row[0]: row[1] for row in rows} == {
        "async": "web",
        "sync": "F1",
        "main": "sh",
        "halt": "H1",
    }
    for stage, _task, self_name, policy, workdir, exit_status, mainpid, cmdline in rows:
        assert (self_name, policy, workdir) == ("pyinit", "wait_all", str(wd))
        assert exit_status == ("0" if stage == "halt" else "unset")
        assert "-m pyinit" in cmdline  # MAINPID is pyinit's own pid ...
        assert (mainpid == "1") == (mode == "pid1")  # ... which is 1 when pyinit is PID 1


def test_integrated_log_functions(pyinit: RunPyinit, wd: Workdir) -> None:
    """should print `log`/`warn`/`err`/`debug` from an item as pyinit log lines tagged
    [async/PID] on stderr, not in the task's output; `err` ends the item with 1"""
    done = pyinit(
        "-vv",
        "-w",
        str(wd),
        "-D",
        "log L-msg; warn W-msg; debug G-msg; echo out-line; err E-msg; echo never",
        "--",
        "sleep",
        "30",
    )
    assert done.status == 1, done.err
    launched = [
        pid
        for ns, pid, message in done.log("async")
        if message.startswith("Launching in the background")
    ]
    assert len(launched) == 1
    for message in ("L-msg", "W-msg", " - G-msg", "E-msg"):
        assert ("async", launched[0], message) in done.log(), done.err
    assert "D1: out-line" in done.out.splitlines()
    task_lines = [line for line in (done.out + done.err).splitlines() if line.startswith("D1: ")]
    assert task_lines == ["D1: out-line"]  # never, and no message, in the task's output
    assert (
        "async",
        launched[0],
        "Exiting in the background (exitcode=1): log L-msg; warn W-msg; debug G-msg; "
        "echo out-line; err E-msg; echo never",
    ) in done.log()


def test_debug_lines_only_with_vv(pyinit: RunPyinit, wd: Workdir) -> None:
    """should hide an item's `debug` lines at the default verbosity but show `warn` and `err`"""
    done = pyinit("-w", str(wd), "-F", "warn W-msg; debug G-msg; err E-msg")
    assert done.status == 1
    messages = done.messages()
    assert "W-msg" in messages
    assert "E-msg" in messages
    assert not any("G-msg" in m for m in messages)


# ---------------------------------------------------------------------------------------------
# --check and bad input: nothing starts


def test_check_prints_the_plan_and_runs_nothing(wd: Workdir) -> None:
    """should, with --check, print stages, task names, policies and where settings came from,
    exit 0 and run nothing"""
    wd.file("trc.d/boot.setup", MARK.format("boot"))
    wd.file("trc.d/async.web", f"#!/bin/sh\n{MARK.format('web')}\n", 0o755)
    wd.file("trc.d/sync.py", "#!/usr/bin/env python3\nopen('mark.py', 'w')\n")
    result = plain(
        "--check",
        "--wait",
        "wait_err",
        "-w",
        str(wd),
        "-D",
        MARK.format("D1"),
        "-H",
        MARK.format("H1"),
        "--",
        "touch",
        str(wd.path / "mark.main"),
    )
    assert result.returncode == 0, result.stderr
    assert wd.marks() == set()
    out = result.stdout
    for expected in (
        "boot:",
        f"  setup: {wd.path}/trc.d/boot.setup (sourced by bash)\n",
        "async:",
        f"  web: {wd.path}/trc.d/async.web (executed, restart never)\n",
        f"  D1: {MARK.format('D1')} (bash code, restart never)\n",
        "sync:",
        "  py: ",
        "(run by /usr/bin/env python3, restart never)\n",
        "main:",
        "  touch: touch ",
        "halt:",
        "  H1: ",
        "wait policy: wait_err (command line)\n",
    ):
        assert expected in out, out
    assert out.index("boot:") < out.index("async:") < out.index("main:") < out.index("halt:")


def test_check_reports_a_problem_in_one_line(wd: Workdir) -> None:
    """should, with --check, exit 2 with one line when the plan has a problem"""
    result = plain("--check", "-w", str(wd), "--wait", "wait_sometimes", "--", "true")
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "wait policy" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("case", ["missing-workdir", "unknown-policy", "env-policy", "no-bash"])
def test_bad_input_starts_nothing(wd: Workdir, case: str) -> None:
    """should refuse a missing -w directory, an unknown wait policy and a bash item without
    bash with status 2 and one line, before anything starts"""
    wd.file("trc.d/boot.b", MARK.format("boot"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workdir = str(wd)
    extra: list[str] = []
    if case == "missing-workdir":
        workdir = str(wd.path / "missing")
    elif case == "unknown-policy":
        extra = ["--wait", "wait_some"]
    elif case == "env-policy":
        env["RC_WAIT_POLICY"] = "WAIT_ALL"
    else:
        env = {"PATH": "/nonexistent", "PYTHONPATH": str(ROOT)}
    result = plain(
        *extra,
        "-w",
        workdir,
        "-D",
        MARK.format("D1"),
        "--",
        "/usr/bin/touch",
        str(wd.path / "mark.main"),
        env=env,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("pyinit: error: ")
    assert "Traceback" not in result.stderr
    assert wd.marks() == set()
