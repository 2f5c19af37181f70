"""`python -m pyinit`: the same as the `pyinit` command."""

from pyinit.cli import entry

entry()
