"""One parser for each kind of setting value, shared by the command line, the environment and
pyinit.toml: `--grace 5`, `PYINIT_GRACE=5` and `grace = 5` are read by the same function and
are refused with the same words.

What the sources differ in is only the form a value arrives in. On the command line and in
the environment every value is text, so `text=True` reads a number from it (`"5"`, `"inf"`).
In pyinit.toml a number must be a TOML number: `grace = "5"` is refused, as a typo would be
(the one string a number kind takes there is a grace's `"inf"`). Each parser raises
ConfigError with `at` (the option, the variable, or the TOML key) first.
"""

from __future__ import annotations

from pyinit import signals
from pyinit.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    Word = TypeVar("Word", bound=str)  # one of the closed sets of words.py

#: A grace of INF means "never SIGKILL". Not `math.inf`: `math` is an extension module, and
#: loading it costs ~0.3 ms of start-up for a constant and a test (docs/startup.md).
INF = float("inf")
#: The largest count (max_restarts and the like): what a C int holds.
MAX_COUNT = 1 << 31


def finite(value: float) -> bool:
    """math.isfinite without `math`: inf - inf and nan - nan are nan, never 0."""
    return value - value == 0


def seconds(value: object, at: str, *, text: bool = False, infinite: bool = False) -> float:
    """A number of seconds >= 0 (`restart_delay`, `--timeout`). `infinite`: `inf` is allowed
    too (a grace: never SIGKILL)."""
    number = _number(value, text)
    if infinite and (number == INF or value == "inf"):
        return INF
    if number is None or not finite(number) or number < 0:
        raise ConfigError(f"{at}: expected a number of seconds >= 0, got {value!r}")
    return float(number)


def interval(value: object, at: str, *, text: bool = False) -> float:
    """How often something is polled: 0.01 to 3600 seconds."""
    number = _number(value, text)
    if number is None or not 0.01 <= number <= 3600:
        raise ConfigError(f"{at}: expected a number of seconds from 0.01 to 3600, got {value!r}")
    return float(number)


def count(value: object, at: str, *, text: bool = False, top: int = MAX_COUNT) -> int:
    """A whole number 0..top (`max_restarts`; an exit code with top=255)."""
    number = _whole(value, text)
    if number is None or not 0 <= number <= top:
        raise ConfigError(f"{at}: expected a whole number 0..{top}, got {value!r}")
    return number


def signal(value: object, at: str) -> int:
    """A signal by name or number: TERM, SIGTERM, 15, RTMIN+3."""
    try:
        return signals.parse(str(value))
    except ValueError:
        raise ConfigError(f"{at}: unknown signal {str(value)!r}") from None


def choice(value: object, choices: tuple[Word, ...], at: str) -> Word:
    """One of `choices`, exactly (typed as the word it is: words.py)."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{at}: expected one of {', '.join(choices)}, got {value!r}")
    return choices[choices.index(value)]


def _number(value: object, text: bool) -> float | None:
    """The number `value` is, or None. Text only when it came as text."""
    if text and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None  # a TOML true is not 1, and "5" is not 5
    return value


def _whole(value: object, text: bool) -> int | None:
    if text and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value
