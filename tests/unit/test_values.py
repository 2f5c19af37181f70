"""values.py: one parser per kind of setting value, for the command line, the environment and
pyinit.toml. Pure functions: tested directly, and fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyinit import values
from pyinit.errors import ConfigError

pytestmark = pytest.mark.timeout(10)

ANYTHING = st.one_of(
    st.text(max_size=12),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
)


def test_text_is_read_as_a_number_only_when_it_came_as_text() -> None:
    """should read "5" from the command line or the environment, and refuse it in TOML."""
    assert values.seconds("5", "--grace", text=True) == 5.0
    assert values.seconds(5, "grace") == 5.0
    with pytest.raises(ConfigError, match=r"^grace: expected a number of seconds >= 0, got '5'$"):
        values.seconds("5", "grace")
    assert values.count("3", "--max-restarts", text=True) == 3
    with pytest.raises(ConfigError, match="expected a whole number"):
        values.count("1.5", "--max-restarts", text=True)


def test_a_grace_may_be_infinite_and_nothing_else_may() -> None:
    """should take inf for a grace (text "inf", TOML "inf" or inf) and refuse it elsewhere."""
    for value, text in (("inf", True), ("inf", False), (values.INF, False)):
        assert values.seconds(value, "grace", text=text, infinite=True) == values.INF
    for bad in ("inf", "-inf", "nan"):
        with pytest.raises(ConfigError):
            values.seconds(bad, "--timeout", text=True)


def test_a_toml_boolean_is_not_a_number() -> None:
    """should refuse true where a number belongs (it is an int to Python)."""
    for parse in (values.seconds, values.count, values.interval):
        with pytest.raises(ConfigError, match="got True"):
            parse(True, "x")


def test_bounds() -> None:
    """should keep counts within 0..top and intervals within 0.01..3600 s."""
    assert values.count(255, "code", top=255) == 255
    with pytest.raises(ConfigError, match=r"0\.\.255"):
        values.count(256, "code", top=255)
    with pytest.raises(ConfigError, match=r"from 0\.01 to 3600"):
        values.interval(0, "ready_interval")
    assert values.signal("rtmin+3", "x") == values.signal("SIGRTMIN+3", "x")


@pytest.mark.timeout(60)
@settings(max_examples=500, deadline=None)
@given(ANYTHING, st.booleans())
def test_fuzzed_values_give_a_value_or_one_clear_error(value: object, text: bool) -> None:
    """should return a value in range or raise ConfigError naming the source, never anything
    else, for whatever a TOML file or an environment variable holds."""
    parsers = (
        lambda: values.seconds(value, "at", text=text, infinite=True),
        lambda: values.interval(value, "at", text=text),
        lambda: values.count(value, "at", text=text),
        lambda: values.signal(value, "at"),
        lambda: values.choice(value, ("a", "b"), "at"),
    )
    for parse in parsers:
        error = ""
        try:
            got = parse()
        except ConfigError as e:
            error = str(e)
        if error:
            assert error.startswith("at: ")
        elif isinstance(got, int | float):
            assert got >= 0
        else:
            assert got in ("a", "b")
