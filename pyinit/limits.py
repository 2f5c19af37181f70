"""Per-task process limits: `rlimits` and `umask`, parsed from pyinit.toml and applied in the
child between fork and exec (spawn.py), as systemd's LimitNOFILE= and UMask= are.

Docker 29 lowered a container's default `nofile` to 1024 (moby #51485), and many services
want more; a core dump or a fork bomb wants less. Each limit is a number, "unlimited", or
[soft, hard]; one number sets both. A limit the child cannot set (a hard limit above the one
it inherited, without CAP_SYS_RESOURCE) fails the start with status 126 and a line naming it
(docs/limits.md).
"""

from __future__ import annotations

from pyinit.errors import ConfigError

#: RLIMIT_* by the name pyinit.toml uses (setrlimit(2)); -1 is RLIM_INFINITY on Linux.
RESOURCES = {
    "as": 9,
    "core": 4,
    "cpu": 0,
    "data": 2,
    "fsize": 1,
    "locks": 10,
    "memlock": 8,
    "msgqueue": 12,
    "nice": 13,
    "nofile": 7,
    "nproc": 6,
    "rss": 5,
    "rtprio": 14,
    "rttime": 15,
    "sigpending": 11,
    "stack": 3,
}
INFINITY = -1
NAMES = {number: name for name, number in RESOURCES.items()}


def parse_rlimits(value: object, at: str) -> tuple[tuple[int, int, int], ...]:
    """`{ nofile = 65536, core = 0, nproc = [512, 1024] }` -> ((resource, soft, hard), ...)."""
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{at}: expected a table, like rlimits = {{ nofile = 65536, core = 0 }}")
    out = []
    for name, limit in value.items():
        key = name.lower().removeprefix("rlimit_")
        if key not in RESOURCES:
            raise ConfigError(
                f"{at}.{name}: unknown limit (expected one of {', '.join(RESOURCES)})"
            )
        pair = limit if isinstance(limit, list) else [limit, limit]
        if len(pair) != 2:
            raise ConfigError(f'{at}.{name}: expected a number, "unlimited" or [soft, hard]')
        soft, hard = (_amount(v, f"{at}.{name}") for v in pair)
        if hard != INFINITY and (soft == INFINITY or soft > hard):
            raise ConfigError(
                f"{at}.{name}: the soft limit {_text(soft)} is above the hard {_text(hard)}"
            )
        out.append((RESOURCES[key], soft, hard))
    return tuple(sorted(out))


def _amount(value: object, at: str) -> int:
    if value in ("unlimited", "infinity"):
        return INFINITY
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 63:
        raise ConfigError(f'{at}: expected a whole number >= 0 or "unlimited", got {value!r}')
    return value


def _text(amount: int) -> str:
    return "unlimited" if amount == INFINITY else str(amount)


def describe(rlimits: tuple[tuple[int, int, int], ...]) -> str:
    """As pyinit.toml writes them, for --check."""
    parts = []
    for resource, soft, hard in rlimits:
        amount = _text(soft) if soft == hard else f"[{_text(soft)}, {_text(hard)}]"
        parts.append(f"{NAMES[resource]} = {amount}")
    return "{" + ", ".join(parts) + "}"


def parse_umask(value: object, at: str) -> int:
    """`umask = "027"`: octal, as a string (a TOML number would be read as decimal)."""
    if not isinstance(value, str) or not value or len(value) > 4:
        raise ConfigError(f'{at}: expected an octal string like "027", got {value!r}')
    if any(c not in "01234567" for c in value):
        raise ConfigError(f'{at}: expected octal digits (0-7), like "027", got {value!r}')
    return int(value, 8)


def apply(rlimits: tuple[tuple[int, int, int], ...]) -> str:
    """In the child: set each limit; the first that fails, in words (else "")."""
    import resource

    for number, soft, hard in rlimits:
        try:
            resource.setrlimit(number, (soft, hard))
        except (OSError, ValueError) as e:
            _, now_hard = resource.getrlimit(number)
            reason = getattr(e, "strerror", None) or str(e)
            return (
                f"rlimit {NAMES[number]} = [{_text(soft)}, {_text(hard)}] cannot be set: "
                f"{reason} (its hard limit here is {_text(now_hard)})"
            )
    return ""
