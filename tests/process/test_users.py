"""`user=`/`group=` when pyinit itself is not root (README "Supervision and pyinit.toml").

pyinit runs here as `nobody` under `setpriv`, on the system's Python (the test venv's lives
under root's home, which `nobody` cannot read). Nothing is orphaned: no namespace needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(60)
SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A work dir nobody can reach (pytest's own open_dir is under a 0700 directory)."""
    with tempfile.TemporaryDirectory(prefix="pyinit-users-") as path:
        yield Path(path)


def as_nobody(workdir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    if os.geteuid() != 0 or not shutil.which("setpriv") or not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs root, setpriv and /usr/bin/python3 to run pyinit as nobody")
    workdir.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            SYSTEM_PYTHON,
            "-m",
            "pyinit",
            "-w",
            str(workdir),
            *args,
        ],
        capture_output=True,
        env=env,
        cwd=workdir,
        timeout=30,
        check=False,
    )


def test_the_user_pyinit_already_is_works(open_dir: Path) -> None:
    """`user = "nobody"` under a pyinit that runs as nobody should run the task (the no-op
    privilege drop is skipped, where setgroups would fail with EPERM and give 126)."""
    (open_dir / "pyinit.toml").write_text('[defaults]\nuser = "nobody"\n')
    done = as_nobody(open_dir, "-D", "exec sleep 0.1", "--", "id", "-u")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == b"65534"


def test_another_user_without_root_is_refused_before_start(open_dir: Path) -> None:
    """`user = "root"` under a non-root pyinit should be status 2 with one line naming the key,
    before anything starts."""
    (open_dir / "pyinit.toml").write_text('[task.D1]\nuser = "root"\n')
    marker = open_dir / "ran"
    done = as_nobody(open_dir, "-D", f"touch {marker}", "--", "true")
    assert done.returncode == 2
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert "task.D1.user" in lines[0]
    assert "not root" in lines[0]
    assert not marker.exists()
