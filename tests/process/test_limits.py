"""Per-task `rlimits` and `umask` (pyinit/limits.py, docs/limits.md): parsed from pyinit.toml,
then set in the child between fork and exec, checked from inside a real task (bash's `ulimit`
and `umask`), PID 1 and subreaper; a limit that cannot be set fails the start with 126 and a
line naming it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit import limits
from pyinit.errors import ConfigError

from conftest import StartPyinit

pytestmark = pytest.mark.timeout(60)
NOFILE, CORE, NPROC = (
    limits.RESOURCES["nofile"],
    limits.RESOURCES["core"],
    limits.RESOURCES["nproc"],
)


def test_rlimit_forms() -> None:
    got = limits.parse_rlimits(
        {"nofile": 65536, "RLIMIT_CORE": 0, "nproc": [512, 1024], "stack": "unlimited"}, "x"
    )
    assert got == tuple(
        sorted(
            [
                (NOFILE, 65536, 65536),
                (CORE, 0, 0),
                (NPROC, 512, 1024),
                (limits.RESOURCES["stack"], -1, -1),
            ]
        )
    )
    assert limits.describe(got) == (
        "{stack = unlimited, core = 0, nproc = [512, 1024], nofile = 65536}"
    )
    assert limits.parse_rlimits({"nofile": [1024, "unlimited"]}, "x") == ((NOFILE, 1024, -1),)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({}, "expected a table"),
        (5, "expected a table"),
        ({"files": 5}, "x.files: unknown limit"),
        ({"nofile": -1}, "x.nofile: expected a whole number"),
        ({"nofile": True}, "x.nofile: expected a whole number"),
        ({"nofile": 1.5}, "x.nofile: expected a whole number"),
        ({"nofile": [1, 2, 3]}, "x.nofile: expected a number"),
        ({"nofile": [2048, 1024]}, "the soft limit 2048 is above the hard 1024"),
        ({"nofile": ["unlimited", 1024]}, "the soft limit unlimited is above the hard 1024"),
    ],
)
def test_bad_rlimits(value: object, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        limits.parse_rlimits(value, "x")
    assert says in str(caught.value)


def test_umask() -> None:
    assert limits.parse_umask("027", "x") == 0o027
    assert limits.parse_umask("0077", "x") == 0o077
    for bad in ("", "27a", "8", "00777", 27, None):
        with pytest.raises(ConfigError):
            limits.parse_umask(bad, "x")


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["nofile", "core", "bogus", "RLIMIT_NPROC"]),
        st.integers(-2, 1 << 64)
        | st.sampled_from(["unlimited", "x", True])
        | st.lists(st.integers(-1, 10**6) | st.just("unlimited"), max_size=3),
        max_size=3,
    )
    | st.text(max_size=5)
)
def test_fuzz_rlimits(value: object) -> None:
    """should give limits or one ConfigError line, never another exception."""
    try:
        got = limits.parse_rlimits(value, "x")
    except ConfigError as e:
        message = str(e)
    else:
        message = ""
        assert all(hard == -1 or 0 <= soft <= hard for _, soft, hard in got)
    assert "\n" not in message


def test_a_task_runs_with_its_limits_and_umask(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    (tmp_path / "pyinit.toml").write_text(
        '[task.D1]\nrlimits = { nofile = [4096, 8192], core = 0 }\numask = "027"\n'
        '[task.D2]\nuser = "nobody"\nrlimits = { nofile = 2000 }\n'
    )
    run = run_pyinit(
        mode,
        [
            "-w",
            str(tmp_path),
            "--wait",
            "wait_all",
            "-D",
            'echo "$(ulimit -Sn) $(ulimit -Hn) $(ulimit -c) $(umask)"; '
            "grep -e 'open files' -e 'core file' /proc/self/limits",
            "-D",
            'echo "$(id -un) $(ulimit -Sn) $(ulimit -Hn)"',
        ],
    )
    assert run.wait() == 0, run.text()
    run.expect(r"^D1: 4096 8192 0 0027$", stream="stdout")
    # As the kernel shows them to the task itself.
    run.expect(r"^D1: Max open files +4096 +8192 +files", stream="stdout")
    run.expect(r"^D1: Max core file size +0 +0 +bytes", stream="stdout")
    run.expect(r"^D2: nobody 2000 2000$", stream="stdout")  # set before dropping privileges


def test_a_limit_that_cannot_be_set_fails_the_start(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """even root cannot raise nofile above fs.nr_open: status 126 and a line naming it."""
    nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    (tmp_path / "pyinit.toml").write_text(f"[task.D1]\nrlimits = {{ nofile = {nr_open + 1} }}\n")
    run = run_pyinit(mode, ["-w", str(tmp_path), "-D", "echo started"])
    assert run.wait() == 126, run.text()
    run.expect(
        rf"set rlimits failed: rlimit nofile = \[{nr_open + 1}, {nr_open + 1}\] cannot be set: "
        r".+ \(its hard limit here is \d+\)"
    )
    assert b"started" not in b"".join(run.lines["stdout"])
