"""pyinit's one exception family: bad input, turned into one stderr line and status 2 by `cli`."""


class PyinitError(Exception):
    """Something the user must fix before pyinit starts anything (SPEC §8: status 2)."""


class UsageError(PyinitError):
    """The command line is wrong (unknown option, missing value, bad number)."""


class ConfigError(PyinitError):
    """The environment, `pyinit.toml` or the work directory is wrong."""
