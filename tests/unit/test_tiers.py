"""The test suite's own habits (tests/README-level rules, docs/architecture.md "Tests").

Every test module sets its time limit once, at its top (`pytestmark`), so that a hung process
fails the one module's test that hung, with a limit chosen for that module's kind of test; a
test that needs longer says so with its own mark, next to why.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(10)

TEST_MODULES = sorted((ROOT / "tests").glob("*/test_*.py"))


def module_marks(path: Path) -> list[str]:
    """The names of the marks a module's `pytestmark` assignment holds."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            values = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            return [ast.unparse(v).split("(")[0].rsplit(".", 1)[-1] for v in values]
    return []


def test_every_tier_has_test_modules() -> None:
    tiers = {path.parent.name for path in TEST_MODULES}
    assert tiers == {"unit", "process", "faults", "container"}


@pytest.mark.parametrize("path", TEST_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_module_sets_its_timeout_once(path: Path) -> None:
    assert "timeout" in module_marks(path), f"{path.name}: no pytestmark = pytest.mark.timeout(N)"
