"""pyinit's one exception family: bad input, turned into one stderr line and status 2 by `cli`."""


class PyinitError(Exception):
    """Something the user must fix before pyinit starts anything (spec §8: status 2)."""

    def __str__(self) -> str:
        # One line, whatever the input held: a line break in an option, a file name or a TOML
        # key must not split the one error line, nor forge another (control characters are
        # shown escaped, as repr() shows them; a tab stays).
        text = super().__str__()
        if text.isprintable():
            return text
        return "".join(
            repr(c)[1:-1]
            if (ord(c) < 32 and c != "\t") or 127 <= ord(c) < 160 or c in "\u2028\u2029"
            else c
            for c in text
        )


class UsageError(PyinitError):
    """The command line is wrong (unknown option, missing value, bad number)."""


class ConfigError(PyinitError):
    """The environment, `pyinit.toml` or the work directory is wrong."""
