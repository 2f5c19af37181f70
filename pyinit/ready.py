"""How a task says it is ready, and what another task waits for: the `ready` and `after` keys.

Pure parsing, no I/O (probes.py watches; startorder.py decides who starts). The forms
(docs/readiness.md):

    ready = "notify"                 sd_notify READY=1 on the task's own NOTIFY_SOCKET
    ready = "fd:3"                   s6: a newline on fd 3
    ready = "log:listening on"       the first output line matching a regex (bytes)
    ready = "listen:6379"            a TCP socket of the task's network namespace listens
    ready = "tcp:127.0.0.1:6379"     a connect succeeds
    ready = "http://127.0.0.1:8080/healthz"   a GET answers 200-399 (the Kubernetes rule)
    ready = "file:/run/app.ready"    the path exists (a stale one is removed before the start)
    ready = ["pg_isready", "-q"]     the command exits 0 (run as the task, in its own group)

    after = ["db", "migrate:done"]   NAME or NAME:ready, NAME:started, NAME:done, NAME:exited
"""

from __future__ import annotations

from pyinit.errors import ConfigError
from pyinit.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.words import HealthAction

#: What `after` can wait for: ready (the default), exec succeeded, exited 0, exited at all.
CONDITIONS = ("ready", "started", "done", "exited")
#: The forms of `ready`, for the error line.
FORMS = (
    '"notify", "fd:N", "log:REGEX", "listen:PORT", "tcp:[HOST:]PORT", "http://HOST:PORT/PATH", '
    '"file:PATH" or a command ["program", "arg", ...]'
)


class ReadyForm(Record):
    """One parsed `ready` value. `kind` says which fields mean something."""

    __slots__ = ("argv", "fd", "host", "kind", "path", "pattern", "port", "text")
    kind: str  # notify, fd, log, listen, tcp, http, file, command
    text: str  # as written, for log lines and --check
    fd: int
    pattern: bytes
    port: int
    host: str
    path: str  # file: the path; http: the request's path
    argv: tuple[str, ...]  # command

    def __init__(
        self,
        kind: str,
        text: str,
        *,
        fd: int = -1,
        pattern: bytes = b"",
        port: int = 0,
        host: str = "",
        path: str = "",
        argv: tuple[str, ...] = (),
    ) -> None:
        self._set(
            kind=kind, text=text, fd=fd, pattern=pattern, port=port, host=host, path=path, argv=argv
        )

    @property
    def polled(self) -> bool:
        """Looked at every `ready_interval`, rather than told by the task."""
        return self.kind in ("listen", "tcp", "http", "file", "command")


def parse_ready(value: object, at: str) -> ReadyForm:
    """A `ready` value, or one ConfigError line naming the key and the forms."""
    if isinstance(value, list):
        if not value or not all(isinstance(w, str) and w and "\0" not in w for w in value):
            raise ConfigError(f'{at}: expected a command as a list of strings, like ["pg_isready"]')
        return ReadyForm("command", " ".join(value), argv=tuple(value))
    if not isinstance(value, str):
        raise ConfigError(f"{at}: expected {FORMS}, got {value!r}")
    kind, _, arg = value.partition(":")
    if value == "notify":
        return ReadyForm("notify", value)
    if kind == "fd":
        # 0, 1 and 2 are the task's stdin, stdout and stderr: a newline there means nothing.
        if not (arg.isascii() and arg.isdigit()) or not 3 <= int(arg) <= 1023:
            raise ConfigError(f"{at}: expected fd:N with N from 3 to 1023, got {value!r}")
        return ReadyForm("fd", value, fd=int(arg))
    if kind == "log" and arg:
        import re

        try:
            re.compile(arg.encode())
        except re.error as e:
            raise ConfigError(f"{at}: the regex {arg!r} is not valid: {e}") from None
        return ReadyForm("log", value, pattern=arg.encode())
    if kind == "listen":
        return ReadyForm("listen", value, port=_port(arg, value, at))
    if kind == "tcp":
        host, _, port = arg.rpartition(":")
        host = _host(host.strip("[]") or "127.0.0.1", value, at)
        return ReadyForm("tcp", value, host=host, port=_port(port, value, at))
    if kind == "http":
        if not arg.startswith("//"):
            raise ConfigError(f"{at}: expected http://HOST:PORT/PATH, got {value!r}")
        where, slash, path = arg[2:].partition("/")
        host, colon, port = where.rpartition(":") if "]" not in where[-1:] else (where, "", "")
        if not colon:
            host, port = where, "80"
        host = _host(host.strip("[]"), value, at)
        path = slash + path or "/"
        if any(c in path for c in " \r\n\0"):
            raise ConfigError(f"{at}: the path of {value!r} may not hold spaces or line breaks")
        return ReadyForm("http", value, host=host, port=_port(port, value, at), path=path)
    if kind == "https":
        raise ConfigError(f"{at}: https is not supported: probe the plain port ({value!r})")
    if kind == "file" and arg and "\0" not in arg:
        return ReadyForm("file", value, path=arg)
    raise ConfigError(f"{at}: expected {FORMS}, got {value!r}")


def parse_address(value: object, at: str) -> tuple[str, int]:
    """Where the HTTP endpoint listens: "ADDR:PORT" ("[::1]:PORT" for IPv6), or "PORT" for
    127.0.0.1; an IP address, never a name (docs/health.md)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ConfigError(f'{at}: expected "ADDR:PORT", like "127.0.0.1:8099", got {value!r}')
    host, colon, port = value.rpartition(":")
    if not colon:
        host, port = "127.0.0.1", value
    host = host.strip("[]") if host.startswith("[") and host.endswith("]") else host
    if not host:
        raise ConfigError(f'{at}: expected "ADDR:PORT" with an address, like "0.0.0.0:{port}"')
    return _host(host, value, at), _port(port, value, at)


def _host(host: str, value: str, at: str) -> str:
    """An IP address (localhost is 127.0.0.1). Not a name: resolving one may block for
    seconds, and nothing in pyinit's loop may block; tasks of one container share 127.0.0.1."""
    import _socket  # the C module: `socket` and `ipaddress` cost milliseconds to import

    if host == "localhost":
        return "127.0.0.1"
    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return host
    raise ConfigError(
        f"{at}: {host!r} in {value!r} is not an IP address: give the address "
        f"(pyinit never waits on DNS; tasks of one container share 127.0.0.1)"
    )


def _port(text: str, value: str, at: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise ConfigError(f"{at}: expected a TCP port from 1 to 65535 in {value!r}")
    return int(text)


def parse_after(value: object, at: str) -> tuple[tuple[str, str], ...]:
    """An `after` list: ((name, condition), ...), the condition "ready" when none is given."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f'{at}: expected a list of task names, like ["db", "migrate:done"]')
    found: list[tuple[str, str]] = []
    for entry in value:
        name, colon, condition = entry.rpartition(":")
        if not colon or condition not in CONDITIONS:
            name, condition = entry, "ready"
        if not name:
            raise ConfigError(f"{at}: {entry!r} names no task")
        found.append((name, condition))
    return tuple(found)


def cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle of the `after` graph (name -> the names it waits for), as a path that ends where
    it starts (web -> db -> web); None when there is none. Depth first, in name order, so the
    same file always names the same cycle."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(name: str) -> list[str] | None:
        if name in on_path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        path.append(name)
        on_path.add(name)
        for needed in graph.get(name, ()):
            found = visit(needed)
            if found:
                return found
        path.pop()
        on_path.discard(name)
        done.add(name)
        return None

    for name in sorted(graph):
        found = visit(name)
        if found:
            return found
    return None


def levels(graph: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """The start order as levels: each level needs only the levels before it. `graph` must
    have no cycle (check with `cycle` first); names it only mentions are in level 0."""
    names = set(graph) | {n for needs in graph.values() for n in needs}
    level: dict[str, int] = {}

    def depth(name: str) -> int:
        if name not in level:
            level[name] = 1 + max((depth(n) for n in graph.get(name, ())), default=-1)
        return level[name]

    for name in names:
        depth(name)
    out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for name in sorted(names):
        out[level[name]].append(name)
    return out


def stop_levels(graph: dict[str, tuple[str, ...]], names: list[str]) -> list[list[str]]:
    """The stop order of `names` (each in one level, in the order given): first what nothing
    waits for, then what only those waited for, and so on; what `graph` (name -> what it
    waits for) leaves out is in the first level."""
    waited_by: dict[str, list[str]] = {}
    for name, needs in graph.items():
        for needed in needs:
            waited_by.setdefault(needed, []).append(name)
    level: dict[str, int] = {}

    def depth(name: str, path: frozenset[str]) -> int:
        if name not in level:
            above = [d for d in waited_by.get(name, ()) if d not in path]
            level[name] = 1 + max((depth(d, path | {name}) for d in above), default=-1)
        return level[name]

    out: list[list[str]] = []
    for name in names:
        number = depth(name, frozenset())
        while len(out) <= number:
            out.append([])
        out[number].append(name)
    return [names_ for names_ in out if names_]


#: What an unhealthy task gets: restarted (counted in its crash-loop limit), stopped for good,
#: the run ended with its status, or a warning only.
HEALTH_ACTIONS: tuple[HealthAction, ...] = ("restart", "stop", "exit", "none")
HEALTH_KEYS = ("check", "interval", "timeout", "retries", "start_period", "action", "critical")


class HealthSettings(Record):
    """A `[task.NAME.health]` table (docs/health.md)."""

    __slots__ = ("action", "check", "critical", "interval", "retries", "start_period", "timeout")
    check: ReadyForm  # listen, tcp, http, file, command or watchdog
    interval: float
    timeout: float
    retries: int
    start_period: float
    action: HealthAction
    critical: bool  # counted in `pyinitctl health`

    def __init__(
        self,
        check: ReadyForm,
        interval: float = 10.0,
        timeout: float = 2.0,
        retries: int = 3,
        start_period: float = 0.0,
        action: HealthAction = "restart",
        critical: bool = True,
    ) -> None:
        self._set(
            check=check,
            interval=interval,
            timeout=timeout,
            retries=retries,
            start_period=start_period,
            action=action,
            critical=critical,
        )


def parse_health(value: object, at: str) -> HealthSettings:
    """A `health` table, or one ConfigError line naming the key."""
    if not isinstance(value, dict):
        raise ConfigError(f"{at}: expected a table ([task.NAME.health] with check = ...)")
    unknown = sorted(set(value) - set(HEALTH_KEYS))
    if unknown:
        raise ConfigError(
            f"{at}.{unknown[0]}: unknown key (expected one of {', '.join(HEALTH_KEYS)})"
        )
    if "check" not in value:
        raise ConfigError(f'{at}: expected check = "tcp:PORT", "http://...", ["cmd", ...] ...')
    if value["check"] == "watchdog":  # sd_notify WATCHDOG=1 at least every `timeout`
        check = ReadyForm("watchdog", "watchdog")
    else:
        check = parse_ready(value["check"], f"{at}.check")
    if check.kind in ("notify", "fd", "log"):
        raise ConfigError(
            f"{at}.check: {check.text!r} says when a task is ready, once; a health check is "
            f"asked again and again: use listen:, tcp:, http://, file:, a command or watchdog"
        )
    fields: dict[str, object] = {"check": check}
    for key in ("interval", "timeout", "start_period"):
        if key in value:
            number = value[key]
            low = 0.0 if key == "start_period" else 0.01
            if (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or not low <= number <= 86400
            ):
                raise ConfigError(
                    f"{at}.{key}: expected seconds from {low:g} to 86400, got {number!r}"
                )
            fields[key] = float(number)
    if "retries" in value:
        retries = value["retries"]
        if isinstance(retries, bool) or not isinstance(retries, int) or not 1 <= retries <= 1000:
            raise ConfigError(
                f"{at}.retries: expected a whole number from 1 to 1000, got {retries!r}"
            )
        fields["retries"] = retries
    if "action" in value:
        if value["action"] not in HEALTH_ACTIONS:
            raise ConfigError(
                f"{at}.action: expected one of {', '.join(HEALTH_ACTIONS)}, got {value['action']!r}"
            )
        fields["action"] = value["action"]
    if "critical" in value:
        if not isinstance(value["critical"], bool):
            raise ConfigError(f"{at}.critical: expected true or false, got {value['critical']!r}")
        fields["critical"] = value["critical"]
    return HealthSettings(**fields)  # type: ignore[arg-type]
