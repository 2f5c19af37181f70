"""mode.py: TrivialRC mode as one record of named differences (README "TrivialRC mode: every
difference"). Pure."""

from __future__ import annotations

import os

import pytest

from pyinit import config
from pyinit.mode import PYINIT, TRC, Mode

pytestmark = pytest.mark.timeout(10)


def test_every_field_is_a_difference() -> None:
    """should hold only differences: every field has another value in each mode (a field the
    modes share is not a TrivialRC difference and belongs elsewhere)."""
    same = [k for k in Mode.__slots__ if getattr(PYINIT, k) == getattr(TRC, k)]
    assert same == []


def test_a_mode_must_answer_every_question() -> None:
    """should refuse a Mode missing a field, so a new difference is decided for both modes."""
    fields = {k: getattr(PYINIT, k) for k in Mode.__slots__ if k != "stops_leftovers"}
    with pytest.raises(TypeError, match="stops_leftovers"):
        Mode(**fields)


@pytest.mark.parametrize(
    ("args", "env", "program", "mode"),
    [
        ([], {}, "pyinit", PYINIT),
        (["--compat=trc"], {}, "pyinit", TRC),
        ([], {"PYINIT_COMPAT": "trc"}, "pyinit", TRC),
        ([], {}, "trc", TRC),
    ],
)
def test_config_picks_the_mode(
    args: list[str], env: dict[str, str], program: str, mode: Mode
) -> None:
    """should give the plan the TrivialRC mode record, by option, variable or name, and take
    the mode's defaults (prefix, verbosity) unless given."""
    plan = config.load([*args, "--", "true"], {"PATH": os.environ["PATH"], **env}, program)
    assert plan.mode is mode
    assert plan.prefix == mode.default_prefix
    assert plan.verbosity == mode.default_verbosity
