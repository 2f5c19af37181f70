"""Boot state (docs/boot-state.md): what a boot item leaves reaches later items, the command
line changes only through `pyinit_set_args` in pyinit's mode, the files go where one can be
made, are written only when a later item needs them, and work for items of other users.

The tests that run pyinit in a namespace run in both harness modes; the ones that change
mounts or users run pyinit as a plain process (nothing they start is orphaned).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import ROOT, StartPyinit

pytestmark = pytest.mark.timeout(60)
SYSTEM_PYTHON = "/usr/bin/python3"


class Done:
    def __init__(self, status: int, out: str, err: str) -> None:
        self.status, self.out, self.err = status, out, err


#: The `pyinit` fixture: pyinit(*args, env=...) -> Done.
RunPyinit = Callable[..., Done]


@pytest.fixture
def pyinit(mode: str, run_pyinit: StartPyinit) -> RunPyinit:
    """pyinit(*args, env=...) -> Done: pyinit in this test's mode, until it exits."""

    def go(*args: str, env: dict[str, str] | None = None) -> Done:
        run = run_pyinit(mode, list(args), env=env)
        status = run.wait(20)
        if mode == "subreaper":
            assert run.left_running() == 0, run.text("stderr")
        return Done(status, run.text("stdout"), run.text("stderr"))

    return go


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A work dir every user can read (pytest's tmp_path is under a 0700 directory)."""
    with tempfile.TemporaryDirectory(prefix="pyinit-state-") as path:
        os.chmod(path, 0o755)
        yield Path(path)


def test_set_in_a_boot_item_leaves_the_command_line_alone(
    pyinit: RunPyinit, tmp_path: Path
) -> None:
    """`set -- a b; for f; do ...; done` in a boot item (the POSIX loop idiom) must not turn
    the main command into `a` (126): in pyinit's mode `set --` is the item's own."""
    loop = 'set -- /etc/hostname /etc/os-release; for f; do test -r "$f"; done'
    done = pyinit(
        "-w",
        str(tmp_path),
        "-B",
        loop,
        "-B",
        "set -- --wait bogus -x",
        "--",
        "sh",
        "-c",
        "echo MAIN",
    )
    assert done.status == 0, done.err
    assert done.out.splitlines() == ["MAIN"]


def test_set_in_trc_mode_still_rewrites(pyinit: RunPyinit, tmp_path: Path) -> None:
    """TrivialRC's self-configuring example (`set -- "$@" -F CODE` in boot) keeps working in
    TrivialRC mode."""
    done = pyinit(
        "--compat=trc",
        "-w",
        str(tmp_path),
        "-B",
        "set -- \"$@\" -F 'echo added'",
        "-F",
        "echo given",
        env={"RC_WAIT_POLICY": "wait_all"},
    )
    assert done.status == 0, done.err
    assert done.out.splitlines() == ["given", "added"]


def test_pyinit_set_args_outside_boot_is_an_error(pyinit: RunPyinit, tmp_path: Path) -> None:
    """Only a boot item can change the command line: elsewhere the helper says so and fails."""
    done = pyinit("-w", str(tmp_path), "-F", "pyinit_set_args -F true || exit 7")
    assert done.status == 7
    assert "only a boot item can change the command line" in done.err


def test_state_files_only_as_needed(pyinit: RunPyinit, tmp_path: Path) -> None:
    """Boot followed only by an executable writes the environment for pyinit, never
    STATE.sh; followed by a bash item, STATE.sh too; the directory is gone at the end."""
    state = tmp_path / "state"
    state.mkdir()
    env = {"TMPDIR": str(state)}
    listing = 'ls -A "$TMPDIR"/pyinit-*/ | sort | tr "\\n" " "'
    exec_after = pyinit(
        "-w",
        str(tmp_path),
        "-B",
        "export GREETING=hi",
        "--",
        "sh",
        "-c",
        f'echo "$GREETING"; {listing}',
        env=env,
    )
    assert exec_after.status == 0, exec_after.err
    greeting, files = exec_after.out.splitlines()
    assert greeting == "hi"
    assert "boot-state.env" in files.split()
    assert "boot-state.sh" not in files.split()

    bash_after = pyinit(
        "-w", str(tmp_path), "-B", "greet() { echo hello; }", "-F", f"greet; {listing}", env=env
    )
    assert bash_after.status == 0, bash_after.err
    assert bash_after.out.splitlines()[0] == "F1: hello"
    assert "boot-state.sh" in bash_after.out.splitlines()[1].split()
    assert list(state.iterdir()) == []  # removed at the end


def read_only_tmp(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """pyinit where /tmp, /dev/shm and /run are read-only (a `docker run --read-only`
    container without a tmpfs), in a mount namespace of its own."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to make /tmp, /dev/shm and /run read-only")
    # Read-only binds of themselves, not empty mounts: the checkout (and its venv) may be
    # under /tmp, and must stay readable.
    mounts = (
        "for d in /tmp /dev/shm /run; do mount --bind $d $d && mount -o remount,ro,bind $d"
        " || exit 99; done"
    )
    script = f'{mounts}; exec "$@"'
    return subprocess.run(
        [
            "unshare",
            "--mount",
            "sh",
            "-c",
            script,
            "sh",
            sys.executable,
            "-m",
            "pyinit",
            "-w",
            "/",
            *args,
        ],
        capture_output=True,
        text=True,
        cwd="/",
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env},
        timeout=30,
        check=False,
    )


def test_no_directory_for_the_state_is_one_line() -> None:
    """With nowhere to write, a boot item whose state a later item needs fails with one line
    naming every place tried, why, and what to do; a boot item nothing needs runs."""
    needed = read_only_tmp(["-B", "x=1", "-F", 'echo "$x"'], {"TMPDIR": "/nonexistent"})
    assert needed.returncode == 1, needed.stderr
    assert "Traceback" not in needed.stderr
    lines = [line for line in needed.stderr.splitlines() if "no directory" in line]
    assert len(lines) == 1, needed.stderr
    for part in (
        "/nonexistent (No such file or directory)",
        "/tmp (Read-only file system)",
        "/dev/shm (Read-only",
        "/run (Read-only",
        "set TMPDIR",
    ):
        assert part in lines[0]
    assert "F1" not in needed.stdout

    alone = read_only_tmp(["-B", "x=1"], {})
    assert alone.returncode == 0, alone.stderr
    assert "no directory" not in alone.stderr


def test_state_crosses_users(open_dir: Path) -> None:
    """A boot item run as nobody defines a function and variables; a root boot item adds one;
    a later nobody item and the root main command see them all, each through a directory of
    its own user's."""
    if os.geteuid() != 0 or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs root and /usr/bin/python3 to run items as nobody")
    (open_dir / "pyinit.toml").write_text(
        '[task.B1]\nuser = "nobody"\n[task.F1]\nuser = "nobody"\n'
    )
    args = [
        "-w",
        str(open_dir),
        "-B",
        'greet() { echo "hi $who"; }; who=$(id -un); export EXP=1',
        "-B",
        "who2=$(id -un)",
        "-F",
        'greet; echo "who2=$who2 EXP=$EXP $(id -un)"',
        "--",
        "sh",
        "-c",
        'echo "main EXP=$EXP $(id -un)"',
    ]
    # The system's Python: the test venv's lives under root's home, which nobody cannot read.
    done = subprocess.run(
        [SYSTEM_PYTHON, "-m", "pyinit", *args],
        capture_output=True,
        text=True,
        cwd=open_dir,
        timeout=30,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TMPDIR": str(open_dir)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "F1: hi nobody",
        "F1: who2=root EXP=1 nobody",
        "main EXP=1 root",
    ]
    assert not [p for p in open_dir.iterdir() if p.name.startswith("pyinit-")]  # removed
