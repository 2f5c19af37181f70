"""How TrivialRC mode differs from pyinit's own: every difference, by name, in one record.

The code never asks "are we in TrivialRC mode?"; it asks for the difference it is about
(`plan.mode.boot_in_main`, `plan.mode.halt_status_replaces`). So this file is the whole list,
and the README's table "TrivialRC mode: every difference" can be checked against it. Why each
difference exists is in docs/trc.md (TrivialRC v1.1.12 measured); the wait-policy rules are in
waitpolicy.py, as the two classes PYINIT.wait_policy and TRC.wait_policy.
"""

from __future__ import annotations

from pyinit import signals
from pyinit.record import Record
from pyinit.waitpolicy import TrcWaitPolicy, WaitPolicy

#: What stops a run in pyinit's mode; any other signal is forwarded to the tasks.
STOP_SIGNALS = frozenset((signals.SIGTERM, signals.SIGINT, signals.SIGQUIT))
#: TrivialRC ends the run on every signal it traps (docs/trc.md §5), and users rely on it:
#: `kill -USR1 $MAINPID` ends a run with 138. The faults and PIPE are not caught by pyinit.
TRC_STOP_SIGNALS = STOP_SIGNALS | {
    signals.parse(n)
    for n in ("HUP", "USR1", "USR2", "ALRM", "ABRT", "TRAP", "SYS", "XCPU", "XFSZ", "VTALRM")
}


class Mode(Record):
    """One mode's answers. Field comments say what TrivialRC mode does."""

    __slots__ = (
        "boot_exit_ends_run",
        "boot_in_main",
        "default_prefix",
        "default_verbosity",
        "empty_plan_ok",
        "foreground_stop_fails",
        "halt_sees_run_status",
        "halt_status_replaces",
        "log_split_streams",
        "main_via_bash",
        "name",
        "notes_are_debug",
        "set_rewrites_args",
        "stop_signals",
        "stops_leftovers",
        "task_log_needs_verbose",
        "wait_policy",
    )
    name: str  # "pyinit" or "TrivialRC", as --check shows it
    stop_signals: frozenset[int]  # every trapped signal ends the run, not only TERM/INT/QUIT
    default_prefix: str  # "": task output unprefixed, as trc wrote it
    default_verbosity: int  # -1: nothing of its own unless RC_VERBOSE=true
    log_split_streams: bool  # log/info lines on stdout, warnings and errors on stderr
    notes_are_debug: bool  # pyinit's own commentary is debug: trc's catalogue only
    task_log_needs_verbose: bool  # a bash item's log/warn/err shown only with RC_VERBOSE
    boot_in_main: bool  # boot ran inside trc: main's pid on its lines, no exit line
    boot_exit_ends_run: bool  # `exit 0` in a boot item ends the run there, with 0
    set_rewrites_args: bool  # a boot item's `set --` changes the command line
    main_via_bash: bool  # the main command runs as "$@" in bash (`trc exit 5`)
    empty_plan_ok: bool  # nothing to run: status 0, not a usage error
    stops_leftovers: bool  # False: what an exited task leaves runs on, as in trc
    foreground_stop_fails: bool  # False: no "stopped, so never 0" rule under wait_any
    halt_sees_run_status: bool  # every halt item's _exit_status is the run's status
    halt_status_replaces: bool  # the last halt item's status replaces the run's
    wait_policy: type[WaitPolicy]  # TrcWaitPolicy: trc's rules for when and with what to end

    def __init__(self, **fields: object) -> None:
        missing = set(self.__slots__) - set(fields)
        if missing:  # every mode answers every question
            raise TypeError(f"Mode needs {', '.join(sorted(missing))}")
        self._set(**fields)


PYINIT = Mode(
    name="pyinit",
    stop_signals=STOP_SIGNALS,
    default_prefix="{name}: ",
    default_verbosity=1,
    log_split_streams=False,
    notes_are_debug=False,
    task_log_needs_verbose=False,
    boot_in_main=False,
    boot_exit_ends_run=False,
    set_rewrites_args=False,
    main_via_bash=False,
    empty_plan_ok=False,
    stops_leftovers=True,
    foreground_stop_fails=True,
    halt_sees_run_status=False,
    halt_status_replaces=False,
    wait_policy=WaitPolicy,
)

TRC = Mode(
    name="TrivialRC",
    stop_signals=TRC_STOP_SIGNALS,
    default_prefix="",
    default_verbosity=-1,
    log_split_streams=True,
    notes_are_debug=True,
    task_log_needs_verbose=True,
    boot_in_main=True,
    boot_exit_ends_run=True,
    set_rewrites_args=True,
    main_via_bash=True,
    empty_plan_ok=True,
    stops_leftovers=False,
    foreground_stop_fails=False,
    halt_sees_run_status=True,
    halt_status_replaces=True,
    wait_policy=TrcWaitPolicy,
)
