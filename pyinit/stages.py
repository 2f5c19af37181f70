"""The stage sequence, as one function that reads like the manual (spec §4).

boot (in order; the first failure ends everything, halt included)
  -> async items started in order
  -> sync items one after another, then the main command (the foreground sequence)
  -> wait, as the wait policy says
  -> stop every task (stop signal, grace, SIGKILL, sweep)
  -> halt items in order, within the halt time limit
  -> the final status
"""

from __future__ import annotations

from pyinit import config, status
from pyinit.errors import PyinitError
from pyinit.startorder import NEVER, WAIT
from pyinit.waitpolicy import WaitPolicy, after_halt

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from pyinit.config import Item, Plan
    from pyinit.runtime import Runtime
    from pyinit.tasks import Task


def run(plan: Plan, rt: Runtime, environ: Mapping[str, str]) -> tuple[int, str]:
    """Run the whole plan; return the status pyinit exits with (before tini's -e remap), and
    why the run ended, in words (for the termination log)."""
    log, tasks, outcome = rt.log, rt.tasks, rt.outcome
    log.info(f"The wait policy: {plan.wait}")
    log.info(f"Work dir: {plan.workdir}")
    for path, why in plan.skipped:
        log.debug(f"skipping {path}: {why}")

    boot_status = run_boot(plan, rt)
    if boot_status is not None:
        log.info("Trying to terminate sub-processes...")
        rt.shutdown.stop_all()
        log.note(f"boot failed (exitcode={boot_status}): halt skipped")
        return boot_status, f"boot failed (exitcode={boot_status})"
    if rt.shell.args != plan.args:
        # A boot item rewrote the command line (`pyinit_set_args`, or `set --` in TrivialRC
        # mode, as its self-configuring example does): what follows boot is read from it.
        log.debug("boot rewrote the command line: reading it again")
        try:
            plan = config.load(
                list(rt.shell.args), environ, plan.self_name, plan.start_dir
            ).without_boot()
        except PyinitError as e:
            how = "set --" if plan.mode.set_rewrites_args else "pyinit_set_args"
            log.error(f"the command line boot made with {how} is wrong: {e}")
            rt.shutdown.stop_all()
            return status.USAGE, "the command line boot made was wrong"
        rt.replan(plan)

    policy = plan.mode.wait_policy(
        plan.wait,
        async_tasks=len(plan.async_items),
        foreground=bool(plan.sync) or plan.main is not None,
    )

    stopped: list[Task] = []  # the foreground item a background task's end stops
    reported: set[int] = set()  # the async tasks whose end the policy has heard of

    def task_ended(task: Task) -> None:
        # Once a signal or the timeout has ended the run, tasks end because we stop them:
        # that is not news for the wait policy.
        # A task an operator holds (pyinitctl stop) is down on purpose: not news either.
        if outcome.interrupted or tasks.stopping or task.held:
            return
        if rt.scheduler is not None and rt.scheduler.owns(task):  # a scheduled run's end
            if task.status:
                if task.settings.on_failure == "exit":
                    policy.end(task.status, f"{task.name} failed (a scheduled run; on_failure)")
                else:
                    log.warn(
                        f"{task.name}: a scheduled run failed (exitcode={task.status}); the "
                        f"next one runs as scheduled",
                        task.item.ns,
                        0,
                        task.name,
                    )
            return
        if task.health_exit and task.status is not None:  # health action = "exit"
            policy.end(task.status, f"{task.health_exit}: exitcode={task.status}")
            return
        if task.item.stage == "async" and task.status is not None:
            foreground = tasks.foreground
            if (
                plan.wait == "wait_any"
                and plan.mode.foreground_stop_fails
                and foreground is not None
                and foreground.running
                and not policy.ended
            ):
                stopped.append(foreground)
                log.warn(
                    f"{task.name} ended (exitcode={task.status}) while {foreground.name} "
                    f"was running: stopping it (wait_any)",
                    task.item.ns,
                    0,
                    task.name,
                )
            if task.index in reported:  # started again by an operator after it had ended
                return
            reported.add(task.index)
            why = ""
            if task.unhealthy:  # for the termination log: what ended it, not only its status
                why = f"{task.name} unhealthy ({task.unhealthy_brief}), killed"
                why += f": exitcode={task.status}"
            policy.async_ended(
                task.index, task.name, task.status, rt.order.one_shot(task.name), why
            )

    tasks.on_end(task_ended)
    # A task whose dependency failed for good never starts: for the wait policy it has
    # ended, with the dependency's status.
    rt.order.on_never(lambda item, index, code: policy.async_ended(index, item.name, code))
    # In order; those with `after` once it holds. systemd hears READY=1 once all are ready.
    rt.order.start_async(plan.async_items)
    rt.start_schedules(plan)  # tasks with a `schedule` (docs/schedules.md)
    rt.open_control(plan)  # pyinitctl (docs/control.md), once the first tasks run
    rt.open_http(plan)  # --http: /healthz, /readyz, /status, /metrics (docs/health.md)

    run_foreground(plan, rt, policy)
    if not policy.ended and not outcome.interrupted:
        if plan.wait == "wait_forever":
            log.info("Activated infinite loop! To stop, press <Ctrl+C> or send SIGTERM...")
        rt.core.run_until(lambda: policy.ended or outcome.interrupted)

    rt.notifier.send("STOPPING=1")
    log.info("Trying to terminate sub-processes...")
    rt.shutdown.stop_all()
    if stopped:
        policy.foreground_stopped(stopped[0].status, stopped[0].settings.stop_signal)
    if not policy.ended:
        if outcome.timed_out:
            policy.timeout()
        else:
            signalled = outcome.signalled
            policy.stop_signal(outcome.stop_signal, signalled.status if signalled else None)
    level = log.note if policy.status or outcome.interrupted else log.debug
    said = policy.reason.endswith(f"exitcode={policy.status}")  # a health check's words
    level(f"run ended: {policy.reason}" + ("" if said else f" (exitcode={policy.status})"))
    return run_halt(plan, rt, policy.status), policy.reason


def run_boot(plan: Plan, rt: Runtime) -> int | None:
    """Boot items in order; the status of the first that fails, or None when all succeeded."""
    for item in plan.boot:
        task = run_item(rt, item)
        if task.status:
            return task.status
        if rt.outcome.interrupted:
            return signals_status(rt)
        if plan.mode.boot_exit_ends_run and rt.shell.exited_early(item):
            rt.log.debug(f"{item.label} called exit 0: TrivialRC ends the run here")
            return 0
        cwd = rt.shell.load_state(rt.tasks.env)
        if cwd is not None:
            rt.tasks.chdir(cwd)
    return None


def run_item(
    rt: Runtime,
    item: Item,
    *,
    foreground: bool = True,
    stop_when: Callable[[], bool] | None = None,
    deadline: float | None = None,
    extra_env: dict[str, str] | None = None,
) -> Task:
    """Start `item` and serve the loop until it ends, `stop_when()` is true or `deadline`
    passes: how boot, sync, main and halt items run, one at a time. A `foreground` item gets a
    stop signal at once (docker stop reaches the job that runs); `task.life.ended` tells the
    caller which way it came back."""
    task = rt.tasks.start(item, extra_env=extra_env)
    if foreground:
        rt.tasks.set_foreground(task)
    rt.core.run_until(lambda: task.life.ended or (stop_when is not None and stop_when()), deadline)
    if foreground and task.life.ended:
        rt.tasks.set_foreground(None)
    return task


def signals_status(rt: Runtime) -> int:
    outcome = rt.outcome
    return status.TIMEOUT if outcome.timed_out else status.killed_by(outcome.stop_signal)


def run_foreground(plan: Plan, rt: Runtime, policy: WaitPolicy) -> None:
    """Sync items, then the main command, one after another, while the policy lets them."""
    sequence: list[Item] = [*plan.sync, *([plan.main] if plan.main else [])]
    if not sequence:
        policy.foreground_absent()
        return
    for number, item in enumerate(sequence, 1):
        if policy.ended or rt.outcome.interrupted:
            return
        # It waits for its `after`, and for the async tasks that declare `ready`.
        verdict = rt.order.wait_for(item, lambda: policy.ended or rt.outcome.interrupted)
        if verdict.word == WAIT:
            return  # the run ended while it waited
        if verdict.word == NEVER:
            if not policy.foreground_item_ended(item.name, verdict.status, number == len(sequence)):
                return
            continue
        task = run_item(rt, item, stop_when=lambda: policy.ended or rt.outcome.interrupted)
        if not task.life.ended:
            return  # stop_all() will stop it
        assert task.status is not None
        if not policy.foreground_item_ended(task.name, task.status, number == len(sequence)):
            return


def run_halt(plan: Plan, rt: Runtime, run_status: int) -> int:
    """Halt items in order, each within `--halt-timeout`; returns the final status."""
    final = run_status
    for item in plan.halt:
        # TrivialRC: every halt item reads the run's status; pyinit: the status so far.
        seen = run_status if plan.mode.halt_sees_run_status else final
        task = run_item(
            rt,
            item,
            foreground=False,
            extra_env={"_exit_status": str(seen)},
            deadline=rt.core.clock() + plan.halt_timeout,
        )
        if not task.life.ended:
            rt.log.warn(
                f"{item.label}: still running after the halt time limit "
                f"({plan.halt_timeout:g}s): sending SIGKILL",
                "halt",
                task.pid,
            )
            rt.tasks.kill(task)
            rt.core.run_until(lambda: task.life.ended)  # noqa: B023 - this iteration's task
        assert task.status is not None
        final = after_halt(final, task.status, plan.mode.halt_status_replaces)
    if plan.halt:
        rt.shutdown.sweep()
    return final
