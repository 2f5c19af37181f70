"""The module map holds: imports point down only (docs/design.md, README "Architecture").

Each module has a layer; a module may import only from lower layers, so a layer-1 module never
imports another layer-1 module (no sideways arrows) and the leaves import nothing of pyinit's
but the smallest leaves (`errors`, `signals`). Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(10)

PACKAGE = ROOT / "pyinit"

LAYERS = {
    # the smallest leaves: stdlib only
    "errors": 0,
    "words": 0,  # the domain's words as types, for mypy only (never imported at run time)
    "ctl": 0,  # pyinitctl: the standard library only, it must start fast
    "signals": 0,
    "record": 0,
    "status": 0,
    # leaves: stdlib, and the smallest leaves at most
    "output": 1,
    "sink": 1,
    "log": 1,
    "procctl": 1,
    "notify": 1,
    "supervisor": 1,
    "waitpolicy": 1,
    "forwarding": 1,
    "leftovers": 1,
    "options": 1,
    "values": 1,  # one parser per kind of setting value, for every source
    "ready": 1,
    "limits": 1,
    "procfile": 1,
    "schedule": 1,
    # every TrivialRC difference by name (it names the wait-policy class of each mode)
    "mode": 2,
    "listener": 2,  # a bounded listening socket: what control and endpoint share
    "attempt": 2,  # one non-blocking connect or GET, for probes and health checks
    "workdir": 2,  # the work directory's files: stage files, their trust, pyinit.toml
    # the plan, from the command line, the environment and the work directory
    "config": 3,
    # OS mechanics, bash items, the plan in words
    "reaper": 4,
    "spawn": 4,
    "shell": 4,
    "plan_text": 4,
    # the parts of a run (runtime.py wires them): the event core knows no task
    "loop": 1,
    "streams": 5,
    "probes": 5,
    "tasks": 6,
    "outcome": 7,
    "startorder": 7,
    "health": 7,
    "scheduler": 7,
    "shutdown": 8,
    "view": 8,
    "control": 9,
    "endpoint": 9,
    "runtime": 10,
    # the stages, the command line, the entry point
    "stages": 11,
    "cli": 12,
    "__main__": 13,
    "__init__": 0,
}


def pyinit_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "pyinit":
                found.update(alias.name for alias in node.names if alias.name != "__version__")
            elif node.module.startswith("pyinit."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("pyinit."))
    return found


def test_every_module_has_a_layer() -> None:
    """Every module in the package should be placed on the map (a new one must be placed)."""
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == set(LAYERS)


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_imports_point_down(module: str) -> None:
    """A module should import only modules of lower layers."""
    for imported in pyinit_imports(PACKAGE / f"{module}.py"):
        assert LAYERS[imported] < LAYERS[module], (
            f"{module} (layer {LAYERS[module]}) imports {imported} (layer {LAYERS[imported]})"
        )
