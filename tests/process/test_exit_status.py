"""pyinit exits with the main command's status, as tini does (spec §8)."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Run, StartPyinit

pytestmark = pytest.mark.timeout(30)

#: Signals whose default action ends a process (all but CHLD, CONT, URG, WINCH, STOP, TSTP,
#: TTIN, TTOU). KILL cannot be caught, which is the point: the status still says 137.
DEADLY = [
    s
    for s in range(1, 32)
    if s
    not in (
        signal.SIGCHLD,
        signal.SIGCONT,
        signal.SIGURG,
        signal.SIGWINCH,
        signal.SIGSTOP,
        signal.SIGTSTP,
        signal.SIGTTIN,
        signal.SIGTTOU,
    )
] + [signal.SIGRTMIN, signal.SIGRTMAX]


def statuses(mode: str, commands: list[list[str]]) -> list[int]:
    """Run pyinit once per command (4 at a time) and collect its exit statuses."""

    def one(cmd: list[str]) -> int:
        run = Run(mode, ["-q", "--", *cmd])
        try:
            return run.wait(60)
        finally:
            run.kill()

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, commands))


@pytest.mark.timeout(300)
def test_every_exit_code(mode: str) -> None:
    """pyinit should exit with each of the 256 exit codes its command can exit with."""
    got = statuses(mode, [["sh", "-c", f"exit {code}"] for code in range(256)])
    assert got == list(range(256))


@pytest.mark.timeout(120)
def test_killed_by_signal_is_128_plus_n(mode: str) -> None:
    """A command killed by signal N should make pyinit exit 128+N."""
    got = statuses(mode, [["sh", "-c", f"kill -{n} $$; sleep 5"] for n in DEADLY])
    assert got == [128 + n for n in DEADLY]


def test_not_found_is_127_and_not_executable_is_126(mode: str, run_pyinit: StartPyinit) -> None:
    """A missing command should give 127 and a non-executable one 126, each with a line saying
    why, as a shell and tini do."""
    missing = run_pyinit(mode, ["--", "/nonexistent/program"])
    assert missing.wait() == 127
    assert "No such file or directory" in missing.text()
    not_exec = run_pyinit(mode, ["--", "/etc"])
    assert not_exec.wait() == 126
    assert "Permission denied" in not_exec.text()


def test_remap_exit_code_to_zero(mode: str, run_pyinit: StartPyinit) -> None:
    """tini's -e CODE should turn the expected status CODE into 0, and only that one."""
    assert run_pyinit(mode, ["-e", "143", "--", "sh", "-c", "kill $$"]).wait() == 0
    assert run_pyinit(mode, ["-e", "3", "-e", "4", "--", "sh", "-c", "exit 4"]).wait() == 0
    assert run_pyinit(mode, ["-e", "3", "--", "sh", "-c", "exit 5"]).wait() == 5


def test_command_options_are_not_taken_for_pyinit(mode: str, run_pyinit: StartPyinit) -> None:
    """Parsing should stop at the command: `pyinit ls -l` runs `ls -l` (tini prints its licence)."""
    run = run_pyinit(mode, ["sh", "-c", "echo $0 $1", "-l", "x"])
    assert run.wait() == 0
    assert run.text("stdout") == "-l x\n"
