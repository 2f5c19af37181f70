"""Runs pyinit with a bug planted: the foreground stage starts the command, then raises.

Used by tests/process/test_reaping.py.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from pyinit import cli, stages

if TYPE_CHECKING:
    from pyinit.config import Plan
    from pyinit.runtime import Runtime
    from pyinit.waitpolicy import WaitPolicy


def broken(plan: Plan, rt: Runtime, policy: WaitPolicy) -> None:
    assert plan.main is not None
    rt.tasks.start(plan.main)
    raise RuntimeError("a planted bug")


stages.run_foreground = broken
sys.argv[0] = "pyinit"
cli.entry()
