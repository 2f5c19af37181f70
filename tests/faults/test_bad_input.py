"""Bad input: one clear line on stderr, status 2, nothing started, never a traceback (spec §8)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(60)

CASES = [
    (["--bogus", "--", "true"], "unknown option --bogus"),
    (["-Z", "true"], "unknown option -Z"),
    (["--stop-signal", "NOPE", "--", "true"], "unknown signal 'NOPE'"),
    (["--rewrite", "TERM:NOPE", "--", "true"], "unknown signal 'NOPE'"),
    (["--rewrite", "TERM", "--", "true"], "expected SIG:SIG"),
    (["-p", "SIGFOO", "--", "true"], "unknown signal 'SIGFOO'"),
    (["--grace", "abc", "--", "true"], "--grace: expected a number"),
    (["--grace", "-1", "--", "true"], "--grace: expected a number of seconds >= 0, got '-1'"),
    (["--timeout", "nan", "--", "true"], "--timeout: expected a number"),
    (["--max-restarts", "1.5", "--", "true"], "expected a whole number"),
    (["-e", "300", "--", "true"], "exit code 0..255"),
    (["--wait", "wait_some", "--", "true"], "wait policy (--wait): expected one of"),
    (["--restart", "sometimes", "--", "true"], "expected one of never, on-failure, always"),
    (["--log-format", "xml", "--", "true"], "--log-format"),
    (["--compat", "s6", "--", "true"], "--compat"),
    (["--grace"], "needs a value"),
    (["-w", "/nonexistent/dir", "--", "true"], "-w /nonexistent/dir: no such directory"),
    (["--", ""], "the command is an empty string"),
    ([], "nothing to run"),
    (["--"], "nothing to run"),
]


def pyinit(
    args: list[str], env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pyinit", *args],
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"), CASES, ids=[" ".join(c[0]) or "nothing" for c in CASES]
)
def test_bad_command_line(args: list[str], message: str, tmp_path: Path) -> None:
    """A bad command line should give status 2 and exactly one line naming the problem."""
    result = pyinit(args, cwd=str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert lines[0].startswith("pyinit: error: ")
    assert result.stdout == b""


ENV_CASES = [
    ({"RC_WAIT_POLICY": "bogus"}, "wait policy"),
    ({"PYINIT_GRACE": "soon"}, "PYINIT_GRACE: expected a number"),
    ({"PYINIT_STOP_SIGNAL": "SIGNOPE"}, "PYINIT_STOP_SIGNAL: unknown signal"),
    ({"PYINIT_RESTART": "maybe"}, "PYINIT_RESTART: expected one of"),
    ({"PYINIT_MAX_RESTARTS": "-3"}, "PYINIT_MAX_RESTARTS"),
    ({"PYINIT_TIMEOUT": "x"}, "PYINIT_TIMEOUT: expected a number"),
]


@pytest.mark.parametrize(("env", "message"), ENV_CASES, ids=[next(iter(c[0])) for c in ENV_CASES])
def test_bad_environment(env: dict[str, str], message: str, tmp_path: Path) -> None:
    """A bad environment variable should give status 2 and one line naming the variable."""
    marker = tmp_path / "ran"
    result = pyinit(["--", "touch", str(marker)], env=env)
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert not marker.exists()


SAME_PARSER = [  # (option, variable, pyinit.toml key, a bad value, what each source says)
    ("--grace", "PYINIT_GRACE", "grace", "-1", "expected a number of seconds >= 0, got "),
    ("--restart-delay", "PYINIT_RESTART_DELAY", "restart_delay", "-2", "expected a number of "),
    ("--max-restarts", "PYINIT_MAX_RESTARTS", "max_restarts", "-3", "expected a whole number "),
    ("--stop-signal", "PYINIT_STOP_SIGNAL", "stop_signal", "NOPE", "unknown signal 'NOPE'"),
    ("--restart", "PYINIT_RESTART", "restart", "maybe", "expected one of never, on-failure"),
]


@pytest.mark.parametrize(("option", "variable", "key", "bad", "says"), SAME_PARSER)
def test_every_source_of_a_setting_is_read_by_one_parser(
    option: str, variable: str, key: str, bad: str, says: str, tmp_path: Path
) -> None:
    """The command line, the environment and pyinit.toml should refuse the same bad value of
    a setting with the same words (values.py), each naming where it came from."""
    toml_value = bad if bad.lstrip("-").isdigit() else f'"{bad}"'
    (tmp_path / "pyinit.toml").write_text(f"[defaults]\n{key} = {toml_value}\n")
    said = []
    for args, env, where in (
        ([option, bad, "-w", "/", "--", "true"], {}, option),
        (["-w", "/", "--", "true"], {variable: bad}, variable),
        (["-w", str(tmp_path), "--", "true"], {}, f"defaults.{key}"),
    ):
        result = pyinit(args, env=env)
        lines = result.stderr.decode().splitlines()
        assert result.returncode == 2, lines
        assert len(lines) == 1, lines
        assert f"{where}: {says}" in lines[0]
        said.append(lines[0].split(f"{where}: ", 1)[1])
    assert said[0] == said[1], said  # text: the very same line
    assert said[2].startswith(says)


@pytest.mark.timeout(30)
def test_help_and_version() -> None:
    """--help and --version should print to stdout and exit 0."""
    help_run = pyinit(["--help"])
    assert help_run.returncode == 0
    assert b"Usage: pyinit" in help_run.stdout
    version = pyinit(["--version"])
    assert version.returncode == 0
    assert version.stdout.startswith(b"pyinit ")
