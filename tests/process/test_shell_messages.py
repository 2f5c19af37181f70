"""The integrated log functions' pipe (pyinit/shell.py): `level TAB ns TAB pid TAB task TAB
message` lines from bash items, parsed without ever raising, whatever an item writes to it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit import config, shell

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def sh(tmp_path: Path) -> shell.Shell:
    plan = config.load(["-w", str(tmp_path), "-B", "true"], {"PATH": os.environ["PATH"]})
    return shell.Shell(plan, {"PATH": os.environ["PATH"]})


def test_a_message_from_bash(sh: shell.Shell) -> None:
    """should give level, ns, pid, task and message for what `warn` sends from a bash item."""
    env = {
        "PATH": os.environ["PATH"],
        "PYINIT_FUNCTIONS": shell.FUNCTIONS,
        "PYINIT_LOG_FD": str(shell.LOG_FD),
        "PYINIT_LOG_NS": "async",
        "PYINIT_LOG_PID": "42",
        "PYINIT_TASK": "web",
    }
    os.set_inheritable(sh.log_write, True)
    subprocess.run(
        [
            "bash",
            "-c",
            f"exec {shell.LOG_FD}>&{sh.log_write}; "
            f'. "$PYINIT_FUNCTIONS"; warn "disk" "80%	full"',
        ],
        env=env,
        pass_fds=(sh.log_write,),
        check=True,
        timeout=10,
    )
    assert sh.read_messages() == [("warn", "async", 42, "web", "disk 80%\tfull")]


@pytest.mark.timeout(60)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300).map(lambda b: b.replace(b"\x01", b"\t")))
def test_anything_written_to_the_pipe_is_parsed_or_dropped(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    """should never raise on what an item writes to the pipe: well-formed lines become
    messages, the rest are dropped."""
    plan = config.load(
        ["-w", str(tmp_path_factory.mktemp("w")), "-B", "true"], {"PATH": os.environ["PATH"]}
    )
    sh = shell.Shell(plan, {"PATH": os.environ["PATH"]})
    try:
        os.write(sh.log_write, data + b"\ninfo\tmain\t7\tB1\tlast\n")
        messages = sh.read_messages()
        assert messages[-1] == ("info", "main", 7, "B1", "last")
        for _level, _ns, pid, _task, _message in messages:
            assert pid >= 0
    finally:
        os.close(sh.log_read)
        os.close(sh.log_write)
