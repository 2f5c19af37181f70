"""`--check` for people (README "Checking a setup"): every setting with its source, the stop
budget, env values masked unless `--show-env`, and warnings (exit 1) for what is allowed but
likely a mistake; errors exit 2 with one line. pyinit runs nothing here: no namespace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyinit import config

from conftest import ROOT

pytestmark = pytest.mark.timeout(60)


def check(
    workdir: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pyinit", "--check", "-w", str(workdir), *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=workdir,
        timeout=30,
        check=False,
    )


def warnings(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("pyinit: warning: ")]


def test_every_setting_with_its_source(tmp_path: Path) -> None:
    """should show the timeout, the halt timeout, the log format, the verbosity, the prefix
    and the stop budget, each with where it came from."""
    (tmp_path / "trc.d").mkdir()
    (tmp_path / "trc.d" / "halt.bye").write_text("echo bye\n")
    done = check(
        tmp_path,
        "--halt-timeout",
        "2",
        "--prefix",
        "[{name}] ",
        "-v",
        "--",
        "true",
        env={"PYINIT_LOG_FORMAT": "json", "PYINIT_TIMEOUT": "60"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for expected in (
        "timeout: 60s (PYINIT_TIMEOUT)",
        "halt timeout: 2s for each halt item (command line)",
        "log format: json (PYINIT_LOG_FORMAT), verbosity info (command line)",
        "prefix: '[{name}] ' (command line); the main command's output as it is",
        "stop budget: up to 7s (grace 5s + 1 halt item of up to 2s)",
    ):
        assert expected in lines, done.stdout


def test_stop_budget_over_docker_s_10s_is_a_warning(tmp_path: Path) -> None:
    """should warn (exit 1) when the longest grace plus the halt items exceed the 10 s
    `docker stop` waits, and not with the defaults (5 s + one 4 s halt item = 9 s)."""
    (tmp_path / "trc.d").mkdir()
    (tmp_path / "trc.d" / "halt.bye").write_text("echo bye\n")
    assert check(tmp_path, "-D", "sleep 1", "--", "true").returncode == 0
    (tmp_path / "pyinit.toml").write_text("[task.D1]\ngrace = 8\n")
    done = check(tmp_path, "-D", "sleep 1", "--", "true")
    assert done.returncode == 1
    [line] = warnings(done)
    assert "up to 12s (grace 8s + 1 halt item of up to 4s)" in line
    assert "docker stop" in line


def test_lone_command_has_no_budget_warning(tmp_path: Path) -> None:
    """should not warn about a lone command's unlimited stop: tini's rule, chosen on purpose."""
    done = check(tmp_path, "--", "sleep", "1")
    assert done.returncode == 0, done.stderr
    assert (
        "stop budget: as long as the tasks take (a grace is inf: never SIGKILL)"
        in done.stdout.splitlines()
    )


def test_show_env(tmp_path: Path) -> None:
    """should mask env values by default and show them with --show-env, which needs --check
    (alone: one error line, status 2)."""
    (tmp_path / "pyinit.toml").write_text('[task.main]\nenv = { TOKEN = "hunter2", N = 3 }\n')
    masked = check(tmp_path, "--", "sh")
    assert "env={TOKEN=***, N=***}" in masked.stdout
    assert "hunter2" not in masked.stdout
    shown = check(tmp_path, "--show-env", "--", "sh")
    assert "env={TOKEN=hunter2, N=3}" in shown.stdout
    alone = subprocess.run(
        [sys.executable, "-m", "pyinit", "--show-env", "--", "true"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
    )
    assert alone.returncode == 2
    assert alone.stderr.count("\n") == 1
    assert "--show-env goes with --check" in alone.stderr


def test_missing_cwd_is_a_warning(tmp_path: Path) -> None:
    """should warn about a cwd that does not exist, naming the key (a boot item may still
    make it: not an error), and say nothing about one that exists."""
    (tmp_path / "srv").mkdir()
    (tmp_path / "pyinit.toml").write_text(
        '[defaults]\ncwd = "srv"\n[task.D1]\ncwd = "/nonexistent/web"\n'
    )
    done = check(tmp_path, "-D", "true", "-D", "true", "--", "true")
    assert done.returncode == 1
    [line] = warnings(done)
    assert "task.D1.cwd: /nonexistent/web: no such directory" in line


def test_relative_cwd_is_from_the_start_directory(tmp_path: Path) -> None:
    """should take a relative cwd from the directory pyinit was started in, as every other
    relative path (pyinit itself moves to / once it runs)."""
    (tmp_path / "pyinit.toml").write_text('[task.D1]\ncwd = "srv/web"\n')
    plan = config.load(
        ["-w", str(tmp_path), "-D", "true"], {"PATH": os.environ["PATH"]}, start_dir="/opt/app"
    )
    assert plan.settings("D1").cwd == "/opt/app/srv/web"


def test_missing_rc_work_dir_is_a_warning() -> None:
    """should warn (exit 1) when RC_WORK_DIR names no directory; `-w` with one is an error."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "RC_WORK_DIR": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-m", "pyinit", "--check", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    [line] = warnings(done)
    assert "RC_WORK_DIR=/nonexistent: no such directory" in line
    with_w = subprocess.run(
        [sys.executable, "-m", "pyinit", "--check", "-w", "/nonexistent", "--", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert with_w.returncode == 2
    assert "-w /nonexistent: no such directory" in with_w.stderr


@pytest.mark.parametrize("name", ["async-web", "web.async", "Async.web", "asyncweb"])
def test_file_matching_no_stage_is_a_warning(tmp_path: Path, name: str) -> None:
    """should name a trc.d file that looks like a stage file but matches no stage, with the
    name that would run; a README in trc.d is no mistake."""
    (tmp_path / "trc.d").mkdir()
    (tmp_path / "trc.d" / name).write_text("echo web\n")
    (tmp_path / "trc.d" / "README").write_text("notes\n")
    done = check(tmp_path, "--", "true")
    assert done.returncode == 1
    [line] = warnings(done)
    assert f"trc.d/{name}: matches no stage, so it does not run" in line
    assert "did you mean async.web?" in line


def test_file_beside_trc_d_matching_no_stage(tmp_path: Path) -> None:
    """should do the same for `trc.Async.web` in the work dir itself."""
    (tmp_path / "trc.Async.web").write_text("echo web\n")
    done = check(tmp_path, "--", "true")
    [line] = warnings(done)
    assert "did you mean trc.async.web?" in line


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('restart = "always"\n', "restart at the top level: task settings go in [defaults]"),
        ('colour = "blue"\n', "unknown key colour at the top level"),
        ("[restart]\nx = 1\n", "unknown table [restart]"),
        ("[task.main]\nenv = { PORT = true }\n", "task.main.env.PORT: expected a string, got True"),
        ('[task.main]\nenv = "PORT=1"\n', "task.main.env: expected a table of strings"),
    ],
)
def test_toml_mistakes_are_one_line(tmp_path: Path, toml: str, expected: str) -> None:
    """should refuse a top-level task setting saying where it belongs, and an env value that
    is not a string naming its key: status 2, one line, no traceback."""
    (tmp_path / "pyinit.toml").write_text(toml)
    done = check(tmp_path, "--", "true")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_numbers_in_env_are_taken(tmp_path: Path) -> None:
    """should take `env = { PORT = 8080 }` as the string 8080, as compose does."""
    (tmp_path / "pyinit.toml").write_text("[task.D1]\nenv = { PORT = 8080 }\n")
    plan = config.load(["-w", str(tmp_path), "-D", "true"], {"PATH": os.environ["PATH"]})
    assert plan.settings("D1").env == (("PORT", "8080"),)
