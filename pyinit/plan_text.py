"""`--check`: the plan in words (stages, items in order, task names, policies, and where each
setting came from), so a user can see what pyinit would do without running anything."""

from __future__ import annotations

from pyinit import signals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.config import Item, Plan

HOW = {"exec": "executed", "bash-file": "sourced by bash", "bash-code": "bash code"}


def describe(plan: Plan) -> str:
    lines = [
        f"work dir: {plan.workdir}",
        f"mode: {'TrivialRC' if plan.compat else 'pyinit'}",
        f"wait policy: {plan.wait} ({plan.sources.get('wait', 'default')})",
    ]
    if plan.timeout:
        lines.append(f"timeout: {plan.timeout:g}s ({plan.sources.get('timeout')})")
    stages: list[tuple[str, tuple[Item, ...]]] = [
        ("boot", plan.boot), ("async", plan.async_items), ("sync", plan.sync)]
    if plan.main is not None:
        stages.append(("main", (plan.main,)))
    stages.append(("halt", plan.halt))
    for stage, items in stages:
        lines.append(f"{stage}:" + ("" if items else " (none)"))
        for item in items:
            s = plan.settings(item.name)
            policy = f", restart {s.restart}" if stage in ("async", "sync", "main") else ""
            lines.append(f"  {item.name}: {item.label} ({_how(plan, item)}{policy})")
    d = plan.defaults
    lines.append(
        f"defaults: restart {d.restart}, delay {d.restart_delay:g}-{d.restart_max_delay:g}s, "
        f"max {d.max_restarts} restarts in {d.restart_window:g}s, stop with "
        f"{signals.name(d.stop_signal)}, grace {_grace(d.grace)}, signals to the "
        f"{d.signal_target}")
    for name, settings in sorted(plan.tasks.items()):
        changed = [f"{k}={_value(k, getattr(settings, k))}" for k in settings.__slots__
                   if getattr(settings, k) != getattr(d, k)]
        lines.append(f"task {name}: {', '.join(changed) or 'as defaults'}")
    for path, why in plan.skipped:
        lines.append(f"skipped: {path} ({why})")
    lines.append("settings from:")
    for key, where in sorted(plan.sources.items()):
        if where != "default":
            lines.append(f"  {key}: {where}")
    return "\n".join(lines) + "\n"


def _how(plan: Plan, item: Item) -> str:
    """How the item runs, as --check shows it."""
    if item.stage == "main":
        # TrivialRC mode runs the command as "$@" in bash, so builtins and boot's functions work.
        return 'run by bash as "$@"' if plan.compat else HOW[item.how]
    if item.how == "exec" and len(item.argv) > 1:
        return "run by " + " ".join(item.argv[:-1])  # a file whose #! names an interpreter
    return HOW[item.how]


def _grace(seconds: float) -> str:
    return "inf (never SIGKILL)" if seconds == float("inf") else f"{seconds:g}s"


SECONDS = frozenset(("restart_delay", "restart_max_delay", "restart_reset", "restart_window"))


def _value(key: str, value: object) -> str:
    """A setting as a person writes it: signal names, seconds, and env values masked (an
    `env` table often holds secrets, and --check output ends up in CI logs)."""
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
    if key == "env" and isinstance(value, tuple):
        return "{" + ", ".join(f"{k}=***" for k, _ in value) + "}"
    return str(value)
