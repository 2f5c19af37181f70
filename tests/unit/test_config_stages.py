"""How the work directory and the command line become stage items (spec §1-§3), read with
`config.load` alone: which files, in which order, with which names, run how, in which mode.
No process is started; tests/process/test_stages.py checks the same things by running them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyinit import config
from pyinit.config import Plan
from pyinit.errors import PyinitError
from pyinit.mode import PYINIT, TRC
from pyinit.workdir import BASH_CODE, BASH_FILE, EXEC

pytestmark = pytest.mark.timeout(30)  # every test here: no processes, milliseconds

ENV = {"PATH": os.environ.get("PATH", os.defpath)}


def load(args: list[str], env: dict[str, str] | None = None, program: str = "pyinit") -> Plan:
    return config.load(args, {**ENV, **(env or {})}, program)


def touch(path: Path, text: str = "true\n", mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def labels(plan: Plan, stage: str, root: Path) -> list[str]:
    """The stage's items as paths relative to the work dir (strings as they were given)."""
    items = {"boot": plan.boot, "async": plan.async_items, "sync": plan.sync, "halt": plan.halt}[
        stage
    ]
    prefix = f"{root}{os.sep}"
    return [i.label.removeprefix(prefix) for i in items]


# ---------------------------------------------------------------------------------------------
# Which files, in which order


def test_both_locations_sorted_together_bytewise(tmp_path: Path) -> None:
    """should take `trc.S.*` and `trc.d/S.*` together, in bytewise path order: trc.boot.*
    before trc.d/boot.*, but trc.d/sync.* before trc.sync.* (TrivialRC's `ls` in the C
    locale, not its README)"""
    for name in (
        "trc.boot.z",
        "trc.d/boot.a",
        "trc.sync.0",
        "trc.d/sync.9",
        "trc.halt.a",
        "trc.d/halt.z",
        "trc.async.b",
        "trc.d/async.a",
    ):
        touch(tmp_path / name)
    plan = load(["-w", str(tmp_path)])
    assert labels(plan, "boot", tmp_path) == ["trc.boot.z", "trc.d/boot.a"]
    assert labels(plan, "async", tmp_path) == ["trc.async.b", "trc.d/async.a"]
    assert labels(plan, "sync", tmp_path) == ["trc.d/sync.9", "trc.sync.0"]
    assert labels(plan, "halt", tmp_path) == ["trc.d/halt.z", "trc.halt.a"]


def test_order_is_lexicographic_and_uppercase_first(tmp_path: Path) -> None:
    """should order `sync.1 sync.10 sync.2` (not numerically) and uppercase before `_` before
    lowercase, whatever the locale"""
    names = ["sync.a", "sync.2", "sync._z", "sync.10", "sync.B", "sync.1", "sync.é"]
    for name in names:
        touch(tmp_path / "trc.d" / name)
    plan = load(["-w", str(tmp_path)], {"LC_ALL": "en_US.UTF-8"})
    assert labels(plan, "sync", tmp_path) == [
        f"trc.d/{n}"
        for n in ("sync.1", "sync.10", "sync.2", "sync.B", "sync._z", "sync.a", "sync.é")
    ]


LEFTOVERS = [
    "sync.x~",
    "sync.x.swp",
    "sync.x.bak",
    "sync.x.orig",
    "sync.x.rej",
    "sync.x.dpkg-new",
    "sync.x.dpkg-old",
    "sync.x.dpkg-dist",
    "sync.x.rpmnew",
    "sync.x.rpmsave",
]


def test_leftovers_directories_and_dangling_links_are_skipped(tmp_path: Path) -> None:
    """should skip directories, editor and package-manager leftovers and dangling symlinks,
    each listed with why (for the debug line), and run a symlink to a real file"""
    for name in LEFTOVERS:
        touch(tmp_path / "trc.d" / name)
    (tmp_path / "trc.d" / "sync.dir").mkdir()
    (tmp_path / "trc.d" / "sync.dangling").symlink_to(tmp_path / "nowhere")
    touch(tmp_path / "real")
    (tmp_path / "trc.d" / "sync.link").symlink_to(tmp_path / "real")
    touch(tmp_path / "trc.d" / ".sync.hidden")
    touch(tmp_path / "trc.d" / "sync.run")
    plan = load(["-w", str(tmp_path)])
    assert labels(plan, "sync", tmp_path) == ["trc.d/sync.link", "trc.d/sync.run"]
    skipped = {os.path.basename(path): why for path, why in plan.skipped}
    assert set(skipped) == {*LEFTOVERS, "sync.dir", "sync.dangling"}
    assert skipped["sync.dir"] == "directory"
    assert skipped["sync.dangling"] == "dangling symlink"
    assert all("leftover" in skipped[name] for name in LEFTOVERS)


def test_a_name_with_spaces_is_one_item(tmp_path: Path) -> None:
    """should keep a file name with spaces whole (TrivialRC word-split it into bogus names)"""
    touch(tmp_path / "trc.d" / "async.my web")
    plan = load(["-w", str(tmp_path)])
    assert [i.name for i in plan.async_items] == ["my web"]


def test_work_dir_from_the_environment_without_stage_files(tmp_path: Path) -> None:
    """should find no stage files (and not fail) in a work dir without trc.d, and take
    RC_WORK_DIR when no -w is given"""
    plan = load(["--", "true"], {"RC_WORK_DIR": str(tmp_path)})
    assert plan.workdir == str(tmp_path)
    assert (plan.boot, plan.async_items, plan.sync, plan.halt) == ((), (), (), ())


def test_command_line_work_dir_beats_the_environment(tmp_path: Path) -> None:
    """should take -w over RC_WORK_DIR (command line beats environment; TrivialRC did the
    opposite, which broke nested trc)"""
    other = tmp_path / "other"
    other.mkdir()
    plan = load(["-w", str(tmp_path), "--", "true"], {"RC_WORK_DIR": str(other)})
    assert plan.workdir == str(tmp_path)


# ---------------------------------------------------------------------------------------------
# Names, and how each item runs


def test_task_names(tmp_path: Path) -> None:
    """should name a file after its stage prefix (both locations), command-line items D1, F2,
    ... per kind in the order given, and the main command by its program's basename"""
    touch(tmp_path / "trc.d" / "async.web")
    touch(tmp_path / "trc.async.worker")
    plan = load(
        [
            "-w",
            str(tmp_path),
            "-D",
            "a",
            "-F",
            "b",
            "-D",
            "c",
            "-B",
            "d",
            "-H",
            "e",
            "-F",
            "f",
            "--",
            "/usr/bin/env",
            "true",
        ]
    )
    assert [i.name for i in plan.async_items] == ["worker", "web", "D1", "D2"]
    assert [i.label for i in plan.async_items][2:] == ["a", "c"]
    assert [i.name for i in plan.sync] == ["F1", "F2"]
    assert [i.name for i in plan.boot] == ["B1"]
    assert [i.name for i in plan.halt] == ["H1"]
    assert plan.main is not None
    assert plan.main.name == "env"
    assert plan.main.argv == ("/usr/bin/env", "true")
    assert plan.main.how == EXEC


def test_command_line_items_come_after_the_stage_files(tmp_path: Path) -> None:
    """should run a stage's -B/-D/-F/-H items after that stage's files"""
    touch(tmp_path / "trc.d" / "sync.z")
    plan = load(["-w", str(tmp_path), "-F", "echo f"])
    assert [i.name for i in plan.sync] == ["z", "F1"]
    assert plan.sync[1].how == BASH_CODE


@pytest.mark.parametrize(
    ("text", "mode", "how", "interpreter"),
    [
        ("echo hi\n", 0o644, BASH_FILE, ()),
        ("#!/bin/bash\necho hi\n", 0o644, BASH_FILE, ()),
        ("#!/bin/sh\necho hi\n", 0o644, BASH_FILE, ()),
        ("#!/usr/bin/env bash\necho hi\n", 0o644, BASH_FILE, ()),
        ("#!/usr/bin/env python3\nprint(1)\n", 0o644, EXEC, ("/usr/bin/env", "python3")),
        ("#!/usr/bin/python3 -u\nprint(1)\n", 0o644, EXEC, ("/usr/bin/python3", "-u")),
        ("#!/bin/sh\necho hi\n", 0o755, EXEC, ()),
        ("#!/usr/bin/env python3\nprint(1)\n", 0o700, EXEC, ()),
    ],
    ids=["plain", "bash", "sh", "env-bash", "env-python", "python-arg", "exec-sh", "exec-python"],
)
def test_how_a_file_runs(
    tmp_path: Path, text: str, mode: int, how: str, interpreter: tuple[str, ...]
) -> None:
    """should execute a file with an exec bit, source a non-executable one with bash, and run a
    non-executable one whose #! names another interpreter with that interpreter"""
    path = touch(tmp_path / "trc.d" / "sync.item", text, mode)
    (item,) = load(["-w", str(tmp_path)]).sync
    assert item.how == how
    assert item.argv == (*interpreter, str(path))
    assert item.label == str(path)


# ---------------------------------------------------------------------------------------------
# Policies and modes


@pytest.mark.parametrize(
    ("args", "env", "wait", "source"),
    [
        ([], {}, "wait_any", "default"),
        ([], {"RC_WAIT_POLICY": ""}, "wait_any", "default"),
        ([], {"RC_WAIT_POLICY": "wait_all"}, "wait_all", "RC_WAIT_POLICY"),
        (["--wait", "wait_err"], {"RC_WAIT_POLICY": "wait_all"}, "wait_err", "command line"),
        (["--wait=wait_forever"], {}, "wait_forever", "command line"),
    ],
)
def test_wait_policy_precedence(
    args: list[str], env: dict[str, str], wait: str, source: str
) -> None:
    """should take the wait policy from --wait, else RC_WAIT_POLICY (empty = unset), else
    wait_any, and remember where it came from (for --check)"""
    plan = load([*args, "--", "true"], env)
    assert plan.wait == wait
    assert plan.sources["wait"] == source


@pytest.mark.parametrize("value", ["bogus", "WAIT_ALL", "wait-all"])
def test_unknown_wait_policy_is_an_error(value: str) -> None:
    """should refuse an unknown wait policy (TrivialRC silently stopped waiting), case and all"""
    with pytest.raises(PyinitError, match="wait policy"):
        load(["--", "true"], {"RC_WAIT_POLICY": value})
    with pytest.raises(PyinitError, match="wait policy"):
        load(["--wait", value, "--", "true"])


@pytest.mark.parametrize(
    ("args", "env", "program", "compat", "self_name"),
    [
        ([], {}, "pyinit", False, "pyinit"),
        ([], {}, "/usr/local/bin/pyinit", False, "pyinit"),
        (["--compat", "trc"], {}, "pyinit", True, "pyinit"),
        (["--compat=trc"], {}, "pyinit", True, "pyinit"),
        ([], {"PYINIT_COMPAT": "trc"}, "pyinit", True, "pyinit"),
        ([], {}, "trc", True, "trc"),
        ([], {}, "/etc/trc", True, "trc"),
        ([], {}, "trc.sh", True, "trc"),
        ([], {}, "myinit.sh", False, "myinit"),
        (["--compat", "none"], {}, "trc", False, "trc"),
    ],
)
def test_trivialrc_mode_and_self_name(
    args: list[str], env: dict[str, str], program: str, compat: bool, self_name: str
) -> None:
    """should switch to TrivialRC mode with --compat=trc, PYINIT_COMPAT=trc or the name `trc`,
    and name itself (SELF_NAME, log lines) after the program minus `.sh`, as trc does"""
    plan = load([*args, "--", "true"], env, program)
    assert plan.mode is (TRC if compat else PYINIT)
    assert plan.self_name == self_name


def test_trivialrc_mode_defaults(tmp_path: Path) -> None:
    """should, in TrivialRC mode, not prefix task output, print nothing of its own without
    RC_VERBOSE=true, and accept a run with nothing to do (trc just exits 0)"""
    plan = load(["-w", str(tmp_path)], program="trc")
    assert plan.prefix == ""
    assert plan.verbosity < 1
    verbose = load(["-w", str(tmp_path)], {"RC_VERBOSE": "true"}, program="trc")
    assert verbose.verbosity == 2
    extra = load(
        ["-w", str(tmp_path)], {"RC_VERBOSE": "true", "RC_VERBOSE_EXTRA": "true"}, program="trc"
    )
    assert extra.verbosity == 3
    with pytest.raises(PyinitError, match="nothing to run"):
        load(["-w", str(tmp_path)])


def test_bash_items_without_bash_are_an_error(tmp_path: Path) -> None:
    """should refuse, before anything starts, a bash item (file or string) when bash is not on
    PATH, naming the item; an executable item alone needs no bash"""
    touch(tmp_path / "trc.d" / "boot.setup")
    no_bash = {"PATH": str(tmp_path / "empty")}
    with pytest.raises(PyinitError, match=r"boot\.setup: needs bash"):
        load(["-w", str(tmp_path), "--", "/bin/true"], no_bash)
    with pytest.raises(PyinitError, match="needs bash"):
        load(["-D", "sleep 1", "--", "/bin/true"], no_bash)
    executable = tmp_path / "x"
    executable.mkdir()
    touch(executable / "trc.d" / "async.run", "#!/bin/sh\n", 0o755)
    assert load(["-w", str(executable), "--", "/bin/true"], no_bash).async_items


def test_check_shows_how_each_item_runs(tmp_path: Path) -> None:
    """should show in --check's plan how each item runs: sourced, executed, run by its #!
    interpreter, bash code, and in TrivialRC mode the main command run by bash"""
    from pyinit.plan_text import describe

    touch(tmp_path / "trc.d" / "boot.setup")
    touch(tmp_path / "trc.d" / "async.web", "#!/bin/sh\n", 0o755)
    touch(tmp_path / "trc.d" / "sync.py", "#!/usr/bin/env python3\n")
    args = ["-w", str(tmp_path), "-H", "true", "--", "exit", "3"]
    text = describe(load(args))
    assert f"  setup: {tmp_path}/trc.d/boot.setup (sourced by bash)\n" in text
    assert f"  web: {tmp_path}/trc.d/async.web (executed, restart never)\n" in text
    assert "(run by /usr/bin/env python3, restart never)\n" in text
    assert "  H1: true (bash code)\n" in text
    assert "  exit: exit 3 (executed, restart never)\n" in text
    assert "mode: pyinit\n" in text
    trc_text = describe(load(args, program="trc"))
    assert '  exit: exit 3 (run by bash as "$@", restart never)\n' in trc_text
    assert "mode: TrivialRC\n" in trc_text


@pytest.mark.timeout(10)
def test_masked_fifo_device_and_socket_files_are_skipped(tmp_path: Path) -> None:
    """should skip a stage file that is a symlink to /dev/null (masked, the systemd idiom) and
    a FIFO, a device or a socket, listing each as skipped, never opening one (a FIFO would
    block) nor refusing /dev/null as writable by others"""
    import socket

    trc = tmp_path / "trc.d"
    trc.mkdir()
    touch(trc / "async.real")
    (trc / "async.masked").symlink_to(os.devnull)
    (trc / "async.tty").symlink_to("/dev/zero")
    os.mkfifo(trc / "async.fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(trc / "async.sock"))
    try:
        plan = load(["-w", str(tmp_path)])
    finally:
        sock.close()
    assert labels(plan, "async", tmp_path) == ["trc.d/async.real"]
    skipped = {os.path.basename(path): why for path, why in plan.skipped}
    assert skipped["async.masked"] == "disabled (a symlink to /dev/null)"
    for name in ("async.tty", "async.fifo", "async.sock"):
        assert skipped[name] == "not a regular file (a FIFO, device or socket)"


def test_a_crlf_stage_file_gets_its_own_error(tmp_path: Path) -> None:
    """should refuse a stage file whose lines end with CR LF with one line saying so (bash
    would fail with a syntax error, exec with "No such file or directory")"""
    trc = tmp_path / "trc.d"
    trc.mkdir()
    touch(trc / "async.dos", "#!/bin/sh\r\necho hi\r\n", 0o755)
    with pytest.raises(PyinitError, match=r"async\.dos: its lines end with CR \(a CRLF file\?\)"):
        load(["-w", str(tmp_path)])
