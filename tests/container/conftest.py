"""The container tests' session: prepare podman, the base image and the wheels once (harness.py).

Every test here is marked `container` (`pytest -m "not container"` leaves them out). Each module's
time limit is for a test's own body only (`func_only`): the preparation, done once by the first
test that needs it, takes minutes on a fresh machine and has its own time limit on every step.

When the machine cannot run them (not root, no package access, podman cannot start a
container), every test here is skipped with one reason, which pytest's summary shows on one line.
"""

from __future__ import annotations

import inspect
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from .harness import Images, Podman, Prepared, Unavailable, prepare

HERE = Path(__file__).parent
SKIP = "container tests: "  # how the reason of the session's skip starts
_prepared: list[Prepared] = []  # for the summary line
_skip_where: list[tuple[str, int]] = []  # where the session's skip was raised


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.container)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    try:
        ready = prepare(tmp_path_factory.mktemp("context"))
    except Unavailable as why:
        frame = inspect.currentframe()
        _skip_where.append((__file__, frame.f_lineno + 1 if frame else 0))
        pytest.skip(f"{SKIP}{why}")
    _prepared.append(ready)
    yield ready
    ready.podman.cleanup()


@pytest.fixture(scope="session")
def images(prepared: Prepared) -> Iterator[Images]:
    """`images.get(NAME)`: the image of Dockerfile.example ("example") or docker/NAME/."""
    built = Images(prepared)
    yield built
    built.cleanup()


@pytest.fixture
def podman(prepared: Prepared) -> Iterator[Podman]:
    """podman with the suite's containers.conf; a test's containers are removed after it."""
    yield prepared.podman
    prepared.podman.cleanup()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport() -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Report the session's skip at the place it was raised, not at each test: pytest's
    summary then folds the skipped tests into one line with the reason."""
    report = yield
    longrepr = report.longrepr
    if report.skipped and _skip_where and isinstance(longrepr, tuple) and SKIP in longrepr[2]:
        report.longrepr = (*_skip_where[0], longrepr[2])
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _prepared:
        steps = ", ".join(f"{step} {secs:.1f}s" for step, secs in _prepared[0].timings.items())
        terminalreporter.write_line(f"container tests: {steps}")
