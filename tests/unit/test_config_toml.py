"""pyinit.toml: `[defaults]` and `[task.NAME]`, their precedence, and their errors (spec §5).

Pure tests of `config.load(argv, environ)` on a temporary work directory holding a pyinit.toml,
plus the same errors through `python -m pyinit`: status 2, one stderr line, nothing started.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pyinit import config, spawn
from pyinit.config import TaskSettings
from pyinit.errors import ConfigError
from pyinit.ready import HealthSettings, ReadyForm, parse_ready
from pyinit.supervisor import RestartRules

from conftest import ROOT

pytestmark = pytest.mark.timeout(120)

ENV = {"PATH": os.environ.get("PATH", os.defpath)}
#: Two background items, D1 and D2: the task names a [task.NAME] table may use.
ITEMS = ["-D", "exit 0", "-D", "exit 0"]

#: Every key with a value unlike its built-in default, as TOML text and as loaded.
EVERY_KEY_TOML = """\
restart = "on-failure"
restart_delay = 0.25
restart_max_delay = 7
restart_reset = 3.5
max_restarts = 9
restart_window = 42
no_restart_code = 99
stop_signal = "USR1"
grace = 2.5
signals = ["HUP", "USR2"]
signal_target = "pid"
user = "nobody"
group = "nogroup"
cwd = "/srv/somewhere"
env = { GREETING = "hello", PORT = "8080" }
prefix = "[x] "
type = "forking"
pid_file = "/run/x.pid"
ready_timeout = 12
ready_interval = 0.25
health = { check = "tcp:8081", retries = 2 }
rlimits = { nofile = 4096, core = 0 }
umask = "027"
stop_delay = 2.5
"""
#: Keys of one task only, and of the whole group only, with values unlike the defaults.
TASK_ONLY_TOML = 'ready = "listen:8080"\nafter = ["D2:done"]\non_failure = "exit"\n'
DEFAULTS_ONLY_TOML = 'main_after = "started"\nstop_order = "parallel"\n'
EVERY_KEY = TaskSettings(
    rules=RestartRules(
        restart="on-failure",
        restart_delay=0.25,
        restart_max_delay=7.0,
        restart_reset=3.5,
        max_restarts=9,
        restart_window=42.0,
        no_restart_code=99,
    ),
    stop_signal=signal.SIGUSR1,
    grace=2.5,
    signals=frozenset((signal.SIGHUP, signal.SIGUSR2)),
    signal_target="pid",
    user="nobody",
    group="nogroup",
    cwd="/srv/somewhere",
    env=(("GREETING", "hello"), ("PORT", "8080")),
    prefix="[x] ",
    type="forking",
    pid_file="/run/x.pid",
    ready_timeout=12.0,
    ready_interval=0.25,
    health=HealthSettings(ReadyForm("tcp", "tcp:8081", host="127.0.0.1", port=8081), retries=2),
    rlimits=((4, 0, 0), (7, 4096, 4096)),
    umask=0o027,
    stop_delay=2.5,
)


def load(
    workdir: Path,
    toml: str | None,
    argv: list[str] | None = None,
    environ: dict[str, str] | None = None,
) -> config.Plan:
    """config.load with `toml` as the work directory's pyinit.toml (None: no file)."""
    path = workdir / "pyinit.toml"
    if toml is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(toml)
    return config.load(["-w", str(workdir), *(argv or []), *ITEMS], {**ENV, **(environ or {})})


def test_no_file_gives_the_built_in_defaults(tmp_path: Path) -> None:
    """should use README's built-in defaults for every task when there is no pyinit.toml."""
    plan = load(tmp_path, None)
    d = plan.defaults
    assert (
        d.rules.restart,
        d.rules.restart_delay,
        d.rules.restart_max_delay,
        d.rules.restart_reset,
    ) == (
        "never",
        1.0,
        30.0,
        10.0,
    )
    assert (d.rules.max_restarts, d.rules.restart_window, d.rules.no_restart_code) == (5, 60.0, 125)
    assert (d.stop_signal, d.grace) == (signal.SIGTERM, 5.0)
    assert (d.user, d.group, d.cwd, d.env, d.prefix) == (None, None, None, (), None)
    assert plan.settings("D1") == d
    assert plan.tasks == {}
    assert not any(
        key.startswith(("defaults.", "task.")) and where != "default"
        for key, where in plan.sources.items()
    )


def test_every_key_in_defaults(tmp_path: Path) -> None:
    """should put every key of [defaults] into plan.defaults, for every task, from the file."""
    plan = load(tmp_path, "[defaults]\n" + EVERY_KEY_TOML + DEFAULTS_ONLY_TOML)
    every = EVERY_KEY.replace(main_after="started", stop_order="parallel")
    assert plan.defaults == every
    assert plan.settings("D1") == every
    assert plan.settings("D2") == every
    toml_path = str(tmp_path / "pyinit.toml")
    for key in {k for k, _ in TaskSettings().as_keys()} - config.TASK_ONLY:
        assert plan.sources[f"defaults.{key}"] == toml_path, key


def test_every_key_in_a_task_table(tmp_path: Path) -> None:
    """should put every key of [task.D1] into D1's settings only; D2 keeps the defaults."""
    plan = load(tmp_path, "[task.D1]\n" + EVERY_KEY_TOML + TASK_ONLY_TOML)
    ready = parse_ready("listen:8080", "x")
    assert plan.settings("D1") == EVERY_KEY.replace(
        ready=ready, after=(("D2", "done"),), on_failure="exit"
    )
    assert plan.settings("D2") == TaskSettings()
    assert plan.defaults == TaskSettings()
    toml_path = str(tmp_path / "pyinit.toml")
    # schedule goes with a declared task only: tests/process/test_schedules.py has it.
    for key in {k for k, _ in TaskSettings().as_keys()} - config.DEFAULTS_ONLY - {"schedule"}:
        assert plan.sources[f"task.D1.{key}"] == toml_path, key
    assert not any(key.startswith("task.D2.") for key in plan.sources)


def test_a_task_table_inherits_what_it_does_not_set(tmp_path: Path) -> None:
    """should take every key a [task.NAME] table leaves out from [defaults]."""
    plan = load(
        tmp_path,
        '[defaults]\nrestart = "always"\ngrace = 2\nmax_restarts = 7\n'
        '[task.D1]\ngrace = 0.5\nuser = "nobody"\n',
    )
    d1 = plan.settings("D1")
    assert (d1.rules.restart, d1.grace, d1.rules.max_restarts, d1.user) == (
        "always",
        0.5,
        7,
        "nobody",
    )
    d2 = plan.settings("D2")
    assert (d2.rules.restart, d2.grace, d2.rules.max_restarts, d2.user) == ("always", 2.0, 7, None)


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ('"TERM"', signal.SIGTERM),
        ('"SIGUSR1"', signal.SIGUSR1),
        ('"usr2"', signal.SIGUSR2),
        ('"INT"', signal.SIGINT),
        ('"RTMIN+2"', signal.SIGRTMIN + 2),
    ],
)
def test_stop_signal_spellings(tmp_path: Path, value: str, number: int) -> None:
    """should read a stop_signal by name, with or without SIG, in any case, and RTMIN+N."""
    plan = load(tmp_path, f"[task.D1]\nstop_signal = {value}\n")
    assert plan.settings("D1").stop_signal == number


# key, command-line option and value, environment variable and value, file value (TOML),
# and the loaded values for each.
PRECEDENCE = [
    (
        "restart",
        ["--restart", "always"],
        ("PYINIT_RESTART", "never"),
        '"on-failure"',
        "always",
        "never",
        "on-failure",
        "never",
    ),
    (
        "restart_delay",
        ["--restart-delay", "0.5"],
        ("PYINIT_RESTART_DELAY", "3"),
        "7",
        0.5,
        3.0,
        7.0,
        1.0,
    ),
    ("max_restarts", ["--max-restarts", "2"], ("PYINIT_MAX_RESTARTS", "8"), "11", 2, 8, 11, 5),
    ("grace", ["--grace", "1.5"], ("PYINIT_GRACE", "4"), "9", 1.5, 4.0, 9.0, 5.0),
    (
        "stop_signal",
        ["--stop-signal", "QUIT"],
        ("PYINIT_STOP_SIGNAL", "HUP"),
        '"USR2"',
        signal.SIGQUIT,
        signal.SIGHUP,
        signal.SIGUSR2,
        signal.SIGTERM,
    ),
]


@pytest.mark.parametrize(
    ("key", "cli", "env", "toml", "by_cli", "by_env", "by_toml", "built_in"),
    PRECEDENCE,
    ids=[p[0] for p in PRECEDENCE],
)
def test_precedence_for_the_defaults(
    tmp_path: Path,
    key: str,
    cli: list[str],
    env: tuple[str, str],
    toml: str,
    by_cli: object,
    by_env: object,
    by_toml: object,
    built_in: object,
) -> None:
    """should take each default from the command line, else the environment, else the file,
    else the built-in value, and say in plan.sources where it came from."""
    toml_path = str(tmp_path / "pyinit.toml")
    environ = dict([env])
    text = f"[defaults]\n{key} = {toml}\n"
    cases = [
        (None, [], {}, built_in, "default"),
        (text, [], {}, by_toml, toml_path),
        (text, [], environ, by_env, env[0]),
        (None, [], environ, by_env, env[0]),
        (text, cli, environ, by_cli, "command line"),
        (None, cli, {}, by_cli, "command line"),
    ]
    for toml_text, argv, environment, expected, source in cases:
        plan = load(tmp_path, toml_text, argv, environment)
        where = (toml_text is not None, argv, environment)
        assert dict(plan.defaults.as_keys())[key] == expected, where
        assert dict(plan.settings("D1").as_keys())[key] == expected, where
        assert plan.sources.get(f"defaults.{key}", "default") == source, where


@pytest.mark.parametrize(
    ("key", "cli", "env", "toml", "by_cli", "by_env", "by_toml", "built_in"),
    PRECEDENCE,
    ids=[p[0] for p in PRECEDENCE],
)
def test_a_task_table_beats_every_default(
    tmp_path: Path,
    key: str,
    cli: list[str],
    env: tuple[str, str],
    toml: str,
    by_cli: object,
    by_env: object,
    by_toml: object,
    built_in: object,
) -> None:
    """should let [task.D1] win over the command line and the environment for D1 only."""
    plan = load(tmp_path, f"[task.D1]\n{key} = {toml}\n", cli, dict([env]))
    assert dict(plan.settings("D1").as_keys())[key] == by_toml
    assert dict(plan.settings("D2").as_keys())[key] == by_cli
    assert dict(plan.defaults.as_keys())[key] == by_cli
    assert plan.sources[f"task.D1.{key}"] == str(tmp_path / "pyinit.toml")
    assert plan.sources[f"defaults.{key}"] == "command line"


def test_empty_environment_variables_are_ignored(tmp_path: Path) -> None:
    """should treat an empty PYINIT_* variable as unset, so the file's value stands."""
    plan = load(tmp_path, "[defaults]\ngrace = 3\n", environ={"PYINIT_GRACE": ""})
    assert plan.defaults.grace == 3.0


def test_task_tables_may_name_the_main_command_and_stage_files(tmp_path: Path) -> None:
    """should accept [task.NAME] for the main command's basename and a stage file's name."""
    (tmp_path / "trc.d").mkdir()
    (tmp_path / "trc.d" / "async.web").write_text("exit 0\n")
    (tmp_path / "pyinit.toml").write_text(
        '[task.web]\nrestart = "always"\n[task.sleep]\nrestart = "on-failure"\n'
    )
    plan = config.load(["-w", str(tmp_path), "--", "/bin/sleep", "1"], ENV)
    assert plan.settings("web").rules.restart == "always"
    assert plan.settings("sleep").rules.restart == "on-failure"


# --- errors -----------------------------------------------------------------------------------

#: (pyinit.toml text, what the message must name as the key, what it must say was expected)
ERRORS = [
    pytest.param("[bogus]\n", "bogus", "[defaults]", id="unknown-table"),
    pytest.param("bogus = 1\n", "bogus", "[defaults]", id="unknown-top-level-key"),
    pytest.param(
        "[defaults]\nbogus = 1\n", "defaults.bogus", "restart_delay", id="unknown-key-in-defaults"
    ),
    pytest.param(
        "[task.D1]\nrestarts = 3\n", "task.D1.restarts", "max_restarts", id="unknown-key-in-a-task"
    ),
    pytest.param(
        '[defaults]\nrestart = "sometimes"\n',
        "defaults.restart",
        "never, on-failure, always",
        id="bad-policy",
    ),
    pytest.param(
        "[defaults]\nrestart = 1\n",
        "defaults.restart",
        "expected one of never, on-failure, always, got 1",
        id="policy-not-a-string",
    ),
    pytest.param(
        '[defaults]\nstop_signal = "NOPE"\n', "defaults.stop_signal", "signal", id="bad-signal"
    ),
    pytest.param(
        '[task.D1]\nstop_signal = "RTMIN+999"\n',
        "task.D1.stop_signal",
        "signal",
        id="signal-out-of-range",
    ),
    pytest.param(
        "[defaults]\nstop_signal = true\n", "defaults.stop_signal", "signal", id="signal-a-bool"
    ),
    pytest.param('[defaults]\ngrace = "5"\n', "defaults.grace", "number", id="string-for-seconds"),
    pytest.param(
        "[defaults]\nrestart_delay = true\n",
        "defaults.restart_delay",
        "number",
        id="bool-for-seconds",
    ),
    pytest.param(
        '[defaults]\nmax_restarts = "3"\n',
        "defaults.max_restarts",
        "whole number",
        id="string-for-a-count",
    ),
    pytest.param(
        "[defaults]\nmax_restarts = true\n",
        "defaults.max_restarts",
        "whole number",
        id="bool-for-a-count",
    ),
    pytest.param(
        "[defaults]\nmax_restarts = 1.5\n",
        "defaults.max_restarts",
        "whole number",
        id="float-for-a-count",
    ),
    pytest.param(
        "[defaults]\nmax_restarts = 3.0\n",
        "defaults.max_restarts",
        "whole number",
        id="whole-float-for-a-count",
    ),
    pytest.param(
        "[defaults]\nno_restart_code = 256\n",
        "defaults.no_restart_code",
        "0..255",
        id="exit-code-too-big",
    ),
    pytest.param(
        "[defaults]\nno_restart_code = -1\n",
        "defaults.no_restart_code",
        "0..255",
        id="exit-code-negative",
    ),
    pytest.param("[defaults]\ngrace = -1\n", "defaults.grace", ">= 0", id="negative-grace"),
    pytest.param(
        "[defaults]\nrestart_delay = -0.5\n", "defaults.restart_delay", ">= 0", id="negative-delay"
    ),
    pytest.param(
        "[defaults]\nrestart_max_delay = -1\n",
        "defaults.restart_max_delay",
        ">= 0",
        id="negative-max-delay",
    ),
    pytest.param(
        "[defaults]\nrestart_reset = -1\n", "defaults.restart_reset", ">= 0", id="negative-reset"
    ),
    pytest.param(
        "[task.D1]\nrestart_window = -60\n", "task.D1.restart_window", ">= 0", id="negative-window"
    ),
    pytest.param(
        "[defaults]\nmax_restarts = -1\n", "defaults.max_restarts", "0..", id="negative-count"
    ),
    pytest.param("[defaults]\ngrace = nan\n", "defaults.grace", "number", id="nan-grace"),
    pytest.param(
        "[defaults]\nrestart_delay = inf\n", "defaults.restart_delay", "number", id="inf-delay"
    ),
    pytest.param('[defaults]\nenv = "A=1"\n', "defaults.env", "table", id="env-not-a-table"),
    pytest.param("[task.D1]\nenv = { A = true }\n", "task.D1.env", "string", id="env-value-a-bool"),
    pytest.param(
        "[task.D1]\nenv = { A = [1, 2] }\n", "task.D1.env", "string", id="env-value-an-array"
    ),
    pytest.param(
        '[task.D1]\nenv = { A = { B = "c" } }\n', "task.D1.env", "string", id="env-value-a-table"
    ),
    pytest.param("[defaults]\ncwd = 5\n", "defaults.cwd", "string", id="cwd-not-a-string"),
    pytest.param(
        "[defaults]\nprefix = false\n", "defaults.prefix", "string", id="prefix-not-a-string"
    ),
    pytest.param(
        '[defaults]\nuser = "no-such-user-pyinit"\n',
        "defaults.user",
        "no-such-user-pyinit",
        id="unknown-user",
    ),
    pytest.param(
        '[task.D1]\ngroup = "no-such-group-pyinit"\n',
        "task.D1.group",
        "no-such-group-pyinit",
        id="unknown-group",
    ),
    pytest.param("[task.D1]\nuser = 0\n", "task.D1.user", "string", id="user-not-a-string"),
    pytest.param('[task.D1]\nuser = "a\\u0000b"\n', "task.D1.user", "user", id="user-with-nul"),
    pytest.param('[task.D1]\ngroup = "\\u0000"\n', "task.D1.group", "group", id="group-with-nul"),
    pytest.param(
        '[task.D1]\nuser = "\u00b2"\n', "task.D1.user", "user", id="user-superscript-digit"
    ),
    pytest.param(
        '[task.D1]\nuser = "99999999999999999999"\n',
        "task.D1.user",
        "user",
        id="user-id-out-of-range",
    ),
    pytest.param(
        '[task.D1]\nprefix = "{bogus} "\n', "task.D1.prefix", "{name}", id="prefix-unknown-field"
    ),
    pytest.param(
        '[defaults]\nprefix = "{name "\n', "defaults.prefix", "{name}", id="prefix-lone-brace"
    ),
    pytest.param("defaults = 3\n", "defaults", "table", id="defaults-not-a-table"),
    pytest.param("task = 3\n", "task", "task.NAME", id="task-not-a-table"),
    pytest.param("[task]\nD1 = 5\n", "task.D1", "table", id="task-entry-not-a-table"),
    pytest.param("[defaults\n", "pyinit.toml", "TOML", id="invalid-toml"),
    pytest.param(
        "[defaults]\ngrace = 1\n[defaults]\n", "pyinit.toml", "TOML", id="table-declared-twice"
    ),
    pytest.param(
        '[defaults]\nrestart = "always\n', "pyinit.toml", "TOML", id="unterminated-string"
    ),
]


@pytest.mark.parametrize(("toml", "key", "expected"), ERRORS)
def test_config_errors(tmp_path: Path, toml: str, key: str, expected: str) -> None:
    """should raise ConfigError naming the file, the key and what was expected."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, toml)
    message = str(info.value)
    assert str(tmp_path / "pyinit.toml") in message
    assert key in message
    assert expected in message
    assert "\n" not in message


def pyinit(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pyinit", *args],
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(("toml", "key", "expected"), ERRORS)
def test_config_errors_through_the_command(
    tmp_path: Path, toml: str, key: str, expected: str
) -> None:
    """should exit 2 with exactly one stderr line naming the file and the key, start nothing
    and write nothing on stdout."""
    (tmp_path / "pyinit.toml").write_text(toml)
    marker = tmp_path / "ran"
    result = pyinit(
        [
            "-w",
            str(tmp_path),
            "-D",
            f"touch {marker}",
            "-D",
            f"touch {marker}",
            "--",
            "touch",
            str(marker),
        ],
        tmp_path,
    )
    lines = result.stderr.decode(errors="replace").splitlines()
    assert result.returncode == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("pyinit: error: ")
    assert str(tmp_path / "pyinit.toml") in lines[0]
    assert key in lines[0]
    assert expected in lines[0]
    assert result.stdout == b""
    assert not marker.exists()


# --- any input: ConfigError or a usable plan, never a traceback -------------------------------


def toml_text(value: object) -> str:
    """`value` as TOML (strings as basic strings, dicts as inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = "".join(
            f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F or c in '"\\' else c
            for c in value
        )
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_text(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_text(str(k))} = {toml_text(v)}" for k, v in value.items()) + "}"


KEYS = [*config.TASK_KEYS, "bogus", "Restart"]
SCALARS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "TERM",
            "SIGUSR1",
            "rtmin+3",
            "0",
            "65",
            "nobody",
            "nogroup",
            "root",
            "65534",
            "always",
            "on-failure",
            "never",
            "{name}: ",
            "{time} {pid}",
            "{",
            "}",
            "{0}",
            "/tmp",
            "\u00b2",
            "\u0663",
            "99999999999999999999",
        ]
    ),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-3, max_value=300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), SCALARS, max_size=3),
)
TABLES = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5)


def toml_document(table_name: str, table: dict[str, object]) -> str:
    return f"[{table_name}]\n" + "".join(f"{k} = {toml_text(v)}\n" for k, v in table.items())


@settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(table_name=st.sampled_from(["defaults", "task.D1", "task.D2"]), table=TABLES)
@example(table_name="task.D1", table={"user": "a\x00b"})
def test_random_tables_raise_only_config_errors(table_name: str, table: dict[str, object]) -> None:
    """should either load any table of keys and TOML values or raise ConfigError: nothing
    else, ever (a traceback in PID 1 is a crashed container)."""
    text = toml_document(table_name, table)
    tomllib.loads(text)  # the generator writes valid TOML: the keys are what is tested
    with tempfile.TemporaryDirectory() as workdir:
        (Path(workdir) / "pyinit.toml").write_text(text)
        try:
            config.load(["-w", workdir, *ITEMS], ENV)
        except ConfigError:
            pass


@settings(
    max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(table_name=st.sampled_from(["defaults", "task.D1"]), table=TABLES)
@example(table_name="defaults", table={"restart_delay": math.nan})
@example(table_name="task.D1", table={"prefix": "{bogus}"})
@example(table_name="task.D1", table={"user": "99999999999999999999"})
def test_accepted_settings_are_usable(table_name: str, table: dict[str, object]) -> None:
    """should only accept values the engine can use: finite seconds, a signal kill() takes,
    a user and group that resolve, a prefix that formats."""
    text = toml_document(table_name, table)
    with tempfile.TemporaryDirectory() as workdir:
        (Path(workdir) / "pyinit.toml").write_text(text)
        try:
            plan = config.load(["-w", workdir, *ITEMS], ENV)
        except ConfigError:
            return
    for s in (plan.defaults, plan.settings("D1")):
        for seconds in (
            s.rules.restart_delay,
            s.rules.restart_max_delay,
            s.rules.restart_reset,
            s.rules.restart_window,
            s.grace,
        ):
            assert math.isfinite(seconds)
            assert seconds >= 0
        assert s.rules.max_restarts >= 0
        code = s.rules.no_restart_code
        assert code is not None
        assert 0 <= code <= 255
        assert 1 <= s.stop_signal < signal.NSIG
        spawn.resolve_identity(s.user, s.group)
        if s.prefix is not None:
            s.prefix.format(name="web", pid=42, stage="async", time="2026-11-27 10:00:00")
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in s.env)


def test_a_table_for_a_task_not_in_this_run_is_a_warning(tmp_path: Path) -> None:
    """should, for [task.NAME] naming no task of this run (an image's pyinit.toml under
    `docker run IMAGE bash`), start anyway with a warning that suggests the close name"""
    plan = load(tmp_path, '[task.D11]\nrestart = "always"\n')
    assert len(plan.warnings) == 1
    assert "[task.D11]: no task named 'D11' in this run (did you mean 'D1'?)" in plan.warnings[0]
    assert plan.settings("D1").rules.restart == "never"


def test_task_main_names_the_main_command(tmp_path: Path) -> None:
    """should apply [task.main] to the main command whatever it is, with the command's own
    table more specific"""
    (tmp_path / "pyinit.toml").write_text(
        '[task.main]\nrestart = "always"\ngrace = 9\n[task.sleep]\ngrace = 3\n'
    )
    plan = config.load(["-w", str(tmp_path), "--", "sleep", "1"], ENV)
    assert plan.warnings == ()
    assert plan.settings("sleep").rules.restart == "always"
    assert plan.settings("sleep").grace == 3
    other = config.load(["-w", str(tmp_path), "--", "bash"], ENV)
    assert other.settings("bash").rules.restart == "always"
    assert other.settings("bash").grace == 9
    assert len(other.warnings) == 1  # [task.sleep]


@pytest.mark.parametrize(
    ("toml", "defaults_max", "d1_max"),
    [
        pytest.param("[defaults]\nrestart_delay = 60\n", 60.0, 60.0, id="max-follows-delay"),
        pytest.param("[task.D1]\nrestart_delay = 50\n", 30.0, 50.0, id="only-the-task-s"),
        pytest.param(
            "[defaults]\nrestart_delay = 50\nrestart_max_delay = 80\n"
            "[task.D1]\nrestart_delay = 60\n",
            80.0,
            80.0,
            id="a-given-max-is-kept",
        ),
    ],
)
def test_the_restart_maximum_follows_the_delay_unless_given(
    tmp_path: Path, toml: str, defaults_max: float, d1_max: float
) -> None:
    """should raise restart_max_delay to a larger restart_delay when no maximum was given."""
    plan = load(tmp_path, toml)
    assert plan.defaults.rules.restart_max_delay == defaults_max
    assert plan.settings("D1").rules.restart_max_delay == d1_max


@pytest.mark.parametrize(
    ("toml", "where"),
    [
        pytest.param("[defaults]\nrestart_delay = 5\nrestart_max_delay = 4\n", "defaults", id="d"),
        pytest.param(
            "[defaults]\nrestart_max_delay = 40\n[task.D1]\nrestart_delay = 50\n",
            "task.D1",
            id="the-default-max-under-the-task-s-delay",
        ),
    ],
)
def test_a_given_maximum_below_the_delay_is_an_error(tmp_path: Path, toml: str, where: str) -> None:
    """should refuse a restart_max_delay below the restart_delay, naming where."""
    with pytest.raises(ConfigError, match=rf"{where}: restart_max_delay \(\d+\) is below"):
        load(tmp_path, toml)


@pytest.mark.parametrize(
    ("health", "restart", "expected"),
    [
        pytest.param('action = "restart"', "", "on-failure", id="restart-asks-for-on-failure"),
        pytest.param('action = "restart"', 'restart = "always"\n', "always", id="always-stays"),
        pytest.param('action = "stop"', "", "never", id="stop-does-not"),
    ],
)
def test_the_rules_are_the_ones_the_supervisor_gets(
    tmp_path: Path, health: str, restart: str, expected: str
) -> None:
    """should build each task's RestartRules once, in config, as its TaskLife takes them."""
    toml = f'[task.D1]\n{restart}[task.D1.health]\ncheck = "tcp:127.0.0.1:9"\n{health}\n'
    plan = load(tmp_path, toml)
    assert type(plan.settings("D1").rules) is RestartRules
    assert plan.settings("D1").rules.restart == expected
    assert plan.settings("D2").rules == RestartRules()
