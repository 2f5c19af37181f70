"""The command line: read the plan, set up the process, run the stages, exit with the status.

`main()` reads like the manual: bad input is one line on stderr and status 2 before anything
starts (spec §8); otherwise pyinit sets itself up as an init, runs the plan, and exits with the
status of the task that ended the run.
"""

from __future__ import annotations

import os
import sys

from pyinit import __version__, config, options, status
from pyinit.errors import PyinitError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyinit.config import Plan
    from pyinit.log import Log


LICENSE = """\
pyinit is released under the MIT licence. The optional python-prctl extra is GPL-3.0-or-later;
psutil is BSD-3-Clause. See the LICENSE file of the project.
"""


def entry() -> None:
    """The console script: exit with main()'s status.

    `os._exit` after flushing: an init has nothing left to clean up at this point, and skipping
    the interpreter's teardown saves about a millisecond and a half on every container stop.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with that fd closed (`pyinit ... >&-`): nothing to flush
            continue
        try:
            stream.flush()
        except OSError:  # a closed or broken stdout: nothing more to say
            pass
    os._exit(code)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run pyinit with `argv` (without the program name) under `environ`; return the status."""
    program = sys.argv[0] if sys.argv and sys.argv[0] else "pyinit"
    if os.path.basename(program) in ("__main__.py", "-c", "-m"):
        program = "pyinit"
    if argv is None:
        argv = sys.argv[1:]
    if environ is None:
        environ = os.environ
    if argv[:1] == ["--ctl"]:  # `pyinit --ctl VERB ...` is pyinitctl (docs/control.md)
        from pyinit import ctl

        return ctl.main(argv[1:], environ)
    # Help, version and licence never depend on the work directory or the environment: they
    # are answered from the command line alone, before anything else is read (as tini does).
    try:
        opts = config.parse_args(argv)[0]
        answer = answer_only(opts)
        if answer is not None:
            sys.stdout.write(answer)
            return status.OK
        plan = config.load(argv, environ, program)
    except PyinitError as e:
        _say(f"{os.path.basename(program)}: error: {e}")
        return status.USAGE
    if plan.action == "check":
        from pyinit.plan_text import check_warnings, describe  # only for --check

        sys.stdout.write(describe(plan, show_env=bool(opts.get("show_env"))))
        warnings = [*plan.warnings, *check_warnings(plan)]
        for warning in warnings:
            _say(f"{os.path.basename(program)}: warning: {warning}")
        return status.WARNINGS if warnings else status.OK
    return run(plan, environ)


def answer_only(opts: dict[str, object]) -> str | None:
    """The text of --help, --version or --license when one was asked for (the first wins)."""
    for flag in ("help", "version", "license"):
        if opts.get(flag):
            if flag == "help":
                return options.usage()  # built from the option table, only when asked
            return f"pyinit {__version__}\n" if flag == "version" else LICENSE
    return None


def run(plan: Plan, environ: Mapping[str, str]) -> int:
    """Set pyinit up as an init, run the stages, and return the final status."""
    from pyinit import stages
    from pyinit.log import Log
    from pyinit.runtime import Runtime
    from pyinit.sink import Sink

    sinks = {1: Sink(1), 2: Sink(2)}
    log = Log(
        lambda stream, data: sinks[stream].write(data, own=True),
        name=plan.self_name,
        verbosity=plan.verbosity,
        json=plan.log_json,
        split_streams=plan.mode.log_split_streams,
        main_pid=os.getpid(),
        notes_are_debug=plan.mode.notes_are_debug,
    )
    for warning in plan.warnings:
        log.warn(warning)
    _become_init(plan, log)
    # Not a busy directory: pyinit holds neither its start directory nor the work directory,
    # so either can be unmounted or removed while it runs (as dumb-init). Tasks still start
    # in the start directory (plan.start_dir), and config reads from there too.
    os.chdir("/")
    rt = Runtime(plan, log, sinks, _task_environment(plan, environ))
    try:
        final, reason = stages.run(plan, rt, environ)
        final = status.remap(final, plan.remap)
        log.info(f"Exited (exitcode={final})")
        _write_termination_log(plan.termination_log, reason, final)
    except Exception:  # noqa: BLE001 - the one place that catches any bug, on purpose
        # A bug in pyinit. An init must not leave its processes behind when it dies, so: say
        # what happened (with the traceback: it is a bug report), kill everything, and exit 70
        # (EX_SOFTWARE, sysexits.h) for the orchestrator to restart the container.
        import traceback

        _say("pyinit: internal error, killing every process:\n" + traceback.format_exc())
        rt.shutdown.kill_everything()
        final = status.INTERNAL_ERROR
    finally:
        rt.close()
    return final


def _become_init(plan: Plan, log: Log) -> None:
    """What makes pyinit an init when it is not PID 1, and tini's -p."""
    if os.getpid() != 1:
        from pyinit import reaper

        problem = reaper.become_subreaper()
        if problem:
            log.warn(problem)
        else:
            log.debug("not PID 1: registered as the child subreaper")
        _set_name("pyinit")
    if plan.pdeathsig:
        from pyinit import procctl

        procctl.set_parent_death_signal(plan.pdeathsig)


def _set_name(name: str) -> None:
    """So `ps` and `pidof` show pyinit, also when started as `python -m pyinit`. Writing
    /proc/self/comm is prctl(PR_SET_NAME) without loading anything; prctl only without /proc."""
    try:
        with open("/proc/self/comm", "r+") as f:
            if f.read().strip() != name:
                f.seek(0)
                f.write(name)
        return
    except OSError:  # no /proc (or not writable): try prctl
        pass
    from pyinit import procctl

    try:
        procctl.set_name(name)
    except OSError:  # cosmetic: never worth failing for
        pass


def _task_environment(plan: Plan, environ: Mapping[str, str]) -> dict[str, str]:
    """What every task sees: pyinit's environment plus TrivialRC's variables (spec §3)."""
    env = dict(environ)
    env["MAINPID"] = str(os.getpid())
    env["SELF_NAME"] = plan.self_name
    env["RC_WAIT_POLICY"] = plan.wait
    env["RC_WORK_DIR"] = plan.workdir
    return env


def _write_termination_log(path: str, reason: str, final: int) -> None:
    """Kubernetes shows /dev/termination-log in `kubectl describe pod` (spec §9): one line,
    written only when the file exists (pyinit never creates it)."""
    if not os.path.exists(path):
        return
    reason = reason or "the run ended"
    try:
        with open(path, "w") as f:
            f.write(f"pyinit: {reason}; exit status {final}\n")
    except OSError:  # read-only or not ours: the exit status still tells
        pass


def _say(line: str) -> None:
    try:
        os.write(2, (line + "\n").encode(errors="replace"))
    except OSError:  # stderr closed: the status still tells
        pass
