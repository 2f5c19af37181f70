"""Tasks declared in pyinit.toml (docs/tasks.md): `[task.NAME]` with `command` (an argv, no
shell) or `run` (bash code) and `stage`, joined with the stage files in name order; the errors
that get status 2; and the whole seed-style group in one file, run for real with redis-server,
PID 1 and subreaper.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit import config, workdir
from pyinit.errors import ConfigError

from conftest import StartPyinit, need, port_for, pyinit_once

pytestmark = pytest.mark.timeout(60)


def load(workdir: Path, toml: str, *args: str) -> config.Plan:
    (workdir / "pyinit.toml").write_text(toml)
    return config.load(["-w", str(workdir), *args], {"PATH": os.environ["PATH"]})


def stage_file(workdir: Path, name: str, body: str = "sleep 1\n") -> None:
    (workdir / "trc.d").mkdir(exist_ok=True)
    (workdir / "trc.d" / name).write_text(body)


# -- the plan (pure) --------------------------------------------------------------------------


def test_command_and_run_tasks_join_the_stage_files_in_name_order(tmp_path: Path) -> None:
    stage_file(tmp_path, "async.alpha")
    stage_file(tmp_path, "async.gamma")
    plan = load(
        tmp_path,
        '[task.beta]\ncommand = ["redis-server", "--save", ""]\nrestart = "always"\n'
        '[task.zeta]\nrun = "exec worker"\n'
        '[task.migrate]\nrun = "./migrate"\nstage = "boot"\n'
        '[task.bye]\ncommand = ["logger", "bye"]\nstage = "halt"\n',
        "-D",
        "echo from the command line",
    )
    assert [i.name for i in plan.async_items] == ["alpha", "beta", "gamma", "zeta", "D1"]
    beta = plan.async_items[1]
    assert (beta.how, beta.argv, beta.stage) == (
        workdir.EXEC,
        ("redis-server", "--save", ""),
        "async",
    )
    assert beta.origin == f"{tmp_path}/pyinit.toml [task.beta]"
    assert plan.settings("beta").rules.restart == "always"  # every task key applies
    zeta = plan.async_items[3]
    assert (zeta.how, zeta.argv) == (workdir.BASH_CODE, ("exec worker",))
    assert [i.name for i in plan.boot] == ["migrate"]
    assert [i.name for i in plan.halt] == ["bye"]
    assert plan.async_items[0].origin == ""  # a stage file says where it is by its path


def test_a_table_without_command_or_run_only_tunes(tmp_path: Path) -> None:
    stage_file(tmp_path, "async.web")
    plan = load(tmp_path, '[task.web]\nrestart = "always"\n')
    assert [i.name for i in plan.async_items] == ["web"]
    assert plan.settings("web").rules.restart == "always"


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ('[task.x]\ncommand = ["a"]\nrun = "b"\n', "task.x: command and run both given"),
        ('[task.x]\nstage = "boot"\n', "task.x.stage: goes with command"),
        ('[task.x]\nrun = "b"\nstage = "main"\n', "task.x.stage: expected one of boot"),
        ("[task.x]\ncommand = []\n", "task.x.command: expected an argv"),
        ('[task.x]\ncommand = "redis-server"\n', "task.x.command: expected an argv"),
        ('[task.x]\ncommand = ["", "a"]\n', "task.x.command: expected an argv"),
        ("[task.x]\nrun = 5\n", "task.x.run: expected bash code"),
        ('[task.x]\nrun = "  "\n', "task.x.run: expected bash code"),
        ('[task.main]\ncommand = ["a"]\n', "[task.main] names the main command"),
        ('[defaults]\ncommand = ["a"]\n', "defaults.command: unknown key"),
        ('[task.web]\ncommand = ["a"]\n', "is already: rename one"),
        ('[task.web]\nrun = "a"\nstage = "halt"\n', "is already: rename one"),
    ],
)
def test_bad_declarations(tmp_path: Path, toml: str, says: str) -> None:
    stage_file(tmp_path, "async.web")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, toml)
    assert says in str(caught.value)


def test_a_name_taken_twice_names_both(tmp_path: Path) -> None:
    """should name the table and the stage file, and be status 2 with one line."""
    stage_file(tmp_path, "async.web")
    (tmp_path / "pyinit.toml").write_text('[task.web]\ncommand = ["nginx"]\n')
    done = pyinit_once("-w", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr == (
        f"pyinit: error: {tmp_path}/pyinit.toml: task.web declares a task (command or run) "
        f"that the stage file {tmp_path}/trc.d/async.web is already: rename one\n"
    )


TABLE_VALUES = st.none() | st.booleans() | st.integers() | st.text(max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["command", "run", "stage", "restart"]),
        TABLE_VALUES | st.lists(TABLE_VALUES, max_size=3),
        max_size=4,
    ),
    st.sampled_from(["x", "main", "web"]),
)
def test_fuzz_declarations(table: dict[str, object], name: str) -> None:
    """should give an Item, None, or one ConfigError line, never another exception."""
    try:
        item = config._declared("/w/pyinit.toml", name, table)
    except ConfigError as e:
        message = str(e)
    else:
        message = ""
    assert "\n" not in message
    if not message and item is not None:
        assert item.stage in workdir.STAGES
        assert item.argv


def test_check_says_where_a_task_came_from(tmp_path: Path) -> None:
    (tmp_path / "pyinit.toml").write_text('[task.cache]\ncommand = ["redis-server"]\n')
    done = pyinit_once("--check", "-w", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (
        f"  cache: redis-server (an argv, no shell, declared in {tmp_path}/pyinit.toml "
        "[task.cache], restart never)" in done.stdout
    ), done.stdout


# -- a whole group in one file, for real --------------------------------------------------------


def test_the_whole_group_in_one_pyinit_toml(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """No trc.d/: redis-server as an argv task that says when it is ready, a bash worker that
    waits for it, a boot step and a halt step, all from pyinit.toml; the main command (redis-
    cli) waits for the worker to have written; every task's lines carry its name."""
    redis = need("redis-server", "redis-server")
    cli = need("redis-cli", "redis-tools")
    port = port_for(mode, 69)
    (tmp_path / "pyinit.toml").write_text(
        f'[task.cache]\ncommand = ["{redis}", "--port", "{port}", "--save", "", '
        f'"--dir", "{tmp_path}"]\nready = "tcp:{port}"\n'
        f'[task.warm]\nrun = "{cli} -p {port} set greeting hello"\nafter = ["cache"]\n'
        f'[task.prepare]\nrun = "echo preparing"\nstage = "boot"\n'
        f'[task.goodbye]\ncommand = ["echo", "bye from halt"]\nstage = "halt"\n'
        '[task.main]\nafter = ["warm:done"]\n'
    )
    run = run_pyinit(
        mode,
        ["-v", "-w", str(tmp_path), "--", cli, "-p", str(port), "get", "greeting"],
    )
    run.expect(r"^prepare: preparing", stream="stdout")
    run.expect(r"^cache: .*Ready to accept connections", stream="stdout")
    run.expect(r"^warm: OK", stream="stdout")
    run.expect(r"^hello$", stream="stdout")
    run.expect(r"Launching in the background: .*redis-server --port")
    assert run.wait() == 0, run.text()  # wait_any: the main command's status
    run.expect(r"^goodbye: bye from halt", stream="stdout")
