"""TrivialRC mode (spec §4): TrivialRC v1.1.12's own test suite (docs/trc.md §9), its message
catalogue (§6-§7) and its wait-policy rules (§3.7, §4), with real processes, in both modes of
the harness (pyinit as PID 1, and as a subreaper).

pyinit is put in TrivialRC mode three ways: started under the name `trc` (as TrivialRC's tests
call `./trc`; most tests here), `--compat=trc`, and `PYINIT_COMPAT=trc`. Sleeps in TrivialRC's
scenarios are shortened (1 s -> 0.2 s, 2 s -> 0.4 s) where they only order events.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import conftest
from conftest import StartPyinit

pytestmark = pytest.mark.timeout(60)

WAYS = ("name", "option", "env")
#: `python -c` with argv[0] set, the way a `trc` console script or symlink starts pyinit.
AS_TRC = "import sys; sys.argv[0] = 'trc'; from pyinit.cli import entry; entry()"
#: TrivialRC's log line: date, time, SELF_NAME, [ns/pid], message.
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (\S+) \[(main|async|sync|halt)/(\d+)\]: "
    r"(.*)$"
)


class Done:
    """A finished pyinit: its status and output (the harness's own lines left out)."""

    def __init__(self, run: conftest.Run, status: int, elapsed: float) -> None:
        self.status = status
        self.elapsed = elapsed
        self.out = run.text("stdout")
        self.err = "".join(
            line
            for line in run.text("stderr").splitlines(keepends=True)
            if not line.startswith("ns_init: ")
        )

    def captured(self) -> str:
        """stdout as a shell's `$(...)` gives it: trailing newlines removed."""
        return self.out.rstrip("\n")

    def exitcodes(self) -> str:
        """TrivialRC's tests: `sed -n 's|^.*(exitcode=\\([0-9]*\\)):.*$|\\1|p' | tr '\\n' ' '`."""
        return "".join(
            m[1] + " " for m in re.finditer(r"^.*\(exitcode=(\d*)\):.*$", self.out, re.MULTILINE)
        )

    def log(self) -> list[tuple[str, str, int, str]]:
        """TrivialRC's log lines on stdout, as (name, ns, pid, message)."""
        return [
            (m[1], m[2], int(m[3]), m[4]) for m in map(LOG_LINE.match, self.out.splitlines()) if m
        ]


#: The `trc` fixture: trc(*args, env=..., way=..., timeout=...) -> Done.
RunTrc = Callable[..., Done]


@pytest.fixture
def trc(mode: str, run_pyinit: StartPyinit, monkeypatch: pytest.MonkeyPatch) -> RunTrc:
    """trc(*args, env=..., way="name") -> Done: pyinit in TrivialRC mode, until it exits."""

    def go(
        *args: str, env: dict[str, str] | None = None, way: str = "name", timeout: float = 20
    ) -> Done:
        env = dict(env or {})
        argv = list(args)
        start = time.monotonic()
        with monkeypatch.context() as patch:
            if way == "name":
                # conftest.command() builds the argv from PYINIT when the run starts. Such a
                # run cannot be signalled through Run.pid, which looks for `-m pyinit`.
                patch.setattr(conftest, "PYINIT", [sys.executable, "-c", AS_TRC])
            elif way == "option":
                argv.insert(0, "--compat=trc")
            else:
                env["PYINIT_COMPAT"] = "trc"
            run = run_pyinit(mode, argv, env=env)
        status = run.wait(timeout)
        if mode == "subreaper":
            assert run.left_running() == 0, run.text("stderr")  # nothing outlives pyinit
        return Done(run, status, time.monotonic() - start)

    return go


# ---------------------------------------------------------------------------------------------
# TrivialRC's tests/config-test.sh, with the trc.d it uses

CONFIG_TEST = {
    "boot.funcs": 'print() { echo -en "$@"; }\ndeclare -fx print\n',
    "boot.setvars": (
        'export MYIP="127.0.0.1"\nexport MYHOSTNAME="test-host"\nexport WAIT_TIME=0.2\n'
    ),  # 1 in TrivialRC's tests
    "async.info": 'print "host: ${MYHOSTNAME}; ip: ${MYIP}. "\n',
    "sync.sleep": "sleep ${WAIT_TIME}\n",
    "halt.goodbye": 'print "Good bye\\n"\n',
}


def test_config_test(trc: RunTrc, tmp_path: Path) -> None:
    """should run TrivialRC's config-test trc.d (exported function and variables from boot,
    async, sync, halt) and print exactly `host: test-host; ip: 127.0.0.1. Good bye`"""
    (tmp_path / "trc.d").mkdir()
    for name, text in CONFIG_TEST.items():
        (tmp_path / "trc.d" / name).write_text(text)
    done = trc("-w", str(tmp_path), env={"RC_WAIT_POLICY": "wait_all"})
    assert done.status == 0, done.err
    assert done.captured() == "host: test-host; ip: 127.0.0.1. Good bye"
    assert done.err == ""


# ---------------------------------------------------------------------------------------------
# TrivialRC's tests/exitcodes-test.sh, (a)-(h) in docs/trc.md §9

ASYNC_2_3 = ["-D", "sleep 0.2; exit 2", "-D", "sleep 0.4; exit 3"]  # sleep 1 / sleep 2 there
SYNC_0_4_5 = ["-F", "exit 0", "-F", "exit 4", "exit", "5"]


def test_exitcodes_a_catches_all_exitcodes(trc: RunTrc) -> None:
    """should, under wait_all, log every exit code in order: sync 0 4 5, async 2 3, halt 0"""
    done = trc(
        "-H",
        "exit 0",
        *ASYNC_2_3,
        *SYNC_0_4_5,
        env={"RC_VERBOSE": "true", "RC_WAIT_POLICY": "wait_all"},
    )
    assert done.exitcodes() == "0 4 5 2 3 0 "
    assert done.status == 0  # the last halt item's


def test_exitcodes_b_till_errs_in_sync(trc: RunTrc) -> None:
    """should, under wait_err, stop at the failing sync item (`exit 5` never runs) and
    terminate the async tasks: `0 4 143 143`, status 4"""
    done = trc(*ASYNC_2_3, *SYNC_0_4_5, env={"RC_VERBOSE": "true", "RC_WAIT_POLICY": "wait_err"})
    assert done.exitcodes() == "0 4 143 143 "
    assert done.status == 4


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["-H", "exit 11", "exit", "5"], 11),  # (c) halt rewrites to an error
        (["-H", "exit 0", "exit", "5"], 0),  # (d) halt rewrites to success
        (["-B", "exit 22", "-H", "exit 0", "exit", "5"], 22),  # (e) boot fails: halt skipped
    ],
    ids=["c-halt-to-err", "d-halt-to-ok", "e-fails-on-booting"],
)
def test_exitcodes_c_d_e(trc: RunTrc, args: list[str], status: int) -> None:
    """should take the last halt item's status, or a failing boot item's (halt skipped)"""
    done = trc(*args)
    assert done.status == status
    assert (done.out, done.err) == ("", "")


def test_exitcodes_f_143_on_async_any(trc: RunTrc) -> None:
    """should, under wait_any, end with 143 when an async task ends, printing only `11`"""
    done = trc(
        "-D",
        "echo 11; exit 11",
        "-D",
        "sleep 1; echo 22; exit 22",
        env={"RC_WAIT_POLICY": "wait_any"},
    )
    assert done.status == 143
    assert done.captured() == "11"
    assert done.elapsed < 10  # D2 was stopped, not waited for


def test_exitcodes_g_last_status_on_sync_any(trc: RunTrc) -> None:
    """should, under wait_any, stop after the first sync item, with its status 11"""
    done = trc(
        "-F", "echo 11; exit 11", "-F", "echo 22; exit 22", env={"RC_WAIT_POLICY": "wait_any"}
    )
    assert done.status == 11
    assert done.captured() == "11"


def test_exitcodes_h_mix_any(trc: RunTrc) -> None:
    """should, under wait_any, end with 143 when the async task ends first while the sync
    item runs, and never run the second sync item"""
    # TrivialRC answers 11 here, by timing: bash defers main's SIGTERM trap until the running
    # sync item ends, so that item's status wins (docs/trc.md §3.7). pyinit does not copy
    # that artefact (spec §4): D1 starts first and only exits, so it ends first, and an async
    # task ending a wait_any run gives 143 at once; F1 is stopped, whether or not it had
    # printed `11` yet, and F2 never runs. pyinit's answer is 143, without `22`. F1 waits a
    # moment before it ends so that "D1 ends first" holds on a loaded machine too: on a busy
    # CI host D1's exit could otherwise be noticed after F1's, and F1 would then decide.
    done = trc(
        "-D",
        "exit 33",
        "-F",
        "sleep 0.5; echo 11; exit 11",
        "-F",
        "echo 22; exit 22",
        env={"RC_WAIT_POLICY": "wait_any"},
    )
    assert done.status == 143
    assert done.captured() == ""


# ---------------------------------------------------------------------------------------------
# TrivialRC's tests/modes-test.sh


@pytest.mark.parametrize(
    ("policy", "args", "output"),
    [
        # it_async_any: the first async task to end stops the run
        ("wait_any", ["-D", "echo Hello", "-D", "sleep 1; echo World"], "Hello"),
        # it_async_all
        ("wait_all", ["-D", 'echo -n "Hello "', "-D", "sleep 0.2; echo World"], "Hello World"),
        # it_sync_any: the first sync item to end stops the run
        ("wait_any", ["-F", "echo Hello", "echo", "World"], "Hello"),
        # it_sync_all
        ("wait_all", ["-F", 'echo -n "Hello "', "-F", "echo World"], "Hello World"),
        # it_mix_all: an exported boot variable reaches an async task
        (
            "wait_all",
            [
                "-B",
                "export wait_sec=0.2",
                "-D",
                "sleep ${wait_sec}; echo Hello",
                "-F",
                'echo -n "World "',
            ],
            "World Hello",
        ),
        # it_isolated: only boot's variables reach other items (halt included)
        (
            "wait_all",
            [
                "-B",
                "export v1=A",
                "-H",
                'echo "${v1}${v2}${v3}"',
                "-D",
                "export v2=B",
                "-F",
                "export v3=C",
                "-F",
                'echo -n "${v1}${v2}${v3}"',
            ],
            "AA",
        ),
    ],
    ids=["async-any", "async-all", "sync-any", "sync-all", "mix-all", "isolated"],
)
def test_modes(trc: RunTrc, policy: str, args: list[str], output: str) -> None:
    """should print what TrivialRC's modes-test expects for each wait policy and stage mix"""
    done = trc(*args, env={"RC_WAIT_POLICY": policy})
    assert done.captured() == output, done.err


def test_modes_boot(trc: RunTrc) -> None:
    """should let a boot item read a variable an earlier boot item set (`e=11`, `exit $e`)"""
    assert trc("-B", "e=11", "-B", "exit $e").status == 11


# ---------------------------------------------------------------------------------------------
# TrivialRC's tests/verbose-test.sh, and the message catalogue


def test_verbose(trc: RunTrc, tmp_path: Path) -> None:
    """should print nothing with nothing to do, something with RC_VERBOSE=true, and a
    different number of lines with RC_VERBOSE_EXTRA=true too"""
    silent = trc("-w", str(tmp_path))
    assert silent.status == 0
    assert (silent.out, silent.err) == ("", "")
    verbose = trc("-w", str(tmp_path), env={"RC_VERBOSE": "true"})
    extra = trc("-w", str(tmp_path), env={"RC_VERBOSE": "true", "RC_VERBOSE_EXTRA": "true"})
    assert verbose.out
    assert extra.out
    assert len(verbose.out.splitlines()) != len(extra.out.splitlines())


def test_silent_without_rc_verbose(trc: RunTrc, tmp_path: Path) -> None:
    """should print nothing of its own without RC_VERBOSE=true, also when tasks fail, are
    stopped, or log with the integrated functions"""
    done = trc(
        "-w",
        str(tmp_path),
        "-D",
        "log L; warn W; sleep 30",
        "-F",
        "sleep 0.1; exit 3",
        "-H",
        "debug G; exit 4",
    )
    assert done.status == 4
    assert (done.out, done.err) == ("", "")


@pytest.mark.parametrize("way", WAYS)
def test_message_catalogue(mode: str, trc: RunTrc, tmp_path: Path, way: str) -> None:
    """should, with RC_VERBOSE=true, print TrivialRC's messages in its format on stdout,
    `YYYY-MM-DD HH:MM:SS NAME [ns/pid]: message`, NAME `trc` when started as trc, else
    `pyinit`; main's lines with pyinit's pid, each task's with its own"""
    (tmp_path / "trc.d").mkdir()
    boot = tmp_path / "trc.d" / "boot.setup"
    boot.write_text("true\n")
    halt = tmp_path / "trc.d" / "halt.cleanup"
    halt.write_text("exit 0\n")
    done = trc(
        "-w",
        str(tmp_path),
        "-D",
        "sleep 0.2; exit 3",
        "-H",
        "exit 0",
        "true",
        env={"RC_VERBOSE": "true", "RC_WAIT_POLICY": "wait_all"},
        way=way,
    )
    assert done.status == 0, done.err
    assert done.err == ""
    name = "trc" if way == "name" else "pyinit"
    log = done.log()
    assert len(log) == len(done.out.splitlines())  # every stdout line is a log line
    assert {n for n, _ns, _pid, _message in log} == {name}
    pids = {ns: pid for _n, ns, pid, _message in log}
    main_pid = next(pid for _n, ns, pid, _m in log if ns == "main")
    if mode == "pid1":
        assert main_pid == 1
    assert len({pids["async"], pids["sync"], pids["halt"], main_pid}) == 4
    assert [(ns, message) for _n, ns, _pid, message in log] == [
        ("main", "The wait policy: wait_all"),
        ("main", f"Work dir: {tmp_path}"),
        ("main", f"Launching in the boot: {boot}"),
        ("async", "Launching in the background: sleep 0.2; exit 3"),
        ("sync", "Launching in the foreground: true"),
        ("sync", "Exiting in the foreground (exitcode=0): true"),
        ("async", "Exiting in the background (exitcode=3): sleep 0.2; exit 3"),
        ("main", "Trying to terminate sub-processes..."),
        ("halt", f"Running the shutdown script: {halt}"),
        ("main", f"Exiting from the shutdown script (exitcode=0): {halt}"),
        ("halt", "Running the shutdown command: exit 0"),
        ("main", "Exiting from the shutdown command (exitcode=0): exit 0"),
        ("main", "Exited (exitcode=0)"),
    ]
    # main's lines carry pyinit's pid; a task's launch and exit lines carry the same pid
    assert {pid for _n, ns, pid, _m in log if ns == "main"} == {main_pid}
    for ns in ("async", "sync"):
        assert len({pid for _n, n, pid, _m in log if n == ns}) == 1


def test_message_catalogue_on_boot_failure(trc: RunTrc, tmp_path: Path) -> None:
    """should, when boot fails, still print the lines of TrivialRC's EXIT hook: `Trying to
    terminate sub-processes...` then `Exited (exitcode=N)` (docs/trc.md §3.1)"""
    done = trc(
        "-w",
        str(tmp_path),
        "-B",
        "exit 22",
        "-H",
        "exit 0",
        "exit",
        "5",
        env={"RC_VERBOSE": "true"},
    )
    assert done.status == 22
    assert [(ns, message) for _n, ns, _pid, message in done.log()] == [
        ("main", "The wait policy: wait_any"),
        ("main", f"Work dir: {tmp_path}"),
        ("main", "Launching in the boot: exit 22"),
        ("main", "Trying to terminate sub-processes..."),
        ("main", "Exited (exitcode=22)"),
    ]


@pytest.mark.parametrize("way", WAYS)
def test_three_ways_into_trivialrc_mode(trc: RunTrc, way: str) -> None:
    """should enter TrivialRC mode by name, --compat=trc or PYINIT_COMPAT=trc: task output
    unprefixed, nothing of pyinit's own, SELF_NAME `trc` only when started as trc"""
    done = trc("-F", 'echo "self=$SELF_NAME"; exit 3', "-F", "echo never", way=way)
    assert done.status == 3
    assert done.out == f"self={'trc' if way == 'name' else 'pyinit'}\n"
    assert done.err == ""


def test_integrated_functions_print_in_trc_format(trc: RunTrc) -> None:
    """should print `log` on stdout and `warn` on stderr, as TrivialRC lines tagged with the
    item's stage and pid, only with RC_VERBOSE=true (`debug` also needs RC_VERBOSE_EXTRA)"""
    done = trc("-F", "log to-stdout; debug not-shown; warn to-stderr", env={"RC_VERBOSE": "true"})
    assert done.status == 0
    sync_pids = {pid for _n, ns, pid, m in done.log() if ns == "sync"}
    assert len(sync_pids) == 1
    assert ("trc", "sync", *sync_pids, "to-stdout") in done.log()
    warn = LOG_LINE.match(done.err.strip())
    assert warn is not None, done.err
    assert warn.groups() == ("trc", "sync", str(*sync_pids), "to-stderr")
    assert not any(m.endswith("not-shown") for _n, _ns, _pid, m in done.log())


def test_integrated_functions_tag_lines_as_trivialrc(trc: RunTrc) -> None:
    """should tag `log` lines as TrivialRC does: a boot item's with [main/MAINPID] (boot ran in
    trc's main process), a sync item's and the main command's with [sync/their pid]"""
    done = trc(
        "-B",
        "log from-boot",
        "-B",
        "f() { log from-main; }",
        "-F",
        "log from-sync",
        "f",
        env={"RC_VERBOSE": "true", "RC_WAIT_POLICY": "wait_all"},
    )
    assert done.status == 0, done.err
    log = [(ns, pid, message) for _n, ns, pid, message in done.log()]
    main_pid = log[0][1]
    f1, main = (pid for ns, pid, m in log if m.startswith("Launching in the foreground"))
    assert ("main", main_pid, "from-boot") in log
    assert ("sync", f1, "from-sync") in log
    assert ("sync", main, "from-main") in log


# ---------------------------------------------------------------------------------------------
# The wait-policy table in TrivialRC mode (spec §4, docs/trc.md §3.7 and §4)


def test_trc_wait_any_first_foreground_item_stops_the_run(trc: RunTrc) -> None:
    """should end a wait_any run when the first foreground item ends, even with 0, and stop
    the async tasks and the later foreground items"""
    done = trc("-D", "sleep 30", "-F", "echo a", "-F", "echo b", "echo", "c")
    assert done.status == 0
    assert done.out == "a\n"
    assert done.elapsed < 10


def test_trc_wait_any_async_end_gives_143(trc: RunTrc) -> None:
    """should end a wait_any run with 143 when an async task ends, even with 0 and even while
    the main command runs (which would exit 9 on SIGTERM: trc waited for it, pyinit does not)"""
    done = trc("-D", "exit 0", "sh", "-c", "trap 'exit 9' TERM; while :; do sleep 0.05; done")
    assert done.status == 143
    assert done.elapsed < 10


@pytest.mark.parametrize(
    ("policy", "args", "status", "at_least"),
    [
        # the last-listed async task's status, though another failed first in time
        ("wait_all", ["-D", "sleep 0.1; exit 4", "-D", "sleep 0.3; exit 5", "true"], 5, 0.3),
        # an earlier async failure is not reflected
        ("wait_all", ["-D", "exit 3", "-D", "sleep 0.2"], 0, 0.2),
        # the last sync status when the last-listed async succeeded
        ("wait_all", ["-D", "sleep 0.2", "sh", "-c", "exit 6"], 6, 0.2),
        # wait_err does not act on an async failure before the end
        ("wait_err", ["-D", "exit 3", "-D", "sleep 0.3"], 0, 0.3),
    ],
    ids=["all-last-listed", "all-earlier-fails", "all-last-sync", "err-async-later"],
)
def test_trc_wait_all_and_err_take_the_last_listed_async(
    trc: RunTrc, policy: str, args: list[str], status: int, at_least: float
) -> None:
    """should end wait_all/wait_err with the last sync status, replaced by the last-listed
    async task's when that is non-zero, once every task ended"""
    done = trc(*args, env={"RC_WAIT_POLICY": policy})
    assert done.status == status
    assert done.elapsed > at_least


def test_trc_last_halt_item_replaces_the_status(trc: RunTrc) -> None:
    """should end with the last halt item's status, also 0 after a failure"""
    assert trc("-H", "exit 3", "-H", "exit 0", "sh", "-c", "exit 5").status == 0
    assert trc("-H", "exit 0", "-H", "exit 7", "true").status == 7


def test_trc_every_halt_item_reads_the_runs_status(trc: RunTrc) -> None:
    """should give every halt item the run's status as `_exit_status`, not an earlier halt
    item's, so `exit ${_exit_status}` in the last one keeps the run's status (trivialrc.md
    §3.5-§3.6; the process-manager example's halt.remove-logs relies on it)"""
    done = trc(
        "-H", "exit 3", "-H", 'echo "seen=$_exit_status"; exit $_exit_status', "sh", "-c", "exit 5"
    )
    assert done.out == "seen=5\n"
    assert done.status == 5


def test_trc_wait_forever_signal_gives_128_plus_n(mode: str, run_pyinit: StartPyinit) -> None:
    """should end a TrivialRC-mode wait_forever run on SIGTERM with 143 (trc gave 0, a bash
    artefact spec §4 does not copy), after running halt"""
    run = run_pyinit(
        mode,
        ["--compat=trc", "-D", "exit 3", "-H", "echo halt $_exit_status; exit $_exit_status"],
        env={"RC_VERBOSE": "true", "RC_WAIT_POLICY": "wait_forever"},
    )
    run.expect(r"Activated infinite loop! To stop, press <Ctrl\+C> or send SIGTERM\.\.\.", "stdout")
    run.expect(r"Exiting in the background \(exitcode=3\)", "stdout")
    run.signal(signal.SIGTERM)
    assert run.wait() == 143
    assert "halt 143\n" in run.text("stdout")


@pytest.mark.parametrize(
    ("signum", "args", "status"),
    [
        (signal.SIGQUIT, ["-D", "sleep 30"], 131),  # trc ignored SIGQUIT
        (signal.SIGTERM, ["-F", "sleep 30"], 143),  # trc waited for the running sync item to end
    ],
    ids=["QUIT", "TERM-during-sync"],
)
def test_trc_signals_are_neither_ignored_nor_deferred(
    mode: str, run_pyinit: StartPyinit, signum: int, args: list[str], status: int
) -> None:
    """should stop a TrivialRC-mode run at once on SIGQUIT or on SIGTERM during a sync item
    (bash artefacts spec §4 does not copy)"""
    run = run_pyinit(mode, ["--compat=trc", *args], env={"RC_VERBOSE": "true"})
    run.expect(r"Launching in the (back|fore)ground: sleep 30", "stdout")
    run.signal(signum)
    assert run.wait(timeout=5) == status
