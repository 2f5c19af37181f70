"""Procfiles, as honcho and foreman read them (docs/procfile.md).

Each `name: command` line is a background task run by `sh -c`, in file order. `PORT` is given
as honcho gives it: the base port (the `.env`'s PORT, else `--port`, else `$PORT`, else 5000)
for the first process type, 100 more for each next one. `.env` in the work directory is read
as honcho reads it (shlex, posix: `KEY=value`, quotes, `#` comments; `\\n` and `\\t` in values)
and added to every Procfile task's environment. Unlike honcho, a line that is neither a task,
blank nor a comment is an error naming the file and the line, not ignored.
"""

from __future__ import annotations

from pyinit.errors import ConfigError

#: honcho's default base port.
BASE_PORT = 5000
ENV_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
NAME_CHARS = ENV_FIRST | frozenset("0123456789-")


def parse(text: str, path: str) -> list[tuple[str, str, int]]:
    """(name, command, line number) for each task line of a Procfile."""
    tasks: list[tuple[str, str, int]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, command = line.partition(":")
        if not colon or not name or not set(name) <= NAME_CHARS or not command.strip():
            raise ConfigError(
                f"{path}:{number}: expected NAME: COMMAND (a name of letters, digits, _ and -), "
                f"got {line[:80]!r}"
            )
        if name in seen:
            raise ConfigError(f"{path}:{number}: {name} is already line {seen[name]}")
        seen[name] = number
        tasks.append((name, command.strip(), number))
    if not tasks:
        raise ConfigError(f"{path}: no NAME: COMMAND line")
    return tasks


def parse_env(text: str) -> dict[str, str]:
    """A `.env` file as honcho reads it: a line of three tokens or more, NAME = VALUE..."""
    import shlex  # only with a Procfile: it imports re

    values: dict[str, str] = {}
    for line in text.splitlines():
        try:
            tokens = list(shlex.shlex(line, posix=True))
        except ValueError:  # an unclosed quote: honcho's shlex raises too; skip the line
            continue
        if len(tokens) < 3 or tokens[1] != "=":
            continue
        name = tokens[0]
        if name[:1] not in ENV_FIRST:  # honcho: re.match(r"[A-Za-z_]...", name)
            continue
        values[name] = "".join(tokens[2:]).replace("\\n", "\n").replace("\\t", "\t")
    return values


def base_port(dotenv: dict[str, str], given: str | None, environ_port: str | None) -> int:
    """honcho's order: the .env's PORT, else --port, else $PORT, else 5000."""
    for text, what in (
        (dotenv.get("PORT"), ".env PORT"),
        (given, "--port"),
        (environ_port, "PORT"),
    ):
        if text is not None and text != "":
            if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
                raise ConfigError(f"{what}: expected a TCP port from 1 to 65535, got {text!r}")
            return int(text)
    return BASE_PORT
