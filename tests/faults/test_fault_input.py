"""Fault injection, bad input and security.

Fuzzed with hypothesis: the command line, the environment (PYINIT_*, RC_*) and `pyinit.toml`
(structured documents, random text, random bytes). In-process `config.load` takes thousands
of examples: it must give a Plan or a PyinitError whose message is one line naming the problem
— never any other exception (a traceback in PID 1 is a crashed container). A smaller number of
the malformed ones then go through a real `python -m pyinit`: status 2, exactly that one line on
stderr, nothing on stdout, nothing started (marker files).

Then odd stage file names (spaces, newlines, leading dashes, non-UTF-8 bytes, shell syntax,
symlinks to nowhere, directories): skipped or run once each, never split or given to a shell.
And security: stage files and pyinit.toml another user could change are refused; arguments and
environment never pass through a shell unless the item is shell code; `user=` also drops the
supplementary groups.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pyinit import cli, config, options
from pyinit.errors import ConfigError, PyinitError

from conftest import ROOT, StartPyinit, command

pytestmark = pytest.mark.timeout(30)

PY = sys.executable
PATH_ENV = {"PATH": os.environ.get("PATH", os.defpath)}
#: The environment a real run gets: this one without any pyinit setting of its own.
CLEAN_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith(("PYINIT_", "RC_", "NOTIFY_SOCKET"))
}
LINE_BREAKS = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def fuzz(examples: int) -> settings:
    """Reproducible (derandomized) runs of `examples` examples, however slow each one is."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# -- strategies --------------------------------------------------------------------------------

#: Text a command line or an environment can hold (no NUL: execve cannot pass one).
TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=12)
NASTY = st.sampled_from(
    [
        "",
        " ",
        "-",
        "--",
        "---",
        "-1",
        "0",
        "1",
        "1.5",
        "1e999",
        "-inf",
        "inf",
        "nan",
        "NaN",
        "1_000",
        "0x10",
        " 3 ",
        "\uff19",
        "\u0663",
        "99999999999999999999",
        "TERM",
        "SIGTERM",
        "sigkill",
        "RTMIN+3",
        "RTMAX-1",
        "RTMIN+99",
        "65",
        "KILL",
        "STOP",
        "TERM:0",
        "TERM:QUIT",
        "15:3",
        ":",
        ",",
        "TERM:",
        ":TERM",
        "HUP,USR1:USR2",
        "wait_any",
        "wait_all",
        "wait_forever",
        "on-failure",
        "always",
        "never",
        "json",
        "text",
        "xml",
        "trc",
        "none",
        "{name}: ",
        "{time}",
        "{",
        "}",
        "{0}",
        "{bogus}",
        "{name!r}",
        "%s",
        "a\nb",
        "new\nline",
        "\r",
        "\x1b[31m",
        "\x85",
        "\u2028",
        "/",
        "/nonexistent",
        ".",
        "..",
        "$(touch pwned)",
        "`id`",
        "; rm -rf /",
        "true",
        "false",
        "exit 3",
    ]
)
OPTION = st.sampled_from(
    [f"--{name}" for name in options.LONG]
    + [f"-{c}" for c in options.SHORT]
    + [
        "--bogus",
        "-Z",
        "--grace=",
        "--wait=bad",
        "--check=1",
        "-vvv",
        "-e",
        "-e300",
        "-wx",
        "--rewrite=TERM",
        "--timeout=-1",
        "--restart-delay=nan",
        "--max-restarts=1.5",
    ]
)
WORD = st.one_of(OPTION, NASTY, TEXT)
#: A value per environment variable pyinit reads.
ENV_NAMES = sorted({*options.ENV.values(), "RC_VERBOSE", "RC_VERBOSE_EXTRA"})
ENVIRONMENTS = st.dictionaries(st.sampled_from(ENV_NAMES), st.one_of(NASTY, TEXT), max_size=4)


#: What the fuzzers tried, for the README's figures (printed once the module is done).
COUNTS = dict.fromkeys(
    [
        "command lines",
        "environments",
        "toml documents",
        "toml bytes",
        "errors",
        "real runs refused",
    ],
    0,
)


@pytest.fixture(scope="module", autouse=True)
def _figures() -> Iterator[None]:
    yield
    if any(COUNTS.values()):
        print(
            "\nFIGURE bad-input [fuzz] "
            + " ".join(f"{k.replace(' ', '_')}={v}" for k, v in COUNTS.items())
            + " tracebacks=0"
        )


def one_line(message: str) -> None:
    """The message cli prints: one line (no line break of any kind), not empty."""
    assert message.strip(), "an empty error message"
    assert not LINE_BREAKS.search(message), f"more than one line: {message!r}"


def load(argv: list[str], env: dict[str, str]) -> config.Plan | PyinitError:
    """config.load, its error returned rather than raised; anything else fails the test."""
    try:
        return config.load(argv, env)
    except PyinitError as e:
        return e


def pyinit(
    args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    full = {**CLEAN_ENV, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [PY, "-m", "pyinit", *args], capture_output=True, env=full, cwd=cwd, timeout=30, check=False
    )


def assert_refused(result: subprocess.CompletedProcess[bytes], *markers: Path) -> str:
    """Status 2, exactly one `pyinit: error:` line, no stdout, nothing started."""
    err = result.stderr.decode(errors="replace")
    lines = err.splitlines()
    assert result.returncode == 2, err
    assert len(lines) == 1, lines
    assert lines[0].startswith("pyinit: error: "), lines
    assert "Traceback" not in err
    assert result.stdout == b""
    for marker in markers:
        assert not marker.exists(), f"{marker.name} was started"
    return lines[0]


# -- the command line --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("empty")


@pytest.mark.slow
@pytest.mark.timeout(300)
@fuzz(3000)
@given(words=st.lists(WORD, max_size=8), tail=st.sampled_from([[], ["--", "true"], ["true"]]))
@example(words=["--bogus\nforged line"], tail=[])
@example(words=["-w", "no\nsuch"], tail=["true"])
@example(words=["--stop-signal", "\u2028"], tail=["true"])
def test_fuzz_command_line(empty_dir: Path, words: list[str], tail: list[str]) -> None:
    """should turn any command line into a plan or one error line, nothing else, ever."""
    env = {**PATH_ENV, "RC_WORK_DIR": str(empty_dir)}
    COUNTS["command lines"] += 1
    outcome = load([*words, *tail], env)
    if isinstance(outcome, PyinitError):
        COUNTS["errors"] += 1
        one_line(str(outcome))


@pytest.mark.slow
@pytest.mark.timeout(300)
@fuzz(2000)
@given(environ=ENVIRONMENTS)
@example(environ={"PYINIT_GRACE": "1\n2"})
@example(environ={"RC_WAIT_POLICY": "wait_any\rforged"})
def test_fuzz_environment(empty_dir: Path, environ: dict[str, str]) -> None:
    """should turn any PYINIT_*/RC_* environment into a plan or one error line that names the
    variable or shows its value."""
    env = {**PATH_ENV, "RC_WORK_DIR": str(empty_dir), **environ}
    COUNTS["environments"] += 1
    outcome = load(["--", "true"], env)
    if isinstance(outcome, PyinitError):
        COUNTS["errors"] += 1
        message = str(outcome)
        one_line(message)
        # The variable, its value or the setting it stands for (`restart_delay`, `--grace`).
        setting = {v: k for k, v in options.ENV.items()}
        named = [
            k
            for k, v in environ.items()
            if k in message
            or repr(v) in message
            or (v and v in message)
            or setting.get(k, k) in message
            or setting.get(k, k).replace("_", "-") in message
        ]
        assert named, f"{message!r} names none of {environ}"


@pytest.mark.parametrize("how", ["--restart-delay", "PYINIT_RESTART_DELAY"])
def test_a_restart_delay_above_30_seconds_is_usable(empty_dir: Path, how: str) -> None:
    """should accept a first restart delay of 60 s from the command line or the environment
    (the engine already caps the backoff at max(restart_max_delay, restart_delay))."""
    argv = ["--restart-delay", "60"] if how.startswith("--") else []
    env = {**PATH_ENV, "RC_WORK_DIR": str(empty_dir)}
    if not argv:
        env["PYINIT_RESTART_DELAY"] = "60"
    outcome = load([*argv, "--", "true"], env)
    assert isinstance(outcome, config.Plan), str(outcome)
    assert outcome.defaults.rules.restart_delay == 60


@pytest.mark.parametrize("variable", sorted(options.ENV.values()))
def test_every_bad_variable_is_named(empty_dir: Path, variable: str) -> None:
    """should name the environment variable a bad value came from (not only the option it
    stands for: the user did not type `--timeout`)."""
    bad = {"RC_WORK_DIR": "/nonexistent/dir", "PYINIT_PREFIX": "{bogus}"}.get(variable, "~bogus~")
    env = {**PATH_ENV, "RC_WORK_DIR": str(empty_dir), variable: bad}
    outcome = load(["--", "true"], env)
    if variable == "RC_WORK_DIR":
        # Like TrivialRC, a missing RC_WORK_DIR only means there are no stage files.
        assert isinstance(outcome, config.Plan)
        return
    assert isinstance(outcome, PyinitError), outcome
    assert variable in str(outcome), str(outcome)


# -- pyinit.toml -------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    return (
        '"'
        + "".join(
            f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F or c in '"\\' else c for c in text
        )
        + '"'
    )


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return (
        "{" + ", ".join(f"{toml_string(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    )


TOML_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=10)
SCALARS = st.one_of(
    TOML_TEXT,
    NASTY,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.sampled_from(["nobody", "nogroup", "root", "65534", "TERM", "on-failure"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(TOML_TEXT, inner, max_size=3)
    ),
    max_leaves=6,
)
KEYS = st.one_of(st.sampled_from([*config.TASK_KEYS, "bogus", "Restart", "env.X"]), TOML_TEXT)
TABLE_NAMES = st.one_of(
    st.sampled_from(
        [
            "defaults",
            "task.D1",
            "task.D2",
            "task",
            "task.nope",
            "bogus",
            "task.D1.deeper",
            "defaults.env",
            'task."D1"',
            "[task]",
            "[defaults]",
        ]
    ),
    TOML_TEXT.map(lambda t: f"task.{toml_string(t)}"),
)
DOCUMENTS = st.lists(st.tuples(TABLE_NAMES, st.dictionaries(KEYS, VALUES, max_size=4)), max_size=3)


def document_text(tables: list[tuple[str, dict[str, object]]]) -> str:
    out = []
    for name, table in tables:
        out.append(f"[{name}]")  # "[task]" gives [[task]]: an array of tables
        out += [
            f"{toml_string(k) if not k.isidentifier() else k} = {toml_value(v)}"
            for k, v in table.items()
        ]
    return "\n".join(out) + "\n"


def load_toml(content: bytes) -> config.Plan | PyinitError:
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "pyinit.toml"
        path.write_bytes(content)
        outcome = load(["-w", workdir, "-D", "exit 0", "-D", "exit 0"], PATH_ENV)
        if isinstance(outcome, PyinitError):
            COUNTS["errors"] += 1
            message = str(outcome)
            one_line(message)
            assert str(path) in message, message
        return outcome


@pytest.mark.slow
@pytest.mark.timeout(300)
@fuzz(1500)
@given(tables=DOCUMENTS)
def test_fuzz_toml_documents(tables: list[tuple[str, dict[str, object]]]) -> None:
    """should turn any pyinit.toml document (any tables, keys, nesting and values) into a plan
    or one error line naming the file."""
    COUNTS["toml documents"] += 1
    load_toml(document_text(tables).encode())


@pytest.mark.slow
@pytest.mark.timeout(300)
@fuzz(1000)
@given(
    content=st.one_of(
        st.binary(max_size=60),
        st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )
)
@example(content=b"\xff\xfe[defaults]")
@example(content=b'[task."a\\nb"]\n')
@example(content=b'[defaults]\n"x\\u2028y" = 1\n')
def test_fuzz_toml_bytes(content: bytes) -> None:
    """should turn any bytes in pyinit.toml into a plan or one error line naming the file."""
    COUNTS["toml bytes"] += 1
    load_toml(content)


@pytest.mark.parametrize(
    "content",
    ["x = " + "[" * 5000 + "]" * 5000, "x = " + "{a=" * 3000 + "1" + "}" * 3000],
    ids=["arrays", "inline-tables"],
)
def test_deeply_nested_toml_is_one_error_line(content: str) -> None:
    """should refuse a pyinit.toml nested thousands deep with one error line, not crash."""
    load_toml(content.encode())


def test_a_huge_prefix_width_is_refused() -> None:
    """should refuse a prefix format that renders megabytes per line (a width of 50,000,000)."""
    outcome = load(["--prefix", "{name:>50000000}", "--", "true"], PATH_ENV)
    assert isinstance(outcome, PyinitError)


# -- the same, for real ------------------------------------------------------------------------


def asks_only_for_help(argv: list[str]) -> bool:
    """--help, --version or --license on a command line that parses: answered at once."""
    try:
        return cli.answer_only(config.parse_args(argv)[0]) is not None
    except PyinitError:
        return False


def malformed(outcome: config.Plan | PyinitError) -> bool:
    return isinstance(outcome, PyinitError)


@pytest.mark.slow
@pytest.mark.timeout(300)
@fuzz(200)
@given(
    words=st.lists(WORD, min_size=1, max_size=6),
    environ=ENVIRONMENTS,
    tables=st.one_of(st.none(), DOCUMENTS),
)
@example(words=["--bogus\nforged"], environ={}, tables=None)
@example(words=["--grace", "soon"], environ={"PYINIT_GRACE": "x\ny"}, tables=None)
@example(words=["-v"], environ={}, tables=[('task."a\\nb"', {})])
def test_malformed_input_for_real(
    words: list[str], environ: dict[str, str], tables: list[tuple[str, dict[str, object]]] | None
) -> None:
    """should, for malformed input, exit 2 with exactly the one line config.load gives, nothing
    on stdout, and nothing started: no boot item, no stage file, no main command ran."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        markers = [workdir / "boot-ran", workdir / "file-ran", workdir / "main-ran"]
        (workdir / "trc.d").mkdir()
        (workdir / "trc.d" / "async.mark").write_text(f"touch {markers[1]}\n")
        if tables is not None:
            (workdir / "pyinit.toml").write_text(document_text(tables))
        argv = ["-B", f"touch {markers[0]}", *words, "--", "touch", str(markers[2])]
        env = {**environ, "RC_WORK_DIR": str(workdir)}
        if asks_only_for_help(argv):
            return  # answered before anything is read: test_signal_routing's business
        expected = load(argv, {**PATH_ENV, **env})
        if not malformed(expected):
            return  # a well-formed input: not this test's business
        COUNTS["real runs refused"] += 1
        result = pyinit(argv, env, cwd=workdir)
        line = assert_refused(result, *markers)
        assert line == f"pyinit: error: {expected}"


# -- odd stage file names ----------------------------------------------------------------------

#: A bash stage file that prints its task name hex-encoded (one line whatever the name holds).
SAY_NAME = 'echo "ran:$(printf %s "$PYINIT_TASK" | od -An -tx1 | tr -d " \\n")"\n'
ODD_NAMES = [
    b"async.with space",
    b"async.new\nline",
    b"async.-dash",
    b"async.--help",
    b"async.a\tb",
    b"async.'quote",
    b'async."dq',
    b"async.\xff\xfe",
    b"async.*",
    b"sync.$(touch pwned)",
    b"sync.`touch pwned2`",
    b"sync.;touch pwned3",
    b"sync.|touch pwned4",
    b"sync.&& touch pwned5",
    b"sync.>pwned6",
    b"sync.\\",
    b"async.\r",
    b"async.\x1b[31mred",
]


@pytest.mark.timeout(60)
def test_odd_stage_file_names(mode: str, tmp_path: Path, run_pyinit: StartPyinit) -> None:
    """should run every oddly named stage file once, as one word with its whole name (a
    newline, quote, dash or non-UTF-8 byte included), never through a shell (no `pwned` file
    appears), with each output line whole; and skip a dangling symlink and a directory."""
    trc = tmp_path / "trc.d"
    trc.mkdir()
    for name in ODD_NAMES:
        path = os.path.join(os.fsencode(trc), name)
        with open(path, "w") as f:
            f.write(SAY_NAME)
    # An executable one too: its path comes to it as one argv word, leading dashes and all.
    exe = os.path.join(os.fsencode(trc), b"sync.-x $(touch pwned7)")
    with open(exe, "w") as f:
        f.write(
            '#!/bin/sh\necho "ran:$(printf %s "$PYINIT_TASK" | od -An -tx1 | tr -d " \\n")'
            ' argc:$#"\n'
        )
    os.chmod(exe, 0o755)
    os.symlink("/nonexistent/target", trc / "async.dangling")
    (trc / "async.adir").mkdir()
    (trc / "async.adir" / "pwned8").mkdir()
    run = run_pyinit(mode, ["-vv", "--wait", "wait_all"], cwd=tmp_path)
    code = run.wait()
    assert code == 0, run.text()
    ran = re.findall(rb"ran:([0-9a-f]*)", run.text("stdout").encode(errors="surrogateescape"))
    names = sorted(bytes.fromhex(h.decode()) for h in ran)
    expected = sorted([n.split(b".", 1)[1] for n in ODD_NAMES] + [b"-x $(touch pwned7)"])
    assert names == expected, run.text("stdout")
    assert "argc:0" in run.text("stdout")  # the executable got no words split off its name
    for line in run.lines["stdout"]:  # each output line whole: a name's newline did not cut it
        assert re.search(rb"ran:[0-9a-f]+( argc:0)?\n$", line), line
    leftovers = sorted(p.name for p in tmp_path.rglob("pwned*"))
    assert leftovers == ["pwned8"], leftovers  # only the one made above
    assert re.search(r"skipping \S+async\.dangling: dangling symlink", run.text())
    assert re.search(r"skipping \S+async\.adir: directory", run.text())
    if mode == "subreaper":
        assert run.left_running() == 0


# -- security: files other users could change --------------------------------------------------

NOBODY = 65534


def make(path: Path, mode: int, owner: int = 0, text: str = "true\n", group: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    os.chown(path, owner, group)
    return path


#: (file, mode, owner, group, what the refusal says). A group write bit counts only when the
#: group is not root's or pyinit's own (a root:root checkout made under umask 002 is fine).
UNSAFE = [
    ("trc.d/async.web", 0o666, 0, NOBODY, "writable by its group and others"),
    ("trc.d/async.web", 0o666, 0, 0, "writable by others"),
    ("trc.d/async.web", 0o664, 0, NOBODY, "writable by its group"),
    ("trc.d/async.web", 0o646, 0, 0, "writable by others"),
    ("trc.d/boot.init", 0o775, 0, NOBODY, "writable by its group"),
    ("trc.sync.step", 0o757, 0, 0, "writable by others"),
    ("trc.d/halt.flush", 0o644, NOBODY, 0, "owned by another user (uid 65534)"),
    ("pyinit.toml", 0o666, 0, NOBODY, "writable by its group and others"),
    ("pyinit.toml", 0o620, 0, NOBODY, "writable by its group"),
    ("pyinit.toml", 0o644, NOBODY, 0, "owned by another user (uid 65534)"),
]


@pytest.mark.parametrize(
    ("name", "perm", "owner", "group", "why"),
    UNSAFE,
    ids=[f"{n}-{p:o}-{o}-{g}" for n, p, o, g, _ in UNSAFE],
)
@pytest.mark.parametrize("link", [False, True], ids=["file", "symlink"])
def test_files_others_can_change_are_refused(
    tmp_path: Path, name: str, perm: int, owner: int, group: int, why: str, link: bool
) -> None:
    """should refuse a stage file or pyinit.toml that another user could change (writable by
    others, by a group not root's, or owned by a user other than root or pyinit's), also
    through a symlink (its target is what counts), with one line naming the file and the fix."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    workdir = tmp_path / "work"
    workdir.mkdir()
    text = "[defaults]\n" if name == "pyinit.toml" else "true\n"
    if link:
        target = make(tmp_path / "elsewhere" / "target", perm, owner, text, group)
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).symlink_to(target)
    else:
        target = make(workdir / name, perm, owner, text, group)
    outcome = load(["-w", str(workdir), "--", "true"], PATH_ENV)
    assert isinstance(outcome, ConfigError), outcome
    message = str(outcome)
    one_line(message)
    assert str(workdir / name) in message
    assert why in message
    fix = f"chmod go-w {target}" if "writable" in why else f"chown root {target}"
    assert f"(fix: {fix})" in message
    # The fix works.
    if "writable" in why:
        target.chmod(perm & ~0o022)
    else:
        os.chown(target, 0, -1)
    assert isinstance(load(["-w", str(workdir), "--", "true"], PATH_ENV), config.Plan)


def test_unsafe_files_are_refused_for_real(tmp_path: Path) -> None:
    """should, through a real pyinit, refuse a world-writable stage file and a group-writable
    pyinit.toml with status 2 and one line, running nothing (nor the other, safe files)."""
    marker = tmp_path / "ran"
    make(tmp_path / "trc.d" / "boot.safe", 0o644, text=f"touch {marker}\n")
    make(tmp_path / "trc.d" / "async.open", 0o666, text=f"touch {marker}\n")
    line = assert_refused(pyinit(["-w", str(tmp_path), "--", "touch", str(marker)]), marker)
    assert "async.open: writable by others" in line
    assert f"chmod go-w {tmp_path}/trc.d/async.open" in line
    (tmp_path / "trc.d" / "async.open").chmod(0o644)
    make(tmp_path / "pyinit.toml", 0o664, text="[defaults]\n", group=NOBODY)
    line = assert_refused(pyinit(["-w", str(tmp_path), "--check"]), marker)
    assert "pyinit.toml: writable by its group" in line


def test_safe_and_skipped_files_are_accepted(tmp_path: Path) -> None:
    """should accept root's own files (0644, 0755, 0700, 0664 with root's group, a symlink to a
    safe target, a
    writable symlink's safe target) and not look at files it skips (a writable `*~`)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user")
    make(tmp_path / "trc.d" / "async.a", 0o644)
    make(tmp_path / "trc.d" / "async.b", 0o755, text="#!/bin/sh\ntrue\n")
    make(tmp_path / "trc.d" / "async.c", 0o700, text="#!/bin/sh\ntrue\n")
    make(tmp_path / "trc.d" / "async.c2", 0o664)  # group-writable, but the group is root's
    make(tmp_path / "target", 0o644)
    (tmp_path / "trc.d" / "async.d").symlink_to(tmp_path / "target")
    make(tmp_path / "trc.d" / "async.e~", 0o666, NOBODY)  # a leftover: skipped, not checked
    make(tmp_path / "pyinit.toml", 0o600, text="[defaults]\n")
    plan = load(["-w", str(tmp_path)], PATH_ENV)
    assert isinstance(plan, config.Plan), plan
    assert [item.name for item in plan.async_items] == ["a", "b", "c", "c2", "d"]


# -- security: no shell unless the item is shell code ------------------------------------------

SHELLISH = [
    "; touch pwned1",
    "$(touch pwned2)",
    "`touch pwned3`",
    "| touch pwned4",
    "&& touch pwned5",
    "> pwned6",
    "'",
    '"',
    "\\",
    "*",
    "a b",
    "new\nline touch pwned7",
    "-n",
    "--",
    "$HOME",
    "${IFS}touch${IFS}pwned8",
    "",
]
SHOW_ARGV = "import sys; print(repr(sys.argv[1:]))"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("compat", [False, True], ids=["pyinit", "trc"])
def test_arguments_and_environment_never_reach_a_shell(
    mode: str, tmp_path: Path, run_pyinit: StartPyinit, compat: bool
) -> None:
    """should pass every argument of the main command as one argv word, unexpanded (also in
    TrivialRC mode, where bash runs it as "$@"), show bash items pyinit's arguments and the
    environment and pyinit.toml's env literally, and create no `pwned` file."""
    (tmp_path / "trc.d").mkdir()
    (tmp_path / "trc.d" / "boot.args").write_text('printf "boot-arg:%q\\n" "$@"\n')
    (tmp_path / "trc.d" / "async.env").write_text('printf "env:%q\\n" "$EVIL" "$FROM_TOML"\n')
    (tmp_path / "pyinit.toml").write_text('[task.env]\nenv = { FROM_TOML = "$(touch pwned9)" }\n')
    args = [
        "-w",
        str(tmp_path),
        "--wait",
        "wait_all",
        *(["--compat", "trc"] if compat else []),
        "--",
        PY,
        "-c",
        SHOW_ARGV,
        *SHELLISH,
    ]
    run = run_pyinit(mode, args, env={"EVIL": "$(touch pwned10); `touch pwned11`"}, cwd=tmp_path)
    assert run.wait() == 0, run.text()
    out = run.text("stdout")
    assert repr(SHELLISH) in out, out
    assert "env:\\$\\(touch\\ pwned10\\)\\;\\ \\`touch\\ pwned11\\`" in out, out
    assert "env:\\$\\(touch\\ pwned9\\)" in out, out
    boot_args = re.findall(r"boot-arg:(.*)", out)
    assert len(boot_args) == len(args), boot_args  # pyinit's own words, one each
    assert not sorted(tmp_path.rglob("pwned*")), sorted(tmp_path.rglob("pwned*"))


# -- security: user= drops supplementary groups ------------------------------------------------

SHOW_IDS = (
    r"grep -E '^(Uid|Gid|Groups):' /proc/self/status | tr -s '\t ' ' ' | tr '\n' '|';"
    " echo"
)


@pytest.mark.timeout(60)
def test_user_drop_clears_supplementary_groups(mode: str, tmp_path: Path) -> None:
    """should, for a task with user= (by name or a number without a passwd entry) or only
    group=, set uid and gid and replace pyinit's own supplementary groups by the user's (or
    by the group alone), while a task without user= keeps pyinit's."""
    if os.geteuid() != 0:
        pytest.skip("needs root to change users")
    extra = [4, 20, 27]  # pyinit's own supplementary groups for this run
    (tmp_path / "pyinit.toml").write_text(
        '[task.D1]\nuser = "nobody"\n'
        '[task.D2]\nuser = "54321"\n'
        '[task.D3]\ngroup = "nogroup"\n'
        '[task.D4]\nuser = "nobody"\ngroup = "daemon"\n'
    )
    args = [
        "-w",
        str(tmp_path),
        "--wait",
        "wait_all",
        *[a for _ in range(5) for a in ("-D", SHOW_IDS)],
    ]
    env = {**CLEAN_ENV, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command(mode, args),
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
        check=False,
        extra_groups=extra,
    )
    assert result.returncode == 0, result.stderr
    seen = {}
    for line in result.stdout.decode().splitlines():
        task, _, ids = line.partition(": ")
        fields = dict(
            part.split(": ", 1) if ": " in part else part.split(" ", 1)
            for part in ids.strip("|").split("|")
        )
        seen[task] = {k: v.split() for k, v in fields.items()}
    nogroup = 65534
    daemon = 1
    assert seen["D1"] == {"Uid": ["65534"] * 4, "Gid": ["65534"] * 4, "Groups": ["65534"]}
    assert seen["D2"] == {"Uid": ["54321"] * 4, "Gid": ["54321"] * 4, "Groups": ["54321"]}
    assert seen["D3"]["Uid"] == ["0"] * 4
    assert seen["D3"]["Gid"] == [str(nogroup)] * 4
    assert seen["D3"]["Groups"] == [str(nogroup)]
    assert seen["D4"]["Uid"] == ["65534"] * 4
    assert seen["D4"]["Gid"] == [str(daemon)] * 4
    assert sorted(seen["D4"]["Groups"]) == sorted({"65534", str(daemon)})
    # The control: pyinit itself had the extra groups, and a task without user= keeps them.
    assert sorted(int(g) for g in seen["D5"]["Groups"]) == sorted(extra)
