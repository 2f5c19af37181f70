"""Procfiles (pyinit/procfile.py, docs/procfile.md): parsed as honcho parses them, the errors
that get status 2, and one Procfile run by honcho itself and by pyinit, PID 1 and subreaper:
the same tasks, the same environment from `.env`, the same PORT values.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit import config, procfile
from pyinit.errors import ConfigError

from conftest import StartPyinit, assert_usage_error, pyinit_once

pytestmark = pytest.mark.timeout(60)
#: Each task prints what it got, then lives a little (honcho stops all when one ends).
PROCFILE = """\
# the web and two workers
web: echo "web port=$PORT greeting=$GREETING path=$APP_PATH"; sleep 2
worker_1: echo "worker_1 port=$PORT greeting=$GREETING x=$X"; sleep 2

clock-2: echo "clock-2 port=$PORT quoted=$QUOTED"; sleep 2
"""
DOTENV = """\
GREETING="hello world"
APP_PATH=/srv/app:/opt/x
X=a\\nb
QUOTED='single quoted'
# a comment
export SKIPPED=1
not a line
"""


def test_parse_lines_names_and_errors() -> None:
    got = procfile.parse(PROCFILE, "Procfile")
    assert [(name, line) for name, _, line in got] == [("web", 2), ("worker_1", 3), ("clock-2", 5)]
    for text, says in [
        ("web python app.py\n", "Procfile:1: expected NAME: COMMAND"),
        ("web:\n", "Procfile:1: expected NAME: COMMAND"),
        ("we b: x\n", "Procfile:1: expected NAME: COMMAND"),
        ("web: a\nweb: b\n", "Procfile:2: web is already line 1"),
        ("# nothing\n", "Procfile: no NAME: COMMAND line"),
    ]:
        with pytest.raises(ConfigError) as caught:
            procfile.parse(text, "Procfile")
        assert says in str(caught.value)


def test_env_and_ports_as_honcho() -> None:
    env = procfile.parse_env(DOTENV)
    assert env == {
        "GREETING": "hello world",
        "APP_PATH": "/srv/app:/opt/x",
        "X": "anb",
        "QUOTED": "single quoted",
    }
    assert procfile.base_port({}, None, None) == 5000
    assert procfile.base_port({}, "7000", "6000") == 7000
    assert procfile.base_port({}, None, "6000") == 6000
    assert procfile.base_port({"PORT": "8000"}, "7000", "6000") == 8000
    with pytest.raises(ConfigError, match="--port: expected a TCP port"):
        procfile.base_port({}, "http", None)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_procfiles_and_env(text: str) -> None:
    """any text gives tasks or one ConfigError line; any .env gives a dict."""
    try:
        tasks = procfile.parse(text, "Procfile")
    except ConfigError as e:
        message = str(e)
    else:
        message = ""
        assert all(name and command for name, command, _ in tasks)
    assert "\n" not in message
    assert isinstance(procfile.parse_env(text), dict)


def load(workdir: Path, *args: str, environ: dict[str, str] | None = None) -> config.Plan:
    return config.load(["-w", str(workdir), *args], {"PATH": os.environ["PATH"], **(environ or {})})


def test_the_work_dirs_procfile_counts_only_without_stage_files(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: serve\n")
    plan = load(tmp_path)
    assert [(i.name, i.argv) for i in plan.async_items] == [("web", ("sh", "-c", "serve"))]
    assert dict(plan.settings("web").env)["PORT"] == "5000"
    assert plan.prefix == "{name:<3} | "
    (tmp_path / "trc.d").mkdir()
    (tmp_path / "trc.d" / "async.other").write_text("sleep 1\n")
    assert [i.name for i in load(tmp_path).async_items] == ["other"]
    explicit = load(tmp_path, "--procfile", str(tmp_path / "Procfile"), "--port", "9000")
    assert [i.name for i in explicit.async_items] == ["other", "web"]
    assert dict(explicit.settings("web").env)["PORT"] == "9000"


def test_a_task_table_tunes_a_procfile_task(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: serve\n")
    (tmp_path / ".env").write_text("A=1\nB=2\n")
    (tmp_path / "pyinit.toml").write_text(
        '[defaults]\nenv = { A = "defaults" }\n'
        '[task.web]\nrestart = "always"\nenv = { B = "table" }\n'
    )
    plan = load(tmp_path)
    web = plan.settings("web")
    assert web.rules.restart == "always"
    assert dict(web.env) == {"A": "1", "B": "table", "PORT": "5000"}


@pytest.mark.parametrize(
    ("setup", "args", "says"),
    [
        ({"Procfile": "web serve\n"}, [], "Procfile:1: expected NAME: COMMAND"),
        ({}, ["--procfile", "nope"], "--procfile "),
        (
            {"Procfile": "web: a\n", "trc.d/async.web": "x\n"},
            ["--procfile", "Procfile"],
            "web is already a task",
        ),
        ({"Procfile": "web: a\n"}, ["--port", "99999"], "--port: expected a TCP port"),
    ],
)
def test_bad_procfiles_are_status_2(
    tmp_path: Path, setup: dict[str, str], args: list[str], says: str
) -> None:
    for name, text in setup.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    done = pyinit_once("-w", str(tmp_path), *args, cwd=tmp_path)
    assert_usage_error(done, says)


# -- against honcho itself ---------------------------------------------------------------------


def what_each_got(lines: list[str], separator: str) -> dict[str, str]:
    """{task: the line it printed}, from `NAME | line` (honcho: `TIME NAME.1 | line`)."""
    got = {}
    for line in lines:
        _, sep, text = line.partition(separator)
        if sep and re.match(r"^\S+ port=", text.strip()):
            got[text.split()[0]] = text.strip()
    return got


def test_the_same_as_honcho(mode: str, run_pyinit: StartPyinit, tmp_path: Path) -> None:
    honcho = shutil.which("honcho", path=str(Path(sys.executable).parent)) or shutil.which("honcho")
    if honcho is None:
        pytest.skip("needs honcho (pip install honcho; scripts/setup installs it)")
    (tmp_path / "Procfile").write_text(PROCFILE)
    (tmp_path / ".env").write_text(DOTENV)
    env = {k: v for k, v in os.environ.items() if k != "PORT"}
    theirs = subprocess.run(
        [honcho, "start", "--no-colour"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    expected = what_each_got(theirs.stdout.splitlines(), " | ")
    assert set(expected) == {"web", "worker_1", "clock-2"}, theirs.stdout
    run = run_pyinit(mode, ["-w", str(tmp_path)], env={"PORT": ""})
    assert run.wait() == 0, run.text()
    lines = [line.decode() for line in run.lines["stdout"]]
    assert what_each_got(lines, " | ") == expected
    # The columns line up as honcho's do: every name padded to the longest.
    starts = {line.index(" | ") for line in lines if " | " in line}
    assert starts == {len("worker_1")}, lines
