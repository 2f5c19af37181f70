"""options.py: one row per option, from which the parser, --help and the environment names come;
the README's option table is checked against it here. Pure."""

from __future__ import annotations

import re

import pytest

from pyinit import config, options

from conftest import ROOT

pytestmark = pytest.mark.timeout(10)


def readme_rows() -> list[str]:
    """The rows of the README's option table (under "## Command line")."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Command line") : text.index("## Exit codes")]
    return [line for line in section.splitlines() if line.startswith("| ")]


def test_every_option_is_in_the_readme_with_its_variable() -> None:
    """should find every option in the README's table, in a row that names its environment
    variable when it has one (so the manual cannot forget an option or a variable)."""
    rows = readme_rows()
    for option in options.OPTIONS:
        forms = [f"--{option.long}"] + ([f"-{option.short}"] if option.short else [])
        letters = "/".join(o.short for o in options.OPTIONS if o.key in "BDFH")
        if option.key in ("B", "D", "F", "H"):
            forms.append(f"-{letters}")
        matching = [r for r in rows if any(re.search(rf"`[^`]*{re.escape(f)}\b", r) for f in forms)]
        assert matching, f"{forms[0]} is not in the README's option table"
        if option.env:
            assert any(option.env in r for r in matching), f"{option.env} not in {matching}"


def test_every_readme_variable_is_an_options_variable() -> None:
    """should know every PYINIT_/RC_ variable the table names (or say why it is not an option's)."""
    named = set(re.findall(r"`((?:PYINIT|RC)_[A-Z_]+)", "\n".join(readme_rows())))
    not_options = {"PYINIT_TERMINATION_LOG", "RC_VERBOSE", "RC_VERBOSE_EXTRA"}
    assert named - not_options == set(options.ENV.values())


def test_help_lists_every_option() -> None:
    """should show every option's forms in --help, each under its section."""
    text = options.usage()
    for option in options.OPTIONS:
        assert f"--{option.long}" in text
        if option.short:
            assert f"-{option.short}, --{option.long}" in text
        if option.env:
            assert f"({option.env})" in text
    assert all(len(line) <= 96 for line in text.splitlines())


def test_forms_are_unique() -> None:
    """should never give two options one long form, short letter or key."""
    for values in ([o.long for o in options.OPTIONS], [o.short for o in options.OPTIONS if o.short],
                   [o.key for o in options.OPTIONS]):  # fmt: skip
        assert len(values) == len(set(values))


@pytest.mark.parametrize("option", options.OPTIONS, ids=lambda o: o.long)
def test_parser_follows_the_table(option: options.Option) -> None:
    """should parse each option by its row: a value taken (inline too), a flag set, a count
    counted, a list kept in order, both by the long and the short form."""
    forms = [f"--{option.long}"] + ([f"-{option.short}"] if option.short else [])
    for form in forms:
        words = [form, "X", form, "Y"] if option.kind in ("value", "list") else [form, form]
        opts, command, items = config.parse_args([*words, "--", "cmd"])
        assert command == ["cmd"]
        if option.key in ("B", "D", "F", "H"):
            assert items == [(option.key, "X"), (option.key, "Y")]
        elif option.kind == "value":
            assert opts[option.key] == "Y"
        elif option.kind == "list":
            assert opts[option.key] == ["X", "Y"]
        elif option.kind == "count":
            assert opts[option.key] == 2
        else:
            assert opts[option.key] is True
