"""Every command-line option, one row each: long and short forms, environment variable, kind,
value name and help. The parser (config.parse_args), `--help`, the environment names and
--check's "settings from" are derived from this table, and tests/unit/test_options.py checks the
README's option table against it. Adding an option is adding a row (and reading its key in
config.load).

Kinds: "flag" (no value), "count" (-v, -vv), "value" (the last one given wins), "list" (every
one given, in order). tini's -s -g -e -p -l and dumb-init's -c -r keep their meanings.
"""

from __future__ import annotations

from pyinit.record import Record


class Option(Record):
    """One option. `key` is what config.load reads; `section` groups it in --help."""

    __slots__ = ("env", "key", "kind", "long", "metavar", "section", "short", "text")
    long: str
    short: str  # "" when there is none
    key: str
    kind: str
    env: str  # the environment variable that gives it too, or ""
    metavar: str  # the value's name in --help, or ""
    section: str
    text: str  # its line in --help

    def __init__(
        self,
        long: str,
        short: str,
        key: str,
        kind: str,
        section: str,
        text: str,
        *,
        env: str = "",
        metavar: str = "",
    ) -> None:
        self._set(
            long=long,
            short=short,
            key=key,
            kind=kind,
            env=env,
            metavar=metavar,
            section=section,
            text=text,
        )

    def forms(self) -> str:
        """How --help names it: `-w, --workdir DIR`."""
        names = ", ".join(n for n in (self.short and f"-{self.short}", f"--{self.long}") if n)
        return f"{names} {self.metavar}" if self.metavar else names


S, P, G, OUT, X = "Stages", "Policies", "Signals", "Output", "Other"
# fmt: off
OPTIONS: tuple[Option, ...] = (
    Option("workdir", "w", "workdir", "value", S, "where trc.d/ and trc.STAGE.* are looked "
           "up (else the current directory)", env="RC_WORK_DIR", metavar="DIR"),
    Option("boot", "B", "B", "list", S, "a boot item as bash code", metavar="CODE"),
    Option("background", "D", "D", "list", S, "a background (async) item as bash code",
           metavar="CODE"),
    Option("foreground", "F", "F", "list", S, "a foreground (sync) item as bash code",
           metavar="CODE"),
    Option("halt", "H", "H", "list", S, "a halt item as bash code", metavar="CODE"),
    Option("procfile", "", "procfile", "value", S, "run a Procfile's tasks (honcho's rules; "
           "default: the work dir's Procfile when it has no stage files)", env="PYINIT_PROCFILE",
           metavar="FILE"),
    Option("port", "", "port", "value", S, "a Procfile's first PORT (default $PORT, else "
           "5000; 100 more for each next task)", metavar="N"),
    Option("wait", "", "wait", "value", P, "wait_any (default), wait_err, wait_all, "
           "wait_forever", env="RC_WAIT_POLICY", metavar="POLICY"),
    Option("restart", "", "restart", "value", P, "never (default), on-failure, always",
           env="PYINIT_RESTART", metavar="POLICY"),
    Option("restart-delay", "", "restart_delay", "value", P, "first restart delay, doubling "
           "up to 30 s", env="PYINIT_RESTART_DELAY", metavar="SEC"),
    Option("max-restarts", "", "max_restarts", "value", P, "crash-loop limit within 60 s",
           env="PYINIT_MAX_RESTARTS", metavar="N"),
    Option("grace", "", "grace", "value", P, "stop signal -> SIGKILL delay, default 5",
           env="PYINIT_GRACE", metavar="SEC"),
    Option("stop-signal", "", "stop_signal", "value", P, "default TERM",
           env="PYINIT_STOP_SIGNAL", metavar="SIG"),
    Option("timeout", "", "timeout", "value", P, "stop everything after SEC and exit 124",
           env="PYINIT_TIMEOUT", metavar="SEC"),
    Option("halt-timeout", "", "halt_timeout", "value", P, "time limit for each halt item, "
           "default 4", env="PYINIT_HALT_TIMEOUT", metavar="SEC"),
    Option("rewrite", "r", "rewrite", "list", G, "forward the first signal as the second (0 "
           "drops it)", env="PYINIT_REWRITE", metavar="SIG:SIG"),
    Option("single-child", "c", "single_child", "flag", G, "signal the task's pid only, not "
           "its process group", env="PYINIT_SINGLE_CHILD"),
    Option("pdeathsig", "p", "pdeathsig", "value", G, "signal pyinit gets when its parent "
           "dies (tini)", metavar="SIG"),
    Option("subreaper", "s", "subreaper", "flag", G, "tini's subreaper flag: always on"),
    Option("kill-process-group", "g", "kill_group", "flag", G, "tini's process-group flag: "
           "always on"),
    Option("remap-exit", "e", "remap", "list", G, "exit with 0 when the run's status is CODE "
           "(tini; repeatable)", metavar="CODE"),
    Option("prefix", "", "prefix", "value", OUT, "task line prefix, default '{name}: ' ({name} "
           "{pid} {stage} {time}); empty passes output through", env="PYINIT_PREFIX",
           metavar="FMT"),
    Option("prefix-main", "", "prefix_main", "flag", OUT, "prefix the main command's output "
           "too", env="PYINIT_PREFIX_MAIN"),
    Option("log-format", "", "log_format", "value", OUT, "text (default) or json",
           env="PYINIT_LOG_FORMAT", metavar="FMT"),
    Option("verbose", "v", "verbose", "count", OUT, "more log lines: launch and exit (-v), "
           "debug (-vv)"),
    Option("quiet", "q", "quiet", "flag", OUT, "errors only"),
    Option("http", "", "http", "value", X, "serve /healthz /readyz /status /metrics "
           "(read-only) on ADDR:PORT", env="PYINIT_HTTP", metavar="ADDR:PORT"),
    Option("compat", "", "compat", "value", X, "trc: TrivialRC mode (also when started as "
           "`trc`)", env="PYINIT_COMPAT", metavar="MODE"),
    Option("check", "", "check", "flag", X, "print the plan and exit, run nothing: 0, 1 with "
           "warnings, 2 errors"),
    Option("show-env", "", "show_env", "flag", X, "with --check: show env values (masked by "
           "default)"),
    Option("help", "h", "help", "flag", X, "this text"),
    Option("version", "V", "version", "flag", X, "pyinit's version"),
    Option("license", "l", "license", "flag", X, "the licences"),
)
# fmt: on

#: long option -> Option, short letter -> Option, setting key -> environment variable.
LONG = {o.long: o for o in OPTIONS}
SHORT = {o.short: o for o in OPTIONS if o.short}
ENV = {o.key: o.env for o in OPTIONS if o.env}

HEAD = """\
Usage: pyinit [OPTIONS] [-w DIR] [-B CODE]... [-D CODE]... [-F CODE]... [-H CODE]...
              [--] [COMMAND [ARG]...]

A container init: reaps zombies, forwards signals, runs TrivialRC-style stages from a work
directory (trc.d/boot.*, async.*, sync.*, halt.*), restarts tasks, prefixes their output.
The main command (COMMAND [ARG]...) runs as argv, with no shell: the last foreground item.
Options end at -- or at the first word that is not one. (VAR): the variable that gives it too.
"""


def usage() -> str:
    """--help, built from OPTIONS."""
    lines = [HEAD]
    section = ""
    for option in OPTIONS:
        if option.section != section:
            section = option.section
            lines.append(f"{section}:")
        text = f"{option.text} ({option.env})" if option.env else option.text
        forms = option.forms()
        if len(forms) < COLUMN - 3:
            first = f"  {forms}".ljust(COLUMN)
        else:  # too long to share its line with the text
            lines.append(f"  {forms}")
            first = " " * COLUMN
        lines.extend(_wrapped(first, text))
    return "\n".join(lines) + "\n"


COLUMN, WIDTH = 26, 96


def _wrapped(first: str, text: str) -> list[str]:
    """`text` after `first`, in lines of at most WIDTH, continued at COLUMN (no textwrap:
    this is all it needs)."""
    lines, line = [], first
    for word in text.split():
        if len(line) + len(word) + 1 > WIDTH and line.strip():
            lines.append(line.rstrip())
            line = " " * COLUMN
        line += word if line.endswith(" ") or not line.strip() else " " + word
    lines.append(line.rstrip())
    return lines
