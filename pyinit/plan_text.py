"""`--check`: the plan in words (stages, items in order, task names, policies, and where each
setting came from), so a user can see what pyinit would do without running anything."""

from __future__ import annotations

from pyinit import signals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.config import Item, Plan
    from pyinit.ready import HealthSettings

HOW = {"exec": "executed", "bash-file": "sourced by bash", "bash-code": "bash code"}


#: What `docker stop` (and compose) waits before SIGKILL, by default.
DOCKER_STOP = 10.0


def describe(plan: Plan, show_env: bool = False) -> str:
    """The plan as --check prints it; `env` values masked unless `show_env`."""
    lines = [
        f"work dir: {plan.workdir}",
        f"mode: {plan.mode.name}",
        f"wait policy: {plan.wait} ({_source(plan, 'wait')})",
        f"timeout: {f'{plan.timeout:g}s' if plan.timeout else 'none'} ({_source(plan, 'timeout')})",
        f"halt timeout: {plan.halt_timeout:g}s for each halt item "
        f"({_source(plan, 'halt_timeout')})",
        f"log format: {'json' if plan.log_json else 'text'} ({_source(plan, 'log_format')}), "
        f"verbosity {VERBOSITY.get(plan.verbosity, plan.verbosity)} "
        f"({_source(plan, 'verbosity')})",
        f"prefix: {plan.prefix!r} ({_source(plan, 'prefix')}); the main command's output "
        + ("prefixed" if plan.prefix_main else "as it is"),
        f"stop budget: {stop_budget(plan)[1]}",
    ]
    stages: list[tuple[str, tuple[Item, ...]]] = [
        ("boot", plan.boot),
        ("async", plan.async_items),
        ("sync", plan.sync),
    ]
    if plan.scheduled:
        stages.append(("scheduled", plan.scheduled))
    if plan.main is not None:
        stages.append(("main", (plan.main,)))
    stages.append(("halt", plan.halt))
    for stage, items in stages:
        lines.append(f"{stage}:" + ("" if items else " (none)"))
        for item in items:
            s = plan.settings(item.name)
            policy = f", restart {s.rules.restart}" if stage in ("async", "sync", "main") else ""
            if stage == "scheduled":
                policy = (
                    f", {s.schedule.text if s.schedule else ''}, next: {_next_runs(plan, item)}"
                )
            lines.append(f"  {item.name}: {item.label} ({_how(plan, item)}{policy})")
    d, r = plan.defaults, plan.defaults.rules
    lines.append(
        f"defaults: restart {r.restart}, delay {r.restart_delay:g}-{r.restart_max_delay:g}s, "
        f"max {r.max_restarts} restarts in {r.restart_window:g}s, stop with "
        f"{signals.name(d.stop_signal)}, grace {_grace(d.grace)}, signals to the "
        f"{d.signal_target}"
    )
    default = dict(d.as_keys())
    for name, settings in sorted(plan.tasks.items()):
        changed = [
            f"{k}={_value(k, v, show_env)}" for k, v in settings.as_keys() if v != default[k]
        ]
        lines.append(f"task {name}: {', '.join(changed) or 'as defaults'}")
    lines.extend(start_order(plan))
    for path, why in plan.skipped:
        lines.append(f"skipped: {path} ({why})")
    lines.append("settings from:")
    for key, where in sorted(plan.sources.items()):
        if where != "default":
            lines.append(f"  {key}: {where}")
    return "\n".join(lines) + "\n"


def check_warnings(plan: Plan) -> list[str]:
    """What --check warns about beyond the plan's own warnings: a stop budget over Docker's
    default 10 s (said by --check only, not at every start: `docker stop -t 30` is a choice)."""
    seconds, words = stop_budget(plan)
    if seconds <= DOCKER_STOP or plan.tini_style:  # a lone command's stop is its own (tini)
        return []
    return [
        f"stopping may take {words}: more than the {DOCKER_STOP:g}s `docker stop` waits "
        f"before SIGKILL (lower grace/--halt-timeout, or raise docker stop -t, compose's "
        f"stop_grace_period, Kubernetes' terminationGracePeriodSeconds)"
    ]


def stop_budget(plan: Plan) -> tuple[float, str]:
    """The longest a stop can take, in seconds and in words: the longest grace of the tasks
    that run until the stop (they get the stop signal together; with a stop order, the longest
    of each level, one level after the other), then each halt item within the halt timeout
    (README "Signals"). Infinite when a grace is."""
    levels = plan.stop_levels() or [
        [item.name for item in plan.items() if item.stage in ("async", "sync", "main")]
    ]
    # Each level stops as a group, in its longest grace; the levels one after the other.
    # A stop_delay comes before its task's grace (shutdown.py).
    level_graces = [
        max((plan.settings(n).stop_delay + plan.settings(n).grace for n in names), default=0.0)
        for names in levels
    ]
    grace = sum(level_graces)
    halts = len(plan.halt) * plan.halt_timeout
    total = grace + halts
    if total == float("inf"):
        return total, "as long as the tasks take (a grace is inf: never SIGKILL)"
    names = [n for level in levels for n in level]
    word = "stop_delay + grace" if any(plan.settings(n).stop_delay for n in names) else "grace"
    graces = (
        f"{word} {grace:g}s"
        if len(level_graces) == 1
        else f"graces {' + '.join(f'{g:g}s' for g in level_graces)} (stop order: "
        + " then ".join(", ".join(names) for names in levels)
        + ")"
    )
    parts = [graces] + (
        [
            f"{len(plan.halt)} halt item{'s' if len(plan.halt) > 1 else ''} of up to "
            f"{plan.halt_timeout:g}s"
        ]
        if plan.halt
        else []
    )
    return total, f"up to {total:g}s ({' + '.join(parts)})"


VERBOSITY = {-1: "TrivialRC's (silent)", 0: "errors", 1: "warnings", 2: "info", 3: "debug"}


def _source(plan: Plan, key: str) -> str:
    return plan.sources.get(key, "default")


def _how(plan: Plan, item: Item) -> str:
    """How the item runs, as --check shows it."""
    if item.stage == "main":
        # TrivialRC mode runs the command as "$@" in bash, so builtins and boot's functions work.
        return 'run by bash as "$@"' if plan.mode.main_via_bash else HOW[item.how]
    if item.origin and "[task." not in item.origin:  # a Procfile's line: FILE:LINE
        return f"run by sh -c, from {item.origin}"
    if item.origin:  # declared in pyinit.toml: say where
        what = "an argv, no shell" if item.how == "exec" else "bash code"
        return f"{what}, declared in {item.origin}"
    if item.how == "exec" and len(item.argv) > 1:
        return "run by " + " ".join(item.argv[:-1])  # a file whose #! names an interpreter
    return HOW[item.how]


def _grace(seconds: float) -> str:
    return "inf (never SIGKILL)" if seconds == float("inf") else f"{seconds:g}s"


SECONDS = frozenset(
    (
        "restart_delay",
        "restart_max_delay",
        "restart_reset",
        "restart_window",
        "ready_timeout",
        "ready_interval",
        "stop_delay",
    )
)


def start_order(plan: Plan) -> list[str]:
    """The start order as levels, when any task declares `after` or `ready`."""
    graph = {name: tuple(n for n, _ in s.after) for name, s in plan.tasks.items() if s.after}
    ready = sorted(name for name, s in plan.tasks.items() if s.ready is not None)
    if not graph and not ready:
        return []
    from pyinit.ready import levels

    lines = ["start order (boot first, then):"]
    for number, names in enumerate(levels(graph)):
        lines.append(f"  {number + 1}. {', '.join(names)}")
    if plan.defaults.main_after == "ready" and ready:
        lines.append(f"  the foreground waits for: {', '.join(ready)} (ready)")
    return lines


def _value(key: str, value: object, show_env: bool = False) -> str:
    """A setting as a person writes it: signal names, seconds, and env values masked unless
    `show_env` (an `env` table often holds secrets, and --check output ends up in CI logs)."""
    if key == "stop_signal" and isinstance(value, int):
        return signals.name(value)
    if key == "signals":
        if value is None:
            return "all"
        assert isinstance(value, frozenset)
        return "[" + ", ".join(signals.name(s) for s in sorted(value)) + "]" if value else "none"
    if key == "grace" and isinstance(value, float):
        return _grace(value)
    if key in SECONDS and isinstance(value, float):
        return f"{value:g}s"
    if key == "ready" and value is not None:
        return f'"{getattr(value, "text", value)}"'
    if key == "after" and isinstance(value, tuple):
        return "[" + ", ".join(f"{name}:{condition}" for name, condition in value) + "]"
    if key == "health" and value is not None:
        from pyinit.ready import HealthSettings  # loaded already: it parsed the table

        assert isinstance(value, HealthSettings)
        return _health(value)
    if key == "rlimits" and isinstance(value, tuple):
        from pyinit.limits import describe  # loaded already: it parsed them

        return describe(value)
    if key == "umask" and isinstance(value, int):
        return f'"{value:03o}"'
    if key == "schedule" and value is not None:
        return f'"{getattr(value, "text", value)}"'
    if key == "env" and isinstance(value, tuple):
        return "{" + ", ".join(f"{k}={v if show_env else '***'}" for k, v in value) + "}"
    return str(value)


def _health(health: HealthSettings) -> str:
    """A health table as it is written in pyinit.toml."""
    check = health.check
    argv = '", "'.join(check.argv)
    written = f'["{argv}"]' if check.kind == "command" else f'"{check.text}"'
    fields = [
        f"check = {written}",
        f"interval = {health.interval:g}s",
        f"timeout = {health.timeout:g}s",
        f"retries = {health.retries}",
        f"start_period = {health.start_period:g}s",
        f'action = "{health.action}"',
    ]
    if not health.critical:
        fields.append("critical = false")
    return "{" + ", ".join(fields) + "}"


def _next_runs(plan: Plan, item: Item) -> str:
    """The next three run times of a scheduled task, in TZ (else UTC)."""
    import datetime as dt

    from pyinit.schedule import zone

    schedule = plan.settings(item.name).schedule
    assert schedule is not None
    if schedule.every:
        return f"every {schedule.every:g}s from the start"
    tz = zone(plan.tz, "TZ")
    after, times = dt.datetime.now(tz), []
    for _ in range(3):
        nxt = schedule.next_after(after)
        if nxt is None:
            break
        times.append(nxt.strftime("%Y-%m-%d %H:%M %Z"))
        after = nxt
    return ", ".join(times) or "never"
