"""Everything pyinit is told, read once, into immutable records (spec §1-§2, §5).

This is the only reader of the command line's options, `os.environ` and `pyinit.toml`'s values;
`workdir.py` finds the files (stage files, their trust, the TOML document) and this turns them
into a `Plan`: what to run, in which order, with which settings, and where each setting came
from (for `--check`).

Precedence: command line > environment > `pyinit.toml` > built-in default. A per-task table in
`pyinit.toml` is more specific than any default and wins over it.

The records are immutable slotted classes (`record.py`), not dataclasses: start-up time.
"""

from __future__ import annotations

import os

from pyinit import options, signals, values
from pyinit import workdir as workdir_files
from pyinit.errors import ConfigError, UsageError
from pyinit.mode import PYINIT, TRC, Mode
from pyinit.record import Record
from pyinit.supervisor import NEVER, ON_FAILURE, RESTART_POLICIES, RestartRules
from pyinit.values import INF
from pyinit.workdir import BASH_CODE, EXEC, STAGES, check_file_safe

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from pyinit.ready import HealthSettings, ReadyForm
    from pyinit.schedule import Schedule
    from pyinit.words import (
        Action,
        How,
        LogFormat,
        MainAfter,
        OnFailure,
        SignalTarget,
        Stage,
        StopOrder,
        TaskType,
        WaitPolicyName,
    )

WAIT_POLICIES: tuple[WaitPolicyName, ...] = ("wait_any", "wait_err", "wait_all", "wait_forever")
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
SIGNAL_TARGETS: tuple[SignalTarget, ...] = ("group", "pid")
#: systemd's words: "simple" runs in the foreground; a "forking" one's exit 0 means its daemon
#: runs (docs/leftovers.md).
TASK_TYPES: tuple[TaskType, ...] = ("simple", "forking")
ON_FAILURES: tuple[OnFailure, ...] = ("warn", "exit")
MAIN_AFTER: tuple[MainAfter, ...] = ("ready", "started")
STOP_ORDERS: tuple[StopOrder, ...] = ("dependents-first", "parallel")
SIGTERM = signals.SIGTERM
#: The grace of group runs: below Docker's 10 s with the default halt timeout (spec §6).
DEFAULT_GRACE = 5.0
#: Where the grace of a tini-style run (a main command only) comes from, for --check.
TINI_GRACE = "a main command only (tini-style run): no SIGKILL"
LOG_NS = {"boot": "main", "main": "sync"}

#: The built-in restart rules (a record: immutable, so one is shared).
DEFAULT_RULES = RestartRules()


class TaskSettings(Record):
    """How one task is supervised and started (the `[defaults]`/`[task.NAME]` keys)."""

    __slots__ = (
        "after",
        "cwd",
        "env",
        "grace",
        "group",
        "health",
        "main_after",
        "on_failure",
        "pid_file",
        "prefix",
        "ready",
        "ready_interval",
        "ready_timeout",
        "rlimits",
        "rules",
        "schedule",
        "signal_target",
        "signals",
        "stop_delay",
        "stop_order",
        "stop_signal",
        "type",
        "umask",
        "user",
    )
    rules: RestartRules  # restart, its backoff and crash-loop limit: built once, by _settings()
    stop_signal: int
    grace: float  # INF: never SIGKILL
    signals: frozenset[int] | None  # the forwarded signals it gets; None: all
    signal_target: SignalTarget  # "group" (its process group) or "pid" (its pid only)
    user: str | None
    group: str | None
    cwd: str | None
    env: tuple[tuple[str, str], ...]
    prefix: str | None
    type: TaskType  # "simple" or "forking"
    pid_file: str | None  # where a forking task's daemon writes its pid
    ready: ReadyForm | None  # how it tells it is ready (ready.py); None: when exec succeeded
    ready_timeout: float  # 0: wait for ever
    ready_interval: float  # between looks, for the polled forms
    after: tuple[tuple[str, str], ...]  # (task name, condition) it waits for before it starts
    main_after: MainAfter  # [defaults]: the foreground waits for async tasks "ready", or "started"
    stop_order: StopOrder  # [defaults]: "dependents-first" (by `after`) or "parallel"
    health: HealthSettings | None  # [task.NAME.health]: checked while it runs (docs/health.md)
    stop_delay: float  # the shutdown gives it its stop signal this long after the others'
    schedule: Schedule | None  # runs at these times, not with the others (docs/schedules.md)
    on_failure: OnFailure  # a scheduled run's failure: "warn", or "exit" (ends the run)
    rlimits: tuple[tuple[int, int, int], ...]  # (RLIMIT_*, soft, hard), set before the exec
    umask: int | None  # the task's umask, or pyinit's own

    def __init__(
        self,
        *,
        rules: RestartRules = DEFAULT_RULES,
        stop_signal: int = SIGTERM,
        grace: float = DEFAULT_GRACE,
        signals: frozenset[int] | None = None,
        signal_target: SignalTarget = "group",
        user: str | None = None,
        group: str | None = None,
        cwd: str | None = None,
        env: tuple[tuple[str, str], ...] = (),
        prefix: str | None = None,
        type: TaskType = "simple",
        pid_file: str | None = None,
        ready: ReadyForm | None = None,
        ready_timeout: float = 0.0,
        ready_interval: float = 0.5,
        after: tuple[tuple[str, str], ...] = (),
        main_after: MainAfter = "ready",
        stop_order: StopOrder = "dependents-first",
        health: HealthSettings | None = None,
        stop_delay: float = 0.0,
        schedule: Schedule | None = None,
        on_failure: OnFailure = "warn",
        rlimits: tuple[tuple[int, int, int], ...] = (),
        umask: int | None = None,
    ) -> None:
        self._set(
            rules=rules,
            stop_signal=stop_signal,
            grace=grace,
            signals=signals,
            signal_target=signal_target,
            user=user,
            group=group,
            cwd=cwd,
            env=env,
            prefix=prefix,
            type=type,
            pid_file=pid_file,
            ready=ready,
            ready_timeout=ready_timeout,
            ready_interval=ready_interval,
            after=after,
            main_after=main_after,
            stop_order=stop_order,
            health=health,
            stop_delay=stop_delay,
            schedule=schedule,
            on_failure=on_failure,
            rlimits=rlimits,
            umask=umask,
        )

    def replace(self, **changes: object) -> TaskSettings:
        return TaskSettings(**self._changed(changes))  # type: ignore[arg-type]

    def as_keys(self) -> list[tuple[str, object]]:
        """Every setting as pyinit.toml names it, in name order: the restart rules' keys
        are flat there (`restart`, `max_restarts`, ...), as on the command line."""
        flat: dict[str, object] = {k: getattr(self, k) for k in self.__slots__ if k != "rules"}
        flat.update((k, getattr(self.rules, k)) for k in RULE_KEYS)
        return sorted(flat.items())


#: The keys of a task's restart rules (supervisor.RestartRules), flat in pyinit.toml.
RULE_KEYS = (
    "restart",
    "restart_delay",
    "restart_max_delay",
    "restart_reset",
    "max_restarts",
    "restart_window",
    "no_restart_code",
)


class Item(Record):
    """One thing to run: a stage file, a `-B/-D/-F/-H` string, or the main command."""

    __slots__ = ("argv", "how", "label", "name", "origin", "stage")
    stage: Stage  # boot | async | sync | halt | main
    name: str  # the task name: prefixes, pyinit.toml, PYINIT_TASK
    how: How  # EXEC, BASH_FILE or BASH_CODE
    argv: tuple[str, ...]  # EXEC: the argv; BASH_FILE: (path,); BASH_CODE: (code,)
    label: str  # what the log lines show: the path, the code, or the args joined
    origin: str  # where it was declared, for --check: "" (the path, the command line, -D)

    def __init__(
        self,
        *,
        stage: Stage,
        name: str,
        how: How,
        argv: tuple[str, ...],
        label: str,
        origin: str = "",
    ) -> None:
        self._set(stage=stage, name=name, how=how, argv=argv, label=label, origin=origin)

    @property
    def ns(self) -> str:
        """The namespace its log lines carry, as TrivialRC's main log shows them: boot items ran
        inside trc's main process, and the main command was trc's last sync item."""
        return LOG_NS.get(self.stage, self.stage)


class Plan(Record):
    """The whole run, decided before anything starts."""

    __slots__ = (
        "action",
        "args",
        "async_items",
        "boot",
        "control",
        "defaults",
        "halt",
        "halt_timeout",
        "http",
        "log_json",
        "main",
        "mode",
        "pdeathsig",
        "prefix",
        "prefix_main",
        "remap",
        "rewrite",
        "scheduled",
        "self_name",
        "skipped",
        "sources",
        "start_dir",
        "sync",
        "tasks",
        "termination_log",
        "timeout",
        "tini_style",
        "tz",
        "verbosity",
        "wait",
        "warnings",
        "workdir",
    )
    action: Action  # run | check
    workdir: str
    boot: tuple[Item, ...]
    async_items: tuple[Item, ...]
    sync: tuple[Item, ...]
    halt: tuple[Item, ...]
    main: Item | None
    scheduled: tuple[Item, ...]  # tasks with a `schedule`: started at their times
    wait: WaitPolicyName
    mode: Mode  # pyinit's own, or TrivialRC's (mode.py)
    self_name: str  # the name in log lines (SELF_NAME)
    verbosity: int
    log_json: bool
    prefix: str
    prefix_main: bool
    timeout: float | None
    halt_timeout: float
    rewrite: dict[int, int]  # received signal -> forwarded signal (0 = drop)
    remap: frozenset[int]  # tini -e: statuses that become 0
    pdeathsig: int
    defaults: TaskSettings
    tasks: dict[str, TaskSettings]  # per task name, defaults applied
    sources: dict[str, str]  # setting -> where it came from
    skipped: tuple[tuple[str, str], ...]  # (path, why) of stage-file look-alikes not run
    args: tuple[str, ...]  # the command line's item words, for boot's `set --`
    termination_log: str  # where the reason for the end goes, if that file exists
    control: str  # PYINIT_CONTROL: where the control socket goes; "" the default; "off"
    http: tuple[str, int] | None  # --http: where the probe endpoint listens (endpoint.py)
    start_dir: str  # pyinit's directory at start: where tasks start
    tini_style: bool  # a main command only: its lifetime is its own (no grace)
    tz: str  # TZ at start: the time zone of the schedules ("" is UTC)
    warnings: tuple[str, ...]  # said at start, and by --check (which then exits 1)

    def __init__(self, **fields: object) -> None:
        self._set(**fields)

    def without_boot(self) -> Plan:
        """The same plan once boot has run (after `set --` rewrote the command line)."""
        return Plan(**self._changed({"boot": ()}))

    def items(self) -> Iterator[Item]:
        yield from self.boot
        yield from self.async_items
        yield from self.scheduled
        yield from self.sync
        if self.main is not None:
            yield self.main
        yield from self.halt

    def settings(self, name: str) -> TaskSettings:
        return self.tasks.get(name, self.defaults)

    def stop_levels(self) -> list[list[str]] | None:
        """The order the shutdown stops the tasks in, when any declares `after` and
        `stop_order` is not "parallel": dependents before what they wait for, level by level
        (the foreground counts as waiting for the async tasks that declare `ready`, when it
        waits for them). None: everything at once."""
        if self.defaults.stop_order == "parallel":
            return None
        graph = {name: tuple(n for n, _ in s.after) for name, s in self.tasks.items() if s.after}
        if not graph:
            return None
        names = [i.name for i in self.items() if i.stage in ("async", "sync", "main")]
        if self.defaults.main_after == "ready":
            ready = tuple(i.name for i in self.async_items if self.settings(i.name).ready)
            for item in [*self.sync, *([self.main] if self.main else [])]:
                graph[item.name] = (*graph.get(item.name, ()), *ready)
        from pyinit.ready import stop_levels

        return stop_levels(graph, names)


# ---------------------------------------------------------------------------------------------
# The command line

# The options are one table, options.py: long form, short form, variable, kind, help.


def parse_args(argv: list[str]) -> tuple[dict[str, object], list[str], list[tuple[str, str]]]:
    """Split argv into options, the main command, and the ordered `-B/-D/-F/-H` items.

    Parsing stops at `--` or at the first word that is not an option, so the command's own
    options are never taken for pyinit's (tini's `tini ls -l` prints tini's licence).
    """
    opts: dict[str, object] = {}
    items: list[tuple[str, str]] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return opts, argv[i + 1 :], items
        if not word.startswith("-") or word == "-":
            return opts, argv[i:], items
        if word.startswith("--"):
            i = _long_option(argv, i, opts, items)
        else:
            i = _short_options(argv, i, opts, items)
    return opts, [], items


def _long_option(
    argv: list[str], i: int, opts: dict[str, object], items: list[tuple[str, str]]
) -> int:
    """`--name`, `--name=value` or `--name value` at argv[i]; the index after it."""
    longname, eq, inline = argv[i][2:].partition("=")
    if longname not in options.LONG:
        raise UsageError(f"unknown option --{longname} (see --help)")
    key, kind = options.LONG[longname].key, options.LONG[longname].kind
    if kind not in ("value", "list"):
        if eq:
            raise UsageError(f"option --{longname} takes no value")
        _store(opts, items, key, kind, "")
    elif eq:
        _store(opts, items, key, kind, inline)
    elif i + 1 < len(argv):
        i += 1
        _store(opts, items, key, kind, argv[i])
    else:
        raise UsageError(f"option --{longname} needs a value")
    return i + 1


def _short_options(
    argv: list[str], i: int, opts: dict[str, object], items: list[tuple[str, str]]
) -> int:
    """A cluster of short options at argv[i] (`-vv`, `-sg`, `-e3`, `-w DIR`); the index after
    it (and after its value, when that is the next word)."""
    word = argv[i]
    for j in range(1, len(word)):
        letter = word[j]
        if letter not in options.SHORT:
            raise UsageError(f"unknown option -{letter} (see --help)")
        key, kind = options.SHORT[letter].key, options.SHORT[letter].kind
        if kind not in ("value", "list"):
            _store(opts, items, key, kind, "")
            continue
        if j + 1 < len(word):
            value = word[j + 1 :]
        elif i + 1 < len(argv):
            i += 1
            value = argv[i]
        else:
            raise UsageError(f"option -{letter} needs a value")
        _store(opts, items, key, kind, value)
        break
    return i + 1


def _store(
    opts: dict[str, object], items: list[tuple[str, str]], key: str, kind: str, value: str
) -> None:
    if key in ("B", "D", "F", "H"):
        items.append((key, value))
    elif kind == "list":
        existing = opts.setdefault(key, [])
        assert isinstance(existing, list)
        existing.append(value)
    elif kind == "count":
        count = opts.get(key, 0)
        assert isinstance(count, int)
        opts[key] = count + 1
    elif kind == "flag":
        opts[key] = True
    else:
        opts[key] = value


# ---------------------------------------------------------------------------------------------
# Values


def _env_flag(environ: Mapping[str, str], name: str) -> bool:
    """A yes/no environment variable: 1/true/yes or 0/false/no (or empty); anything else is an
    error rather than a silent "no"."""
    value = environ.get(name, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected 1/true/yes or 0/false/no, got {environ[name]!r}")


def _signal_set(value: object, what: str) -> frozenset[int] | None:
    """`signals`: "all" (None), "none" (the empty set) or a list of signal names or numbers."""
    if value == "all":
        return None
    if value == "none":
        return frozenset()
    if not isinstance(value, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in value
    ):
        raise ConfigError(f'{what}: expected "all", "none" or a list of signals, got {value!r}')
    return frozenset(values.signal(v, what) for v in value)


def _rewrite(words: list[str], what: str) -> dict[int, int]:
    """`TERM:QUIT` (or dumb-init's `15:3`); a target of 0 drops the signal."""
    table: dict[int, int] = {}
    for word in words:
        for pair in word.split(","):
            source, colon, target = pair.partition(":")
            if not colon:
                raise ConfigError(f"{what}: expected SIG:SIG, got {pair!r}")
            table[values.signal(source, what)] = (
                0 if target.strip() == "0" else values.signal(target, what)
            )
    return table


def _file_item(stage: Stage, path: str) -> Item:
    name, how, argv = workdir_files.how_to_run(stage, path)
    return Item(stage=stage, name=name, how=how, argv=argv, label=path)


# ---------------------------------------------------------------------------------------------
# pyinit.toml

TASK_KEYS = {
    "restart": "restart",
    "restart_delay": "seconds",
    "restart_max_delay": "seconds",
    "restart_reset": "seconds",
    "max_restarts": "count",
    "restart_window": "seconds",
    "no_restart_code": "code",
    "stop_signal": "signal",
    "grace": "grace",
    "signals": "signals",
    "signal_target": "target",
    "user": "user",
    "group": "group",
    "cwd": "path",
    "env": "table",
    "prefix": "text",
    "type": "type",
    "pid_file": "path",
    "ready": "ready",
    "ready_timeout": "seconds",
    "ready_interval": "interval",
    "after": "after",
    "main_after": "main_after",
    "stop_order": "stop_order",
    "health": "health",
    "stop_delay": "seconds",
    "schedule": "schedule",
    "on_failure": "on_failure",
    "rlimits": "rlimits",
    "umask": "umask",
}

#: The parser of each scalar kind of TASK_KEYS, for every source: pyinit.toml's value, or the
#: text of an option or environment variable (`text=True`). `--grace`, `PYINIT_GRACE` and
#: `grace =` are one parser (values.py).
SCALARS: dict[str, Callable[[object, str, bool], object]] = {
    "restart": lambda value, at, text: values.choice(value, RESTART_POLICIES, at),
    "seconds": lambda value, at, text: values.seconds(value, at, text=text),
    "grace": lambda value, at, text: values.seconds(value, at, text=text, infinite=True),
    "interval": lambda value, at, text: values.interval(value, at, text=text),
    "count": lambda value, at, text: values.count(value, at, text=text),
    "code": lambda value, at, text: values.count(value, at, text=text, top=255),
    "signal": lambda value, at, text: values.signal(value, at),
}
#: Keys that mean something for one task only, or for the whole group only.
TASK_ONLY = frozenset({"ready", "after", "schedule", "on_failure"})
#: Keys that declare a task in pyinit.toml instead of a stage file (docs/tasks.md).
DECLARING = ("command", "run", "stage")
DEFAULTS_ONLY = frozenset({"main_after", "stop_order"})


def _declared(toml_path: str, name: str, table: object) -> Item | None:
    """The task a `[task.NAME]` table declares with `command` (an argv, no shell) or `run`
    (bash code), in `stage` (async unless said), or None for a table that only tunes one."""
    if not isinstance(table, dict) or not any(key in table for key in DECLARING):
        return None
    at = f"{toml_path}: task.{name}"
    command, code = table.get("command"), table.get("run")
    if command is not None and code is not None:
        raise ConfigError(f"{at}: command and run both given: one task runs one of them")
    if command is None and code is None:
        raise ConfigError(f'{at}.stage: goes with command = ["prog", ...] or run = "bash code"')
    stage = table.get("stage", "async")
    if stage not in STAGES:
        raise ConfigError(f"{at}.stage: expected one of {', '.join(STAGES)}, got {stage!r}")
    if name == "main":
        raise ConfigError(f"{at}: [task.main] names the main command; call this task otherwise")
    origin = f"{toml_path} [task.{name}]"
    if command is not None:
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(w, str) and "\0" not in w for w in command)
            or not command[0]
        ):
            raise ConfigError(
                f'{at}.command: expected an argv, like ["redis-server", "--port", "6379"]'
            )
        argv = tuple(command)
        return Item(
            stage=stage, name=name, how=EXEC, argv=argv, label=" ".join(argv), origin=origin
        )
    if not isinstance(code, str) or not code.strip() or "\0" in code:
        raise ConfigError(
            f'{at}.run: expected bash code as a string, like "exec worker --queue jobs"'
        )
    return Item(stage=stage, name=name, how=BASH_CODE, argv=(code,), label=code, origin=origin)


def _procfile_tasks(
    given: str | None,
    said: str,
    port: object,
    environ: Mapping[str, str],
    start_dir: str,
    root: str,
    has_files: bool,
    staged: dict[str, list[Item]],
    sources: dict[str, str],
) -> dict[str, dict[str, str]]:
    """A Procfile's tasks, appended to `staged["async"]`; each one's added environment (the
    `.env` and its PORT) by name. The work dir's Procfile counts only without stage files."""
    if given is not None:
        path = os.path.join(start_dir, given)
    else:
        path = os.path.join(root, "Procfile")
        if has_files or not os.path.isfile(path):
            return {}
        sources["procfile"] = "the work dir"
    try:
        with open(path, "rb") as f:
            check_file_safe(path, os.fstat(f.fileno()))
            text = f.read().decode(errors="replace")
    except OSError as e:  # named as given: the start directory is not the reader's business
        raise ConfigError(f"{said} {given if given is not None else path}: {e.strerror}") from None
    from pyinit import procfile

    entries = procfile.parse(text, path)
    dotenv: dict[str, str] = {}
    try:
        with open(os.path.join(os.path.dirname(path), ".env")) as f:  # as honcho: no error
            dotenv = procfile.parse_env(f.read())
    except (OSError, UnicodeDecodeError):
        pass
    if port is not None:
        sources["port"] = "command line"
    base = procfile.base_port(dotenv, None if port is None else str(port), environ.get("PORT"))
    taken = {item.name: item for items in staged.values() for item in items}
    added: dict[str, dict[str, str]] = {}
    for number, (name, command, line) in enumerate(entries):
        if name in taken:
            where = taken[name].origin or taken[name].label
            raise ConfigError(f"{path}:{line}: {name} is already a task ({where}): rename one")
        staged["async"].append(
            Item(
                stage="async",
                name=name,
                how=EXEC,
                argv=("sh", "-c", command),
                label=command,
                origin=f"{path}:{line}",
            )
        )
        added[name] = {**dotenv, "PORT": str(base + 100 * number)}
    return added


def _join(files: list[Item], declared: list[Item]) -> list[Item]:
    """A stage's files and its tasks declared in pyinit.toml, in name order: the declared go
    in before the first file whose name sorts after theirs; the files keep their own order."""
    out: list[Item] = []
    pending = sorted(declared, key=lambda item: item.name)
    for item in files:
        while pending and pending[0].name < item.name:
            out.append(pending.pop(0))
        out.append(item)
    return out + pending


def _toml_settings(table: object, where: str, start_dir: str) -> dict[str, object]:
    """Check one `[defaults]` or `[task.NAME]` table and turn it into TaskSettings fields; a
    relative `cwd` is taken from `start_dir`, as every relative path of the command line."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    in_defaults = where.endswith(": defaults")
    fields: dict[str, object] = {}
    for key, value in table.items():
        at = f"{where}.{key}"
        if key in DECLARING and not in_defaults:
            continue  # _declared read it
        kind = TASK_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{at}: unknown key (expected one of {', '.join(TASK_KEYS)})")
        if key in TASK_ONLY and in_defaults:
            raise ConfigError(f"{at}: {key} belongs in [task.NAME] (one task), not [defaults]")
        if key in DEFAULTS_ONLY and not in_defaults:
            raise ConfigError(f"{at}: {key} belongs in [defaults] (the whole group)")
        scalar = SCALARS.get(kind)
        fields[key] = scalar(value, at, False) if scalar else PARSERS[kind](value, at)
        if key == "cwd":
            fields[key] = os.path.join(start_dir, str(fields[key]))
    return fields


# The parsers of the kinds of TASK_KEYS that only pyinit.toml gives (tables, lists and the
# words of one key). The forms of `ready`, `after`, `health`, rlimits, umask and schedules
# live in modules imported only for a file that uses them: start-up time.


def _ready_form(value: object, at: str) -> object:
    from pyinit import ready

    return ready.parse_ready(value, at)


def _after(value: object, at: str) -> object:
    from pyinit import ready

    return ready.parse_after(value, at)


def _health(value: object, at: str) -> object:
    from pyinit import ready

    return ready.parse_health(value, at)


def _rlimits(value: object, at: str) -> object:
    from pyinit import limits

    return limits.parse_rlimits(value, at)


def _umask(value: object, at: str) -> object:
    from pyinit import limits

    return limits.parse_umask(value, at)


def _schedule(value: object, at: str) -> object:
    from pyinit import schedule

    return schedule.parse(value, at)


def _string_table(value: object, at: str) -> tuple[tuple[str, str], ...]:
    """`env = { NAME = "value" }`: strings, and numbers as compose takes them."""
    if not isinstance(value, dict):
        key = at.rsplit(".", 1)[-1]
        raise ConfigError(
            f'{at}: expected a table of strings ({key} = {{ NAME = "value" }}), got {value!r}'
        )
    for name, text in value.items():
        if isinstance(text, bool) or not isinstance(text, str | int | float):
            raise ConfigError(f"{at}.{name}: expected a string, got {text!r}")
    return tuple((str(k), str(v)) for k, v in value.items())


def _string(check: Callable[[str, str], object]) -> Callable[[object, str], str]:
    """A parser of a string key that `check(value, at)` accepts."""

    def parse(value: object, at: str) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{at}: expected a string, got {value!r}")
        check(value, at)
        return value

    return parse


def _path(value: str, at: str) -> None:
    if not value or "\0" in value:
        raise ConfigError(f"{at}: expected a path, got {value!r}")


#: A prefix is written before every output line: keep it a prefix.
PREFIX_LIMIT = 1024


def check_prefix(fmt: str, what: str) -> str:
    """A prefix format may use {name}, {pid}, {stage} and {time}, nothing else."""
    from _string import formatter_parser  # the parser str.format uses (no `string` import)

    try:
        fields = [(name, spec) for _, name, spec, _ in formatter_parser(fmt) if name is not None]
        # A width (`{name:>999999999}`) would build that many bytes for every output line.
        if any(spec and any(c.isdigit() for c in spec) and len(spec) > 3 for _, spec in fields):
            raise ValueError("width")
        rendered = fmt.format(name="n" * 64, pid=4194304, stage="async", time="0" * 19)
    except (KeyError, IndexError, ValueError, AttributeError):
        raise ConfigError(
            f"{what}: expected a prefix format using {{name}} {{pid}} {{stage}} "
            f"{{time}}, got {fmt!r}"
        ) from None
    if len(rendered) > PREFIX_LIMIT:
        raise ConfigError(
            f"{what}: the prefix would be {len(rendered)} bytes long; at most "
            f"{PREFIX_LIMIT} are allowed"
        )
    return fmt


#: The largest uid/gid: (uid_t)-1 means "no change" to setuid(2).
MAX_ID = 2**32 - 2


def _check_account(key: str, value: str, at: str) -> None:
    """`user`/`group` must exist now: failing at start beats failing at the first restart.
    A number is taken as an id (it need not be in /etc/passwd, as with `docker run -u`)."""
    import grp
    import pwd

    if value.isascii() and value.isdigit():
        if int(value) > MAX_ID:
            raise ConfigError(f"{at}: {key} id {value} is out of range")
        number = int(value)
    else:
        try:
            number = pwd.getpwnam(value).pw_uid if key == "user" else grp.getgrnam(value).gr_gid
        except (KeyError, ValueError):  # ValueError: an embedded NUL
            raise ConfigError(f"{at}: no such {key} {value!r}") from None
    # Without root, only the account pyinit already runs as is possible (a no-op, skipped at
    # spawn): say so now rather than fail at the first start with EPERM.
    own = os.geteuid() if key == "user" else os.getegid()
    if os.geteuid() != 0 and number != own:
        raise ConfigError(
            f"{at}: pyinit runs as uid {os.geteuid()}, not root, so it cannot "
            f"switch to {key} {value!r} ({'uid' if key == 'user' else 'gid'} "
            f"{number}); drop the key or run pyinit as root"
        )


#: The parser of each kind of TASK_KEYS that is not a scalar (SCALARS), by kind.
PARSERS: dict[str, Callable[[object, str], object]] = {
    "ready": _ready_form,
    "after": _after,
    "health": _health,
    "rlimits": _rlimits,
    "umask": _umask,
    "schedule": _schedule,
    "signals": _signal_set,
    "table": _string_table,
    "on_failure": lambda value, at: values.choice(str(value), ON_FAILURES, at),
    "main_after": lambda value, at: values.choice(str(value), MAIN_AFTER, at),
    "stop_order": lambda value, at: values.choice(str(value), STOP_ORDERS, at),
    "user": _string(lambda value, at: _check_account("user", value, at)),
    "group": _string(lambda value, at: _check_account("group", value, at)),
    "target": _string(lambda value, at: values.choice(value, SIGNAL_TARGETS, at)),
    "type": _string(lambda value, at: values.choice(value, TASK_TYPES, at)),
    "path": _string(_path),
    "text": _string(check_prefix),
}


def _http(
    given: str | None,
    said: str,
    document: dict[str, object],
    toml_path: str,
    sources: dict[str, str],
) -> tuple[str, int] | None:
    """--http, PYINIT_HTTP, or `http` in [control] of pyinit.toml; "" and "off" are none."""
    control = document.get("control", {})
    if not isinstance(control, dict):
        raise ConfigError(f"{toml_path}: control must be a table ([control] with http = ...)")
    unknown = sorted(set(control) - {"http"})
    if unknown:
        raise ConfigError(f"{toml_path}: control.{unknown[0]}: unknown key (expected http)")
    if given in ("", "off") or (given is None and "http" not in control):
        return None
    from pyinit import ready  # only when it is asked for: start-up time

    if given is not None:
        return ready.parse_address(given, said)
    sources["http"] = toml_path
    return ready.parse_address(control["http"], f"{toml_path}: control.http")


def _unknown_top_level(toml_path: str, key: str, value: object) -> str:
    """The error for a top-level key or table other than [defaults] and [task.NAME]: a task
    setting written above every table (`restart = "always"`) says where it belongs."""
    if key in TASK_KEYS and not isinstance(value, dict):
        return (
            f"{toml_path}: {key} at the top level: task settings go in [defaults] (every "
            f"task) or [task.NAME] (one task)"
        )
    if not isinstance(value, dict):
        return (
            f"{toml_path}: unknown key {key} at the top level (expected the tables "
            f"[defaults] and [task.NAME])"
        )
    return f"{toml_path}: unknown table [{key}] (expected [defaults], [task.NAME] and [control])"


def _unknown_task(toml_path: str, name: str, names: set[str]) -> str:
    """The warning for a [task.NAME] table that names no task of this run."""
    import difflib  # only on this path

    close = difflib.get_close_matches(name, sorted(names), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    known = ", ".join(sorted(names)) or "none"
    return (
        f"{toml_path}: [task.{name}]: no task named {name!r} in this run{hint}; "
        f"ignored (tasks: {known})"
    )


def _settings(fields: Mapping[str, object], where: str) -> TaskSettings:
    """One task's settings from its merged keys (the defaults', then its own table's), with
    the rules between keys. Its restart rules are built here, once, as the supervisor takes
    them: a restart_delay above the built-in maximum raises the maximum, unless a maximum was
    given too; a scheduled task's next run is its schedule's (never restarted); a health
    check's action "restart" asks for on-failure at least (docs/health.md)."""
    rule = {k: v for k, v in fields.items() if k in RULE_KEYS}
    delay = rule.setdefault("restart_delay", DEFAULT_RULES.restart_delay)
    assert isinstance(delay, float)  # values.seconds made it
    maximum = rule.setdefault("restart_max_delay", max(DEFAULT_RULES.restart_max_delay, delay))
    assert isinstance(maximum, float)
    if maximum < delay:
        raise ConfigError(
            f"{where}: restart_max_delay ({maximum:g}) is below restart_delay ({delay:g})"
        )
    settings = TaskSettings(**{k: v for k, v in fields.items() if k not in RULE_KEYS})  # type: ignore[arg-type]
    health, ready = settings.health, settings.ready
    if settings.schedule is not None:
        rule["restart"] = NEVER
    elif health is not None and health.action == "restart" and rule.get("restart") in (None, NEVER):
        rule["restart"] = ON_FAILURE
    if health is not None and health.check.kind == "watchdog" and ready and ready.kind != "notify":
        raise ConfigError(
            f'{where}: health check "watchdog" listens on the notify socket, which '
            f'ready = {ready.text!r} does not give: use ready = "notify", or no ready'
        )
    try:
        rules = RestartRules(**rule)  # type: ignore[arg-type]
    except ValueError as e:  # each value's parser checked it: this would be a pyinit bug
        raise ConfigError(f"{where}: {e}") from None
    return settings.replace(rules=rules)


# ---------------------------------------------------------------------------------------------
# Putting it together


def _verbosity(
    opts: dict[str, object], environ: Mapping[str, str], mode: Mode, sources: dict[str, str]
) -> int:
    """-q, -v, -vv, -vvv, else TrivialRC's RC_VERBOSE(_EXTRA), else the mode's default."""
    verbosity = mode.default_verbosity
    if environ.get("RC_VERBOSE") == "true":
        verbosity = 3 if environ.get("RC_VERBOSE_EXTRA") == "true" else 2
    count = opts.get("verbose", 0)
    assert isinstance(count, int)
    if count:
        verbosity = min(3, 1 + count)
    if opts.get("quiet"):
        verbosity = 0
    sources["verbosity"] = (
        "command line"
        if count or opts.get("quiet")
        else ("RC_VERBOSE" if environ.get("RC_VERBOSE") == "true" else "default")
    )
    return verbosity


def _command_line_items(item_words: list[tuple[str, str]]) -> list[Item]:
    """-B/-D/-F/-H CODE, in order: bash items named B1, D1, D2, ... by stage letter."""
    letters: dict[str, Stage] = {"B": "boot", "D": "async", "F": "sync", "H": "halt"}
    counters = dict.fromkeys(letters, 0)
    items = []
    for letter, code in item_words:
        counters[letter] += 1
        name = f"{letter}{counters[letter]}"
        items.append(
            Item(stage=letters[letter], name=name, how=BASH_CODE, argv=(code,), label=code)
        )
    return items


def _main_item(command: list[str]) -> Item | None:
    """The command after the options (exec'd as it is), or None."""
    if not command:
        return None
    if not command[0]:
        raise UsageError("the command is an empty string")
    return Item(
        stage="main",
        name=os.path.basename(command[0]) or command[0],
        how=EXEC,
        argv=tuple(command),
        label=" ".join(command),
    )


def _take_scheduled(
    staged: dict[str, list[Item]],
    tasks: dict[str, TaskSettings],
    defaults: TaskSettings,
    toml_path: str,
    environ: Mapping[str, str],
) -> list[Item]:
    """Scheduled tasks leave the async stage: they start at their times (scheduler.py)."""
    scheduled = []
    for stage, items in staged.items():
        for item in items:
            settings = tasks.get(item.name, defaults)
            if settings.schedule is None:
                continue
            if "[task." not in item.origin or stage != "async":
                raise ConfigError(
                    f"{toml_path}: task.{item.name}.schedule: goes with command or run in a "
                    f"[task.NAME] table of the async stage (not a stage file or a {stage} item)"
                )
            scheduled.append(item)
    staged["async"] = [item for item in staged["async"] if item not in scheduled]
    if scheduled:
        from pyinit import schedule

        schedule.zone(environ.get("TZ", ""), "TZ")  # a bad TZ: status 2 before anything starts
    return scheduled


def _task_settings(
    task_tables: dict[str, object],
    names: set[str],
    main: Item | None,
    defaults: TaskSettings,
    defaults_fields: dict[str, object],
    procfile_env: dict[str, dict[str, str]],
    toml_path: str,
    start_dir: str,
    sources: dict[str, str],
    warnings: list[str],
) -> dict[str, TaskSettings]:
    """Every task's settings: the defaults, then its [task.NAME] table (and a Procfile's env)."""
    tasks: dict[str, TaskSettings] = {}
    given: dict[str, dict[str, object]] = {}  # each task's own keys
    # [task.main] names the main command, whatever it is (unless a task is called "main"), so
    # that `docker run IMAGE other-cmd` keeps the main command's settings; a table named after
    # the command itself is more specific and comes after it.
    ordered = sorted(task_tables.items(), key=lambda entry: entry[0] != "main")
    for table_name, table in ordered:
        task_fields = _toml_settings(table, f"{toml_path}: task.{table_name}", start_dir)
        name = table_name
        if table_name == "main" and "main" not in names and main is not None:
            name = main.name
        elif table_name not in names:
            # Not an error: the image's pyinit.toml may describe a task this run leaves out
            # (`docker run IMAGE bash`). --check shows it and exits 1, so typos stay visible.
            warnings.append(_unknown_task(toml_path, table_name, names))
            continue
        if name in tasks:  # [task.main] and the command's own table: the latter wins
            task_fields = {**given[name], **task_fields}
        for key in task_fields:
            sources[f"task.{name}.{key}"] = toml_path
        if "env" in task_fields or name in procfile_env:  # a task's env adds to the defaults'
            merged = dict(defaults.env)
            merged.update(procfile_env.get(name, {}))  # a Procfile's .env and PORT, then the table
            merged.update(dict(task_fields.get("env", ())))  # type: ignore[call-overload]
            task_fields["env"] = tuple(merged.items())
        given[name] = task_fields
        tasks[name] = _settings({**defaults_fields, **task_fields}, f"{toml_path}: task.{name}")

    for name, env in procfile_env.items():
        if name not in tasks:
            tasks[name] = defaults.replace(env=tuple({**dict(defaults.env), **env}.items()))
    for name, task_settings in [("", defaults), *sorted(tasks.items())]:
        cwd = task_settings.cwd
        if cwd and (not name or cwd != defaults.cwd) and not os.path.isdir(cwd):
            key = f"task.{name}.cwd" if name else "defaults.cwd"
            warnings.append(
                f"{toml_path}: {key}: {cwd}: no such directory (the task will "
                f"fail to start unless a boot item makes it)"
            )
    return tasks


class Given:
    """What the command line and the environment say, read one setting at a time; `sources`
    records who gave each setting (the command line, a variable, a file, the default) for
    `--check`. Precedence: command line > environment > the caller's default."""

    __slots__ = ("environ", "opts", "sources")

    def __init__(self, opts: dict[str, object], environ: Mapping[str, str]) -> None:
        self.opts = opts
        self.environ = environ
        self.sources: dict[str, str] = {}

    def setting(self, key: str, default: str | None = None) -> str | None:
        if key in self.opts and not isinstance(self.opts[key], list | bool):
            self.sources[key] = "command line"
            return str(self.opts[key])
        env_name = options.ENV.get(key)
        if env_name and self.environ.get(env_name):
            self.sources[key] = env_name
            return self.environ[env_name]
        self.sources[key] = "default"
        return default

    def said_by(self, key: str, option: str) -> str:
        """Who gave `key`, for an error message: the option, or the environment variable."""
        return option if self.sources.get(key) != options.ENV.get(key) else options.ENV[key]

    def flag(self, key: str, variable: str) -> bool:
        """A flag given by its option, or by its variable set to a true word."""
        return bool(self.opts.get(key)) or _env_flag(self.environ, variable)


def load(
    argv: list[str],
    environ: Mapping[str, str],
    program: str = "pyinit",
    start_dir: str | None = None,
) -> Plan:
    """The Plan for `argv` (without the program name) under `environ`, with relative paths
    taken from `start_dir` (default: the current directory). Raises PyinitError."""
    opts, command, item_words = parse_args(argv)
    if start_dir is None:
        start_dir = os.getcwd()
    given = Given(opts, environ)
    sources = given.sources
    # --help, --version and --license never get here: cli answers them before reading anything.
    action: Action = "check" if opts.get("check") else "run"
    self_name = os.path.basename(program).removesuffix(".sh")
    compat_word = given.setting("compat", "trc" if self_name == "trc" else "none") or "none"
    compat = values.choice(compat_word, ("none", "trc"), given.said_by("compat", "--compat"))
    mode = TRC if compat == "trc" else PYINIT
    verbosity = _verbosity(opts, environ, mode, sources)
    # Said at start and by --check (which then exits 1): what is allowed but likely a mistake.
    warnings: list[str] = []
    workdir, root = _workdir(given, start_dir, warnings)
    if opts.get("show_env") and action != "check":
        raise UsageError("--show-env goes with --check (it shows the env values --check masks)")
    wait = values.choice(
        given.setting("wait", "wait_any") or "wait_any",
        WAIT_POLICIES,
        f"wait policy ({given.said_by('wait', '--wait')})",
    )
    log_format = values.choice(
        given.setting("log_format", "text") or "text",
        LOG_FORMATS,
        given.said_by("log_format", "--log-format"),
    )
    timeout, halt_timeout = _timeouts(given)
    rewrite, remap, pdeathsig = _signal_rules(given)
    prefix = given.setting("prefix", mode.default_prefix) or ""
    check_prefix(prefix, given.said_by("prefix", "--prefix"))

    toml_path = os.path.join(root, "pyinit.toml")
    document = _document(toml_path)
    http = _http(
        given.setting("http"), given.said_by("http", "--http"), document, toml_path, sources
    )
    fields = _default_fields(given, document, toml_path, start_dir)
    defaults = _settings(fields, "defaults")

    # The items, in run order within each stage: files first, then the command line's strings.
    skipped: list[tuple[str, str]] = []
    task_tables = document.get("task", {})
    if not isinstance(task_tables, dict):
        raise ConfigError(f"{toml_path}: [task] must hold [task.NAME] tables")
    staged = _staged(root, toml_path, task_tables, skipped)
    has_files = any(item.origin == "" for items in staged.values() for item in items)
    procfile_env = _procfile_tasks(
        given.setting("procfile"), given.said_by("procfile", "--procfile"), opts.get("port"),
        environ, start_dir, root, has_files, staged, sources,
    )  # fmt: skip
    if procfile_env and sources.get("prefix") == "default":
        # honcho's columns: every Procfile task's name padded to the longest, then " | ".
        prefix = f"{{name:<{max(len(name) for name in procfile_env)}}} | "
        sources["prefix"] = "a Procfile's columns"
    warnings.extend(workdir_files.near_misses(root))
    for item in _command_line_items(item_words):
        staged[item.stage].append(item)
    main = _main_item(command)

    names = {item.name for items in staged.values() for item in items}
    names.update([main.name] if main is not None else [])
    tasks = _task_settings(
        task_tables, names, main, defaults, fields, procfile_env,
        toml_path, start_dir, sources, warnings,
    )  # fmt: skip
    scheduled = _take_scheduled(staged, tasks, defaults, toml_path, environ)

    # tini's rule for a lone command: its lifetime is its own. After the stop signal pyinit
    # waits for it as long as it runs, unless a grace was given (then SIGKILL after it).
    tini_style = main is not None and not any(staged.values()) and not os.path.exists(toml_path)
    if tini_style and "defaults.grace" not in sources:
        defaults = defaults.replace(grace=INF)
        sources["defaults.grace"] = TINI_GRACE

    plan = Plan(
        action=action,
        workdir=workdir,
        start_dir=start_dir,
        tini_style=tini_style,
        warnings=tuple(warnings),
        boot=tuple(staged["boot"]),
        async_items=tuple(staged["async"]),
        scheduled=tuple(scheduled),
        sync=tuple(staged["sync"]),
        halt=tuple(staged["halt"]),
        main=main,
        wait=wait,
        mode=mode,
        self_name=self_name,
        verbosity=verbosity,
        log_json=log_format == "json",
        prefix=prefix,
        prefix_main=given.flag("prefix_main", "PYINIT_PREFIX_MAIN"),
        timeout=timeout,
        halt_timeout=halt_timeout,
        rewrite=rewrite,
        remap=remap,
        pdeathsig=pdeathsig,
        defaults=defaults,
        tasks=tasks,
        sources=sources,
        skipped=tuple(skipped),
        args=tuple(argv),
        # Kubernetes mounts /dev/termination-log into every container (spec §9).
        termination_log=environ.get("PYINIT_TERMINATION_LOG") or "/dev/termination-log",
        # pyinitctl's socket (docs/control.md): a path, "@name" (abstract), "off", or the
        # default: /run/pyinit/control.sock, else an abstract name.
        control=environ.get("PYINIT_CONTROL", ""),
        http=http,
        tz=environ.get("TZ", ""),
    )
    _check_runnable(plan, environ)
    _check_order(plan, toml_path)
    return plan


def _workdir(given: Given, start_dir: str, warnings: list[str]) -> tuple[str, str]:
    """The work directory as given, and where its files are: pyinit leaves its start directory
    once it runs (so that it can be unmounted), and reads the command line again after boot's
    `set --` from "/"."""
    workdir = given.setting("workdir") or start_dir
    root = os.path.join(start_dir, workdir)
    if "workdir" in given.opts and not os.path.isdir(root):
        raise ConfigError(f"-w {workdir}: no such directory")
    if given.sources["workdir"] == "RC_WORK_DIR" and not os.path.isdir(root):
        # A warning, not -w's error: TrivialRC ran with a missing RC_WORK_DIR, and an image
        # may set it for a volume that is not always mounted.
        warnings.append(
            f"RC_WORK_DIR={workdir}: no such directory: no stage files or pyinit.toml read"
        )
    return workdir, root


def _timeouts(given: Given) -> tuple[float | None, float]:
    """`--timeout` (None: none) and `--halt-timeout`."""
    text = given.setting("timeout")
    timeout = (
        values.seconds(text, given.said_by("timeout", "--timeout"), text=True) if text else None
    )
    halt_text = given.setting("halt_timeout", "4") or "4"
    halt = values.seconds(halt_text, given.said_by("halt_timeout", "--halt-timeout"), text=True)
    return timeout, halt


def _signal_rules(given: Given) -> tuple[dict[int, int], frozenset[int], int]:
    """`--rewrite` (or PYINIT_REWRITE), the `-e` exit codes remapped to 0, and `-p`'s
    parent-death signal (0: none; tini's option, with no variable)."""
    rewrite_words = given.opts.get("rewrite")
    rewrite_from = "--rewrite"
    if not rewrite_words and given.environ.get("PYINIT_REWRITE"):
        rewrite_words, rewrite_from = [given.environ["PYINIT_REWRITE"]], "PYINIT_REWRITE"
    assert isinstance(rewrite_words, list | None)
    rewrite = _rewrite(rewrite_words or [], rewrite_from)
    remap_words = given.opts.get("remap", [])
    assert isinstance(remap_words, list)
    remap = frozenset(values.count(w, "-e", text=True) for w in remap_words)
    if any(code > 255 for code in remap):
        raise ConfigError("-e: expected an exit code 0..255")
    pdeathsig_text = given.setting("pdeathsig")
    pdeathsig = values.signal(pdeathsig_text, "-p") if pdeathsig_text else 0
    return rewrite, remap, pdeathsig


def _document(toml_path: str) -> dict[str, object]:
    """The work dir's pyinit.toml ({} without one), its top-level tables checked."""
    document = workdir_files.read_toml(toml_path)
    unknown = sorted(set(document) - {"defaults", "task", "control"})
    if unknown:
        raise ConfigError(_unknown_top_level(toml_path, unknown[0], document[unknown[0]]))
    return document


def _default_fields(
    given: Given, document: dict[str, object], toml_path: str, start_dir: str
) -> dict[str, object]:
    """The task defaults' keys: built-in < [defaults] in pyinit.toml < environment < command
    line. Each value is read by the parser its pyinit.toml key uses (values.py)."""
    sources = given.sources
    fields = _toml_settings(document.get("defaults", {}), f"{toml_path}: defaults", start_dir)
    for key in fields:
        sources[f"defaults.{key}"] = toml_path
    for key in ("restart", "restart_delay", "max_restarts", "grace", "stop_signal"):
        text = given.setting(key)
        if sources[key] == "default":
            del sources[key]
            continue
        what = f"--{key.replace('_', '-')}" if sources[key] == "command line" else sources[key]
        fields[key] = SCALARS[TASK_KEYS[key]](text, what, True)
        sources[f"defaults.{key}"] = sources.pop(key)
    if given.flag("single_child", "PYINIT_SINGLE_CHILD"):
        # -c: every task's signals go to its pid only, unless its table says so.
        fields["signal_target"] = "pid"
        sources["defaults.signal_target"] = (
            "command line" if given.opts.get("single_child") else "PYINIT_SINGLE_CHILD"
        )
    return fields


def _staged(
    root: str, toml_path: str, task_tables: dict[str, object], skipped: list[tuple[str, str]]
) -> dict[str, list[Item]]:
    """Each stage's stage files and `[task.NAME]` tasks, in name order (`_join`)."""
    staged: dict[str, list[Item]] = {stage: [] for stage in STAGES}
    declared = [d for n, t in task_tables.items() if (d := _declared(toml_path, n, t))]
    for stage in STAGES:
        files = [_file_item(stage, path) for path in workdir_files.discover(root, stage, skipped)]
        by_name = {item.name: item for item in files}
        for item in declared:
            if item.name in by_name:
                raise ConfigError(
                    f"{toml_path}: task.{item.name} declares a task (command or run) that "
                    f"the stage file {by_name[item.name].label} is already: rename one"
                )
        staged[stage] = _join(files, [d for d in declared if d.stage == stage])
    return staged


def _check_order(plan: Plan, toml_path: str) -> None:
    """`after` names tasks that run, not halt items, and has no cycle: status 2 before
    anything starts, naming the key (and the cycle)."""
    stage_of = {item.name: item.stage for item in plan.items()}
    graph: dict[str, tuple[str, ...]] = {}
    for name, settings in sorted(plan.tasks.items()):
        if not settings.after:
            continue
        at = f"{toml_path}: task.{name}.after"
        if stage_of.get(name) in ("halt", "boot"):
            raise ConfigError(
                f"{at}: a {stage_of[name]} item runs in its stage's order; after is for async, "
                f"sync and main tasks"
            )
        for needed, _condition in settings.after:
            if needed == name:
                raise ConfigError(f"{at}: {name} cannot wait for itself")
            if needed not in stage_of:
                known = ", ".join(sorted(n for n, s in stage_of.items() if s != "halt"))
                raise ConfigError(f"{at}: no task named {needed!r} (the tasks: {known})")
            if stage_of[needed] == "halt":
                raise ConfigError(f"{at}: {needed} is a halt item: it runs after everything")
        graph[name] = tuple(n for n, _ in settings.after)
    if not graph:
        return
    from pyinit.ready import cycle

    loop = cycle(graph)
    if loop:
        raise ConfigError(f"{toml_path}: task.{loop[0]}.after: cycle {' -> '.join(loop)}")


def _check_runnable(plan: Plan, environ: Mapping[str, str]) -> None:
    """Refuse before starting anything what could only fail later (spec §8)."""
    # TrivialRC with nothing to do just ends (status 0); pyinit says what is missing.
    if not plan.mode.empty_plan_ok and not any(True for _ in plan.items()):
        raise UsageError(
            "nothing to run: give a command, or stage files in the work directory "
            f"({plan.workdir}); see --help"
        )
    needs_bash = [
        item
        for item in plan.items()
        if item.how != EXEC or (plan.mode.main_via_bash and item.stage == "main")
    ]
    if needs_bash and find_program("bash", environ) is None:
        raise ConfigError(f"{needs_bash[0].label}: needs bash to run, and bash is not on PATH")


def find_program(name: str, environ: Mapping[str, str]) -> str | None:
    for directory in environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(directory or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None
