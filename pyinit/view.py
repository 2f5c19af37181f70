"""What every surface reads about the run: the status rows, readiness and health.

`pyinitctl status`/`ready`/`health` (control.py) and the HTTP endpoint's /status, /readyz,
/healthz and /metrics (endpoint.py) answer from these functions, so that the words and the
rules are the same on every surface (docs/control.md "States", docs/health.md). They only
read: nothing here changes a task.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.config import Plan
    from pyinit.health import Health
    from pyinit.startorder import StartOrder
    from pyinit.tasks import Tasks


def status_rows(
    tasks: Tasks, order: StartOrder, plan: Plan, health: Health | None, now: float
) -> list[dict[str, object]]:
    """One row per task, `pyinitctl status --json`'s: the started, the waiting, and those
    that never started because a dependency failed."""
    rows: list[dict[str, object]] = []
    runs = tasks.latest_runs()
    for task in runs:
        row: dict[str, object] = {
            "name": task.name,
            "stage": task.item.stage,
            "state": task.state,
            "pid": task.pid or None,
            "uptime": round(now - task.since, 3) if task.running else None,
            "ready": task.ready if task.probe is not None else None,
            "restarts": task.life.restarts,
            "last_exit": task.status if task.exits else None,
            "health": health.word(task) if health is not None else None,
        }
        if task.life.restart_at is not None:
            row["detail"] = f"next start in {max(0.0, task.life.restart_at - now):.1f}s"
        if task.unhealthy:
            row["unhealthy"] = task.unhealthy  # why: "3 checks failed (http 503)"
        if task.health_output:  # the last failing check command's output, its last 4 KiB
            row["check_output"] = task.health_output.decode(errors="replace")
        if task.probe is not None and task.probe.status:
            row["status"] = task.probe.status  # its last sd_notify STATUS=
        rows.append(row)
    for item, _ in order.waiting:
        after = plan.settings(item.name).after
        rows.append(_not_started(item.name, item.stage, "waiting", "for " + _after_text(after)))
    started = {task.name for task in runs}
    for name, code in order.never_started.items():
        if name not in started:
            why = f"never started (a dependency failed, exitcode={code})"
            rows.append(_not_started(name, "async", "failed", why))
    return rows


def _after_text(after: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{name} ({condition})" for name, condition in after)


def _not_started(name: str, stage: str, state: str, detail: str) -> dict[str, object]:
    return {
        "name": name,
        "stage": stage,
        "state": state,
        "pid": None,
        "uptime": None,
        "ready": None,
        "restarts": 0,
        "last_exit": None,
        "detail": detail,
    }


def readiness(order: StartOrder) -> tuple[bool, list[str]]:
    """pyinit's own readiness (what it told systemd), and what it still waits for."""
    waiting = [t.name for t in order.declared_ready() if not t.ready]
    waiting += [item.name for item, _ in order.waiting]
    return order.ready_sent, waiting


def healthiness(tasks: Tasks, health: Health | None) -> tuple[bool, list[str]]:
    """The group's health and the sick tasks: without health checks, a task failed for good
    still makes the group sick."""
    if health is not None:
        return health.healthy()
    sick = [task.name for task in tasks.latest_runs() if task.life.failed]
    return not sick, sick
