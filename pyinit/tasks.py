"""The task table: start each task, reap it, decide whether it comes back, stop what it left.

A `Task` is an item of the plan (immutable, config.py) with its run-time state. `Tasks` starts
them (spawn.py), learns of their ends from the reaper (every wake-up reaps, not only SIGCHLD),
drains their pipes before it logs their exits, and asks the pure `TaskLife` (supervisor.py)
whether one restarts. What a task leaves behind when its main process exits is found by
leftovers.py and stopped here before the task restarts or counts as ended (docs/leftovers.md).

Two things about task ends. A task's pipes are drained before its exit is logged, so a line it
wrote just before it died comes out before the news of its death; and "exited" and "pipe
closed" stay separate events, because a grandchild may keep the pipe open long after (a
`sleep 2 &` holds EOF back): restarts and the wait policy never wait for EOF.
"""

from __future__ import annotations

import os

from pyinit import leftovers, reaper, shell, signals, spawn, status, supervisor
from pyinit.config import DEFAULT_GRACE, TINI_GRACE
from pyinit.forwarding import ROUTER, Route, deliver
from pyinit.loop import IN
from pyinit.streams import Ring
from pyinit.values import INF

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyinit.config import Item, Plan, TaskSettings
    from pyinit.log import Log
    from pyinit.loop import EventLoop
    from pyinit.notify import Notifier
    from pyinit.probes import Probe, Probes
    from pyinit.streams import Stream, Streams

LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3}
#: How long pyinit waits for killed processes to be reaped after SIGKILL before giving up on them
#: (a process stuck in the kernel, state D, cannot die sooner however we ask).
KILL_WAIT = 2.0
#: How often leftovers are looked at where the kernel has no pidfds (before Linux 5.3).
POLL_INTERVAL = 0.05


class Task:
    """A running item and its runtime state (the item and its settings are immutable)."""

    __slots__ = (
        "born",
        "cleanup",
        "done",
        "exec_ok",
        "exits",
        "forked",
        "forwarded",
        "health_exit",
        "health_output",
        "held",
        "index",
        "item",
        "kill_at",
        "life",
        "pid",
        "pid_file_due",
        "probe",
        "ready",
        "ready_due",
        "recovering",
        "ring",
        "route",
        "session",
        "settings",
        "since",
        "status",
        "streams",
        "unhealthy",
        "unhealthy_brief",
        "was_ready",
    )

    def __init__(self, item: Item, settings: TaskSettings, index: int) -> None:
        self.item = item
        self.settings = settings
        self.index = index  # launch order within its stage
        self.life = _life(item, settings)
        self.pid = 0  # 0 while not running
        self.status: int | None = None  # the last exit status
        self.streams: list[Stream] = []
        self.forwarded: set[int] = set()  # signals forwarded to this run of it
        self.route = Route(0, settings.signal_target == "group", settings.signals)
        self.session = 0  # the session its processes are in (leftovers.py)
        self.born = 0.0  # when this run began, on /proc's clock
        self.since = 0.0  # ... and on the loop's clock
        self.forked = False  # type = "forking": the daemon is its main process
        self.cleanup: Cleanup | None = None  # its leftovers being stopped before it counts
        self.pid_file_due: float | None = None  # until when its pid_file is looked for
        self.probe: Probe | None = None  # how it tells it is ready, if it declares `ready`
        self.ready = False  # this run is ready (its exec succeeded, or its probe said so)
        self.was_ready = False  # ... or an earlier one was
        self.ready_due: float | None = None  # its ready_timeout ends then
        self.kill_at: float | None = None  # SIGKILL then, unless it has exited
        self.exec_ok = False  # an exec of it has succeeded (after's "started")
        self.done = False  # a run of it exited 0 (after's "done")
        self.exits = 0  # how many runs have ended (after's "exited")
        self.held = False  # stopped by an operator (pyinitctl stop): not restarted
        self.unhealthy = ""  # why its health check says it is sick ("" while it is not)
        self.unhealthy_brief = ""  # the same in a few words: "http 503 x3"
        self.health_exit = ""  # action = "exit": the run ends with this reason once it is down
        self.health_output = b""  # the last failing command check's output (its last 4 KiB)
        self.recovering = False  # restarted as unhealthy: "healthy again" at its first pass
        self.ring = Ring()  # its last output, for `pyinitctl logs`

    @property
    def running(self) -> bool:
        return self.pid != 0

    @property
    def state(self) -> str:
        """One word for every surface (pyinitctl, events, docs/control.md): starting, running,
        stopping, backoff, done, failed, held; `waiting` is a task not started yet."""
        life = self.life.state
        if self.held:
            return "stopping" if self.running else "held"
        if self.unhealthy and self.running and life != supervisor.STOPPING:
            return "unhealthy"
        if life == supervisor.BACKOFF:
            return "backoff"
        if life == supervisor.STOPPING:
            return "stopping"
        if life == supervisor.FAILED:
            return "failed"
        if life == supervisor.EXITED:
            return "done"
        return "running" if self.running and self.ready else "starting"

    @property
    def name(self) -> str:
        return self.item.name


class Cleanup:
    """A task's leftovers on their way out: the exit is decided once they are gone."""

    __slots__ = ("code", "deadline", "grace", "killed", "pid", "procs")

    def __init__(self, pid: int, code: int, now: float, grace: float) -> None:
        self.pid = pid  # the main process that exited, and its status
        self.code = code
        self.grace = grace
        self.deadline = now + grace  # SIGKILL then; after the KILL, give up then
        self.killed = False
        self.procs: dict[int, int] = {}  # pidfd (or -pid without pidfds) -> pid


def _life(item: Item, settings: TaskSettings) -> supervisor.TaskLife:
    """A fresh restart history under the task's rules (config.py built them); boot and halt
    items run once by definition (spec §4)."""
    rules = settings.rules if item.stage in ("async", "sync", "main") else settings.rules.once()
    return supervisor.TaskLife(rules)


class Tasks:
    """Every task of the run, by launch and by pid; the foreground one; the processes whose
    end a task awaits (pidfds)."""

    def __init__(
        self,
        core: EventLoop,
        streams: Streams,
        plan: Plan,
        log: Log,
        env: dict[str, str],
        shell_: shell.Shell,
        notifier: Notifier,
        probes: Probes | None,
    ) -> None:
        self.core = core
        self.clock = core.clock
        self.streams = streams
        self.plan = plan
        self.log = log
        self.env = env  # the environment every task starts from
        self.shell = shell_
        self.notifier = notifier
        self.probes = probes
        self.cwd: str | None = None  # set by boot's `cd`
        self.all: list[Task] = []
        self.by_pid: dict[int, Task] = {}
        self.pidfds: dict[int, tuple[Task, int]] = {}  # processes whose end a task awaits
        self.checks: dict[int, Callable[[int], None]] = {}  # check command pid -> its callback
        self.check_failed: set[str] = set()  # tasks whose check could not be started
        self._foreground: Task | None = None  # the item running in the foreground now
        self._on_end: Callable[[Task], None] | None = None
        self.stopping = False  # the shutdown has begun: nothing restarts
        self.hurry = False  # the --timeout has passed: an infinite grace is the built-in one
        self._listeners: list[Callable[[str, Task, str], None]] = []
        #: Health's ear for WATCHDOG=1 / WATCHDOG=trigger (set when a task has a watchdog).
        self.on_watchdog: Callable[[Task, str], None] | None = None
        if shell_.log_read >= 0:
            core.watch(shell_.log_read, self._messages)

    @property
    def foreground(self) -> Task | None:
        """The boot, sync or halt item or main command running in the foreground: the first
        stop signal goes to it alone (forwarding.py)."""
        return self._foreground

    def set_foreground(self, task: Task | None) -> None:
        self._foreground = task
        self._route_foreground()

    def _route_foreground(self) -> None:
        """Where the handler sends the first stop signal: the foreground's pid, unless the
        foreground has a `stop_delay` (then the shutdown sends it, after the delay)."""
        task = self._foreground
        if task is None or task.settings.stop_delay:
            ROUTER.foreground = 0
        else:
            ROUTER.foreground = task.pid

    def latest_runs(self) -> list[Task]:
        """The latest run of each task, in the order of their first runs."""
        runs: dict[str, Task] = {}
        for task in self.all:
            runs[task.name] = task
        return list(runs.values())

    def latest(self, name: str) -> Task | None:
        """The last task started for the item `name` (an item runs once per stage start)."""
        for task in reversed(self.all):
            if task.name == name:
                return task
        return None

    def on_event(self, callback: Callable[[str, Task, str], None]) -> None:
        """Call `callback(kind, task, text)` at each start, ready, exit, restart, give-up, hold
        and release (pyinitctl events)."""
        self._listeners.append(callback)

    def _emit(self, kind: str, task: Task, text: str) -> None:
        for listener in self._listeners:
            listener(kind, task, text)

    # -- an operator's requests (control.py) ---------------------------------------------

    def hold(self, task: Task, hold: bool = True) -> None:
        """Stop `task` (stop signal, SIGKILL after its grace) and keep it down: it is not
        restarted, and its end is not news for the wait policy. With `hold=False` (the main
        command, `--force`) its end counts as usual."""
        task.held = hold
        task.life.stopping()  # no restart: this run's end is the end
        task.ready_due = None
        if task.running:
            self.send(task, task.settings.stop_signal)
            grace = self.grace(task)
            task.kill_at = self.clock() + (grace if grace != INF else DEFAULT_GRACE)
        if hold:
            self._emit("hold", task, f"{task.name} held")

    def sick(self, task: Task, reason: str, brief: str) -> None:
        """The health check says `task` is unhealthy (`reason`; `brief` in a few words): do
        what its `action` says. A restart's warning comes once the decision is made, with its
        number and delay (_decide): `web unhealthy: 3 checks failed (http 503): restart 2 in
        2s`."""
        health = task.settings.health
        assert health is not None
        task.unhealthy, task.unhealthy_brief = reason, brief
        action = health.action
        self._emit("unhealthy", task, f"{task.name} unhealthy: {reason}")
        ns, pid, name = task.item.ns, task.pid, task.name
        stop = signals.name(task.settings.stop_signal)
        if action == "restart":
            self.log.info(
                f"{name} unhealthy: {reason}: stopping it ({stop})", ns, pid, name, "unhealthy"
            )
        else:
            what = {
                "stop": f"stopping it ({stop}) for good",
                "exit": f"stopping it ({stop}) and ending the run",
                "none": "reported only (action none)",
            }[action]
            self.log.warn(f"{name} unhealthy: {reason}: {what}", ns, pid, name, "unhealthy")
        if action == "none" or not task.running:
            return
        if action in ("stop", "exit"):  # its end is a failure for good, not a restart
            task.life.rules = task.life.rules.once()
            if action == "exit":
                task.health_exit = f"{task.name} unhealthy ({brief}), killed"
        self.send(task, task.settings.stop_signal)
        grace = self.grace(task)
        task.kill_at = self.clock() + (grace if grace != INF else DEFAULT_GRACE)

    def healthy_again(self, task: Task) -> None:
        """A check passed: news when the task was unhealthy in this run or the one before."""
        if task.unhealthy or task.recovering:
            task.unhealthy, task.recovering = "", False
            self.log.info(
                f"{task.name} healthy again", task.item.ns, task.pid, task.name, "healthy"
            )
            self._emit("healthy", task, f"{task.name} healthy again")

    def release(self, task: Task) -> None:
        """Start a held, done or failed-for-good task again, with a fresh backoff."""
        task.held = False
        task.life = _life(task.item, task.settings)
        self._emit("release", task, f"{task.name} released")
        self._spawn(task)

    def on_end(self, callback: Callable[[Task], None]) -> None:
        """Call `callback(task)` whenever a task has ended for good (the wait policy's news)."""
        self._on_end = callback

    def _publish_routes(self) -> None:
        """Give the signal handler a new snapshot of where signals go (forwarding.py)."""
        ROUTER.publish(tuple(t.route for t in self.all if t.pid))

    def replan(self, plan: Plan) -> None:
        self.plan = plan

    def chdir(self, cwd: str) -> None:
        """Boot's `cd`: the tasks started from now on start in `cwd`."""
        self.cwd = cwd

    def stop_restarting(self) -> None:
        """The shutdown has begun: no task restarts, and none of their ends is news."""
        self.stopping = True
        for task in self.all:
            task.life.stopping()

    # -- starting ---------------------------------------------------------------------------

    def start(self, item: Item, index: int = 0, extra_env: dict[str, str] | None = None) -> Task:
        """Start `item` as a new task and return it (already running, or ended at once)."""
        task = Task(item, self.plan.settings(item.name), index)
        self.all.append(task)
        self.log.stages[item.name] = item.stage
        form, health = task.settings.ready, task.settings.health
        # A health watchdog hears WATCHDOG=1 on the notify socket, which it gets without
        # `ready = "notify"` too (then the run is ready once started, as without `ready`).
        watchdog = None
        if health is not None and health.check.kind == "watchdog" and self.on_watchdog:
            heard = self.on_watchdog
            watchdog = (health.timeout, lambda what: heard(task, what))
            if form is None:
                from pyinit.ready import ReadyForm

                form = ReadyForm("notify", "notify (for the health watchdog)")
        if form is not None and self.probes is not None and item.stage in ("async", "sync", "main"):
            task.probe = self.probes.make(
                form,
                item.name,
                task.settings.ready_interval,
                lambda why: self._ready(task, why),
                lambda argv: self.run_check(task, argv, task.probe.ended if task.probe else None),
                watchdog,
                ready_at_start=task.settings.ready is None,
            )
        self._spawn(task, extra_env)
        return task

    def run_check(
        self,
        task: Task,
        argv: tuple[str, ...],
        on_exit: Callable[[int], None] | None,
        out: int = -1,
    ) -> int:
        """Start a `ready = [...]` or health check for `task`: as the task's user, with its
        environment and cwd, in a session of its own, its output to `out` (or /dev/null).
        Its pid, or 0."""
        settings = task.settings
        env = dict(self.env)
        env.update(settings.env)
        env["PYINIT_TASK"] = task.name
        try:
            identity = spawn.resolve_identity(settings.user, settings.group)
        except KeyError:
            return 0
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            result = spawn.spawn(
                argv,
                env,
                capture=False,
                cwd=settings.cwd or self.cwd or self.plan.start_dir,
                identity=identity,
                pass_fds={1: null, 2: null} if out < 0 else {1: out, 2: out},
            )
        finally:
            os.close(null)
        if result.error and task.name not in self.check_failed:  # said once, not each interval
            self.check_failed.add(task.name)
            what = "ready" if out < 0 else "health"
            self.log.warn(f"{task.name}: {what} check: {result.error}", task.item.ns, 0, task.name)
        if on_exit is not None:
            self.checks[result.pid] = on_exit
        return result.pid

    def _ready(self, task: Task, why: str) -> None:
        """The task's probe (probes.py) says this run is ready."""
        task.ready = task.was_ready = True
        task.ready_due = None
        took = self.clock() - task.since
        self.log.info(
            f"{task.name} is ready after {took:.2f}s ({why})",
            task.item.ns,
            task.pid,
            task.name,
            "ready",
        )
        self._emit("ready", task, f"{task.name} ready ({why})")

    def _spawn(self, task: Task, extra_env: dict[str, str] | None = None) -> None:
        item, settings = task.item, task.settings
        env = dict(self.env)
        env.update(settings.env)
        env["PYINIT_TASK"] = item.name
        env["PYINIT_STAGE"] = item.stage  # boot, async, sync, main or halt
        if extra_env:
            env.update(extra_env)
        is_main = item.stage == "main"
        capture = self.streams.captured(item)
        try:
            identity = spawn.resolve_identity(settings.user, settings.group)
        except KeyError:  # checked at start; only a changed /etc/passwd gets here
            identity = spawn.Identity(
                None, None, None, f"no such user {settings.user!r} or group {settings.group!r}"
            )
        try:
            argv, pass_fds = self.shell.command(item, env, *_ids(identity))
        except shell.StateError as e:  # a boot item whose state later items need
            self.log.error(f"{item.label}: {e}", item.ns, 0, item.name)
            task.life.started(self.clock())
            task.status = 1
            self._decide(task, 0, 1)
            return

        task.born, task.since, task.forked = leftovers.now(), self.clock(), False
        # A new run: its health is what its checks say from now on.
        task.recovering = bool(task.unhealthy) or task.recovering
        task.unhealthy = task.unhealthy_brief = ""

        def forked(pid: int) -> None:  # every signal is blocked while this runs
            task.pid = task.session = pid
            task.forwarded = set()
            task.route = Route(pid, task.route.group, task.route.allowed)
            self.by_pid[pid] = task
            if task is self._foreground:
                self._route_foreground()
            self._publish_routes()

        # Tasks start in the directory pyinit was started in (pyinit itself has left it).
        cwd = settings.cwd or self.cwd or self.plan.start_dir
        pid_var = ""
        if task.probe is not None:  # its notify socket, its fd:N pipe: made before the fork
            probe_env, probe_fds = task.probe.prepare(cwd)
            env.update(probe_env)
            pass_fds = {**pass_fds, **probe_fds}
            if "WATCHDOG_USEC" in probe_env:  # systemd's pair: the pid is known after the fork
                pid_var = "WATCHDOG_PID"
        result = spawn.spawn(
            argv,
            env,
            capture=capture,
            keep_stdin=is_main,
            foreground=is_main,
            cwd=cwd,
            identity=identity,
            pass_fds=pass_fds,
            on_fork=forked,
            pid_var=pid_var,
            rlimits=settings.rlimits,
            umask=settings.umask,
        )
        task.life.started(self.clock())
        ns = item.ns
        if result.error:
            # The child has already exited 126/127; the reaper will report it like any exit.
            self.log.error(f"{item.label}: {result.error}", ns, result.pid, item.name)
        else:
            # TrivialRC runs boot items in its main process: its lines carry main's pid.
            in_main = item.stage == "boot" and self.plan.mode.boot_in_main
            pid = self.log.main_pid if in_main else result.pid
            self.log.info(_launch_message(item), ns, pid, item.name, "start")
            task.exec_ok = True
            self._emit("start", task, f"{task.name} started <pid={result.pid}>")
            now = self.clock()
            if task.probe is None:
                task.ready = task.was_ready = True  # no `ready`: ready once its exec succeeded
            else:
                task.probe.started(result.pid, now)
                if settings.ready_timeout:
                    task.ready_due = now + settings.ready_timeout
        saw = task.probe.saw if task.probe is not None and task.probe.form.kind == "log" else None
        for fd, stream_no in ((result.stdout, 1), (result.stderr, 2)):
            if fd >= 0:
                self.streams.attach(
                    fd, stream_no, item, task.index, task.pid, task.streams, saw, task.ring
                )

    # -- after each wake-up -----------------------------------------------------------------

    def reap(self) -> None:
        """Reap on every wake-up, not only on SIGCHLD: cheap, and no death can be missed."""
        for pid, wait_status in reaper.reap():
            self._reaped(pid, wait_status)

    def tick(self) -> None:
        """What is due now: leftovers' deadlines, pid files, restarts after their backoff."""
        now = self.clock()
        for task in self.all:
            if task.ready_due is not None and now >= task.ready_due:
                self._not_ready(task, now)
            if task.kill_at is not None and now >= task.kill_at and task.running:
                self.log.note(
                    f"{task.name} <pid={task.pid}> still running after {self.grace(task):g}s: "
                    f"sending SIGKILL",
                    task.item.ns,
                    task.pid,
                    task.name,
                )
                task.kill_at = None
                self.kill(task)
            if task.cleanup is not None:
                self._cleanup_tick(task, now)
            if task.pid_file_due is not None:
                self._pid_file_tick(task, now)
        if self.stopping:
            return
        for task in self.all:
            if task.life.restart_due(now):
                self._spawn(task)

    def _not_ready(self, task: Task, now: float) -> None:
        """Past its ready_timeout: a failed run (stop signal, grace, SIGKILL, then its restart
        policy and crash-loop limit as usual)."""
        task.ready_due = None
        if not task.running or self.stopping:
            return
        form = task.settings.ready
        assert form is not None
        self.log.warn(
            f"{task.name} not ready after {task.settings.ready_timeout:g}s "
            f'(ready = "{form.text}"): stopping it',
            task.item.ns,
            task.pid,
            task.name,
        )
        self.send(task, task.settings.stop_signal)
        grace = self.grace(task)
        task.kill_at = now + (grace if grace != INF else DEFAULT_GRACE)

    def next_deadline(self, now: float) -> float | None:
        """The nearest restart, leftover deadline or look at /proc (EventLoop.deadlines)."""
        times = [
            t.life.restart_at
            for t in self.all
            if t.life.state == supervisor.BACKOFF and t.life.restart_at is not None
        ]
        for task in self.all:
            if task.cleanup is not None:
                times.append(task.cleanup.deadline)
                if any(fd < 0 for fd in task.cleanup.procs):  # no pidfds: look now and then
                    times.append(now + POLL_INTERVAL)
            if task.pid_file_due is not None:
                times.append(now + POLL_INTERVAL)
            if task.ready_due is not None:
                times.append(task.ready_due)
            if task.kill_at is not None:
                times.append(task.kill_at)
        return min(times, default=None)

    # -- signalling -------------------------------------------------------------------------

    def send(self, task: Task, signum: int) -> None:
        """Signal one task: its process group, or its pid with `signal_target = "pid"`."""
        if task.pid:
            deliver(task.route, signum)

    def kill(self, task: Task) -> None:
        """SIGKILL a task's whole group, whatever its signal_target (systemd's KillMode=mixed:
        the stop signal to the main process, SIGKILL to everything)."""
        if task.pid:
            deliver(Route(task.pid, True, None), signals.SIGKILL)

    def grace(self, task: Task) -> float:
        """How long a task may take to stop: its grace, which is infinite in a tini-style run
        unless given; but `--timeout` is a deadline, so there the built-in grace applies."""
        grace = task.settings.grace
        if grace == INF and self.hurry and self.plan.sources.get("defaults.grace") == TINI_GRACE:
            return DEFAULT_GRACE
        return grace

    def leftover_grace(self) -> float:
        """For processes no task accounts for: the default grace, or the built-in one when that
        is infinite (nothing of theirs is draining: their task is gone)."""
        grace = self.plan.defaults.grace
        return grace if grace != INF else DEFAULT_GRACE

    # -- task ends --------------------------------------------------------------------------

    def _reaped(self, pid: int, wait_status: int) -> None:
        task = self.by_pid.get(pid)
        code = status.from_wait_status(wait_status)
        checked = self.checks.pop(pid, None)
        if checked is not None:  # a `ready = [...]` or health check command
            checked(code)
            return
        if task is None:
            self.log.debug(f"reaped an orphan <pid={pid}> (exitcode={code})")
            return
        self.streams.drain(task.streams)
        if self.shell.log_read >= 0:
            self._messages()  # what it logged just before it ended comes before its exit line
        del self.by_pid[pid]
        self._main_exited(task, pid, code)

    def _main_exited(self, task: Task, pid: int, code: int) -> None:
        """A task's main process is gone: hand over to its daemon, stop what it left, or
        decide what comes next."""
        task.status = code
        task.pid = 0
        self._publish_routes()
        task.ready, task.ready_due, task.kill_at = False, None, None
        task.exits += 1
        task.done = task.done or code == 0
        self._emit("exit", task, f"{task.name} exited (exitcode={code})")
        if task.probe is not None:
            task.probe.stopped()
        found = self._leftovers(task) if self._looks_for_leftovers(task) else []
        if (
            task.settings.type == "forking"
            and not task.forked
            and code == 0
            and not self.stopping
            and self._hand_over(task, pid, found)
        ):
            return
        self._log_exit(task, pid, code)
        killer = code - 128
        if killer in task.forwarded and task.life.state != supervisor.STOPPING:
            self.log.warn(
                f"{task.name} was killed by {signals.name(killer)}, which pyinit forwarded to it: "
                f"to keep {signals.name(killer)} from it, set signals (the list it should get, or "
                f'"none") in [task.{task.name}] of pyinit.toml',
                task.item.ns,
                pid,
                task.name,
            )
        if found and self._stops_leftovers(task):
            self._stop_leftovers(task, pid, code, found)
            return
        if found:
            self.log.info(
                f"{task.name} left {leftovers.describe(found)} running: they run "
                f"until pyinit stops",
                task.item.ns,
                pid,
                task.name,
            )
        self._decide(task, pid, code)

    def _decide(self, task: Task, pid: int, code: int) -> None:
        """The task's run is over: restart it, or let it end (supervisor.py decides)."""
        decision = task.life.exited(code, self.clock())
        # A run its health check ended is told by why it was stopped, not by its exit code.
        ended = f"unhealthy: {task.unhealthy}" if task.unhealthy else f"exited (exitcode={code})"
        if decision.action == supervisor.RESTART:
            self._emit("restart", task, f"{task.name} restarts in {decision.delay:g}s")
            self.log.warn(
                f"{task.name} {ended}: restart {decision.restarts} in {decision.delay:g}s",
                task.item.ns,
                pid,
                task.name,
                "restart",
            )
            self.notifier.send(
                f"STATUS={task.name} exited (exitcode={code}), restart "
                f"{decision.restarts} in {decision.delay:g}s"
            )
        elif decision.action == supervisor.GIVE_UP:
            self._emit("give-up", task, f"{task.name} failed for good: {decision.reason}")
            why = f"unhealthy: {task.unhealthy_brief}, " if task.unhealthy else ""
            self.log.error(
                f"{task.name} failed for good ({why}exitcode={code}): {decision.reason}",
                task.item.ns,
                pid,
                task.name,
                "give-up",
            )
        elif decision.action == supervisor.LIMIT:
            self.log.warn(
                f"{task.name} exited (exitcode={code}): not restarted, {decision.reason}",
                task.item.ns,
                pid,
                task.name,
            )
        elif task.unhealthy and task.life.failed:  # health action stop or exit
            self._emit("give-up", task, f"{task.name} failed for good: unhealthy")
            self.log.error(
                f"{task.name} failed for good (unhealthy: {task.unhealthy_brief}, "
                f"exitcode={code}): stopped by its health check",
                task.item.ns,
                pid,
                task.name,
                "give-up",
            )
        if task.life.ended and self._on_end is not None:
            self._on_end(task)

    # -- leftovers (leftovers.py) -----------------------------------------------------------

    def _looks_for_leftovers(self, task: Task) -> bool:
        """Once pyinit is stopping, the sweep takes every leftover; TrivialRC leaves them."""
        return not self.stopping and self.plan.mode.stops_leftovers

    def _stops_leftovers(self, task: Task) -> bool:
        """A service's leftovers go before it restarts or counts as ended (systemd's
        KillMode=control-group). A boot or sync item may start a daemon on purpose (the
        entrypoint script's `service x start`), and halt items are followed by the sweep."""
        return task.item.stage in ("async", "main") or task.forked

    def _leftovers(self, task: Task) -> list[leftovers.Proc]:
        claimed: dict[int, str] = {}
        for other in self.all:
            if other.running:
                claimed[other.pid] = claimed[other.session] = other.name
        for check in self.checks:  # a ready or health check runs in a session of its own
            claimed[check] = "a check"
        me = os.getpid()
        return leftovers.find(
            leftovers.scan_below(me),
            me,
            task.name,
            task.session,
            task.born,
            claimed,
        )

    def _hand_over(self, task: Task, pid: int, found: list[leftovers.Proc]) -> bool:
        """type = "forking": the starter exited 0, so its daemon is the task from now on."""
        me = os.getpid()
        main = leftovers.main_process(found, me)
        if task.settings.pid_file:
            written = leftovers.read_pid_file(self._path(task, task.settings.pid_file))
            named = [p for p in found if p.pid == written]
            if named:
                main = named[0]
            else:  # daemons often write it after the parent has exited: look again later
                task.pid_file_due = self.clock() + DEFAULT_GRACE
        if main is None:
            self.log.warn(
                f"{task.name} exited 0 and left no process, but it has type = "
                f'"forking": it did not start a daemon',
                task.item.ns,
                pid,
                task.name,
            )
            task.pid_file_due = None
            return False
        self._become(task, main)
        return True

    def _become(self, task: Task, main: leftovers.Proc) -> None:
        """The forking task's main process is `main` from now on."""
        me = os.getpid()
        if self.by_pid.get(task.pid) is task:
            del self.by_pid[task.pid]
        task.forked = True
        task.pid, task.session, task.status = main.pid, main.sid, None
        # The daemon's group is not the starter's: signals go to the daemon's pid.
        task.route = Route(main.pid, False, task.route.allowed)
        if main.ppid == me:
            self.by_pid[main.pid] = task
        else:  # only a pid_file names a grandchild: its end is seen through a pidfd
            fd = _pidfd(main)
            if fd is None or fd < 0:  # gone already, or no pidfds to see its end with
                self.log.warn(
                    f"{task.name}: cannot follow <pid={main.pid}>, which its pid_file "
                    f"names (not pyinit's child)",
                    task.item.ns,
                    main.pid,
                    task.name,
                )
                if fd is not None and fd >= 0:
                    os.close(fd)
                return
            self.pidfds[fd] = (task, main.pid)
            self.core.watch(fd, self._gone, IN)
        if task is self._foreground:
            self._route_foreground()
        self._publish_routes()
        self.log.info(
            f"{task.name} forked: its main process is <pid={main.pid}> ({main.comm})",
            task.item.ns,
            main.pid,
            task.name,
        )

    def _pid_file_tick(self, task: Task, now: float) -> None:
        """A forking task's pid_file was not there yet when its starter exited."""
        assert task.settings.pid_file is not None
        assert task.pid_file_due is not None
        written = leftovers.read_pid_file(self._path(task, task.settings.pid_file))
        if written is not None and task.running:
            task.pid_file_due = None
            if written != task.pid:
                proc = leftovers.read_proc(written)
                if proc is not None:
                    self._become(task, proc)
            return
        if now >= task.pid_file_due or not task.running:
            task.pid_file_due = None
            self.log.warn(
                f"{task.name}: its pid_file {task.settings.pid_file} has no pid after "
                f"{DEFAULT_GRACE:g}s: its main process is taken to be <pid={task.pid}>",
                task.item.ns,
                task.pid,
                task.name,
            )

    def _stop_leftovers(self, task: Task, pid: int, code: int, found: list[leftovers.Proc]) -> None:
        """Send the leftovers the task's stop signal; decide about the task once they are gone,
        or after SIGKILL at the end of its grace (Cleanup)."""
        grace = self.grace(task)
        grace = grace if grace != INF else DEFAULT_GRACE  # nothing of theirs drains
        took = self.clock() - task.since
        what = leftovers.describe(found)
        if leftovers.daemonized(code, found, os.getpid()) and not task.forked:
            why = leftovers.advice(found, task.name)
        else:
            why = "stopping them first"
        self.log.warn(
            f"{task.name} exited {code} after {took:.2f}s leaving {what}: {why}",
            task.item.ns,
            pid,
            task.name,
        )
        cleanup = Cleanup(pid, code, self.clock(), grace)
        for proc in found:
            fd = _pidfd(proc)
            if fd is None:
                continue  # already gone
            cleanup.procs[fd] = proc.pid
            if fd >= 0:
                self.pidfds[fd] = (task, proc.pid)
                self.core.watch(fd, self._gone, IN)
            _send(fd, proc.pid, task.settings.stop_signal)
        task.cleanup = cleanup
        self._cleanup_progress(task)

    def _gone(self, fd: int) -> None:
        """A pidfd became readable: that process has ended."""
        task, pid = self.pidfds.pop(fd)
        self.core.forget(fd)
        os.close(fd)
        if task.cleanup is not None and fd in task.cleanup.procs:
            del task.cleanup.procs[fd]
            self._cleanup_progress(task)
        elif task.pid == pid:  # a forking task's main process that is not pyinit's child
            self.log.debug(
                f"{task.name}: its main process <pid={pid}> ended (not pyinit's "
                f"child: its status is unknown)"
            )
            self._main_exited(task, pid, 0)

    def _cleanup_progress(self, task: Task) -> None:
        cleanup = task.cleanup
        assert cleanup is not None
        for fd, pid in list(cleanup.procs.items()):
            if fd < 0 and not _exists(pid):  # no pidfds on this kernel: looked at each tick
                del cleanup.procs[fd]
        if cleanup.procs:
            return
        task.cleanup = None
        self._decide(task, cleanup.pid, cleanup.code)

    def _cleanup_tick(self, task: Task, now: float) -> None:
        cleanup = task.cleanup
        assert cleanup is not None
        self._cleanup_progress(task)
        if task.cleanup is None or now < cleanup.deadline:
            return
        if not cleanup.killed:
            self.log.note(
                f"{task.name}: its leftovers still run after {cleanup.grace:g}s: sending SIGKILL",
                task.item.ns,
                0,
                task.name,
            )
            for fd, pid in cleanup.procs.items():
                _send(fd, pid, signals.SIGKILL)
            cleanup.killed = True
            cleanup.deadline = now + KILL_WAIT
            return
        self.log.error(
            f"{task.name}: {len(cleanup.procs)} of its leftovers survived SIGKILL "
            f"(stuck in the kernel?): going on without them",
            task.item.ns,
            0,
            task.name,
        )
        for fd in list(cleanup.procs):
            if fd >= 0:
                self._gone(fd)
        if task.cleanup is not None:
            cleanup.procs.clear()
            self._cleanup_progress(task)

    def _path(self, task: Task, path: str) -> str:
        return os.path.join(task.settings.cwd or self.cwd or self.plan.start_dir, path)

    def _log_exit(self, task: Task, pid: int, code: int) -> None:
        """TrivialRC's exit line: boot items have none in TrivialRC mode (they ran inside trc's
        main process there); halt lines are main's."""
        stage = task.item.stage
        if stage == "boot" and self.plan.mode.boot_in_main:
            return
        if stage == "halt":
            self.log.info(_exit_message(task.item, code), "main", 0, task.name)
        else:
            self.log.info(_exit_message(task.item, code), task.item.ns, pid, task.name)

    def _messages(self, fd: int = -1) -> None:
        """Print what bash items sent through the integrated log functions (shell.py)."""
        for level_name, ns, pid, given, message in self.shell.read_messages():
            level = LEVELS.get(level_name, 1)
            text = " - " + message if level_name == "debug" else message
            # In pyinit's own mode a task's log/warn/err lines are its own words and always
            # shown; TrivialRC shows them only with RC_VERBOSE=true (and debug with _EXTRA).
            if self.plan.mode.task_log_needs_verbose:
                shown = self.log.verbosity >= (3 if level == 3 else 2)
            else:
                shown = level < 3 or self.log.verbosity >= 3
            if shown:
                name = given
                if name not in self.log.stages:  # none given: find the task by its pid
                    task = self.by_pid.get(pid)
                    name = task.name if task else ""
                self.log.emit(level, text, ns, pid, name, force=True)


def _ids(identity: spawn.Identity | None) -> tuple[int | None, int | None]:
    """The uid and gid a task runs as; None for pyinit's own."""
    return (None, None) if identity is None or identity.error else (identity.uid, identity.gid)


def _pidfd(proc: leftovers.Proc) -> int | None:
    """A pidfd for `proc`; `-pid` where the kernel has no pidfds; None when it is gone, or its
    pid already names another process."""
    try:
        fd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return None
    except OSError:  # ENOSYS before Linux 5.3 (or a seccomp filter): look at /proc instead
        fd = -proc.pid
    if not _exists(proc.pid, proc.start):
        if fd >= 0:
            os.close(fd)
        return None
    return fd


def _exists(pid: int, start: float | None = None) -> bool:
    """The process is alive (not a zombie) and, given `start`, is the one that started then."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    proc = leftovers.parse_stat(data)
    alive = data[data.rfind(b")") + 2 :][:1] != b"Z"
    return proc is not None and alive and (start is None or proc.start == start)


def _send(fd: int, pid: int, signum: int) -> None:
    """Signal a leftover through its pidfd (no pid-reuse race), or by pid without one."""
    try:
        if fd >= 0:
            signals.pidfd_send(fd, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:  # it ended meanwhile
        pass
    except PermissionError:  # it changed its uid to one pyinit may not signal
        pass


def _launch_message(item: Item) -> str:
    return {
        "boot": "Launching in the boot: ",
        "async": "Launching in the background: ",
        "sync": "Launching in the foreground: ",
        "main": "Launching in the foreground: ",
        "halt": (
            "Running the shutdown script: "
            if item.how != "bash-code"
            else "Running the shutdown command: "
        ),
    }[item.stage] + item.label


def _exit_message(item: Item, code: int) -> str:
    where = {
        "boot": "Exiting in the boot",
        "async": "Exiting in the background",
        "sync": "Exiting in the foreground",
        "main": "Exiting in the foreground",
        "halt": (
            "Exiting from the shutdown script"
            if item.how != "bash-code"
            else "Exiting from the shutdown command"
        ),
    }[item.stage]
    return f"{where} (exitcode={code}): {item.label}"
