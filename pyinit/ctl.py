"""pyinitctl: see and steer the tasks of a running pyinit (docs/control.md).

    pyinitctl status [TASK...] [--json]     pyinitctl stop TASK [--force]
    pyinitctl start TASK                    pyinitctl restart TASK [--wait ready] [--timeout S]
    pyinitctl signal TASK SIG [--pid-only]  pyinitctl wait TASK... --ready|--down [--timeout S]
    pyinitctl ready                         pyinitctl health
    pyinitctl events [--json]
    pyinitctl logs TASK [-n N]

It speaks newline-delimited JSON to pyinit's control socket: one request per line, each with
`"v": 1`, answered by one line (or, for `events`, a stream of lines). It imports only `_socket`
(the C module: `socket` costs 6 ms more) and `json`, and no module of pyinit's, because
Kubernetes runs exec probes every few seconds.

Where the socket is: $PYINIT_CONTROL when set ("@name" for an abstract name); else
/run/pyinit/control.sock; else the abstract @pyinit/control, or the one @pyinit/control/PID
that /proc/net/unix lists (a pyinit that found those taken).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Iterator, Mapping

VERSION = 1
RUN_DIR = "/run/pyinit"
SOCKET = RUN_DIR + "/control.sock"
ABSTRACT = "@pyinit/control"

# Exit statuses (the README's "Control" table).
OK, FAILED, USAGE, NOT_RUNNING, UNREACHABLE, NO_TASK = 0, 1, 2, 3, 4, 5

USAGE_TEXT = __doc__.split("\n\n")[1]
VERBS = (
    "status",
    "stop",
    "start",
    "restart",
    "signal",
    "wait",
    "ready",
    "health",
    "events",
    "logs",
)
#: Verbs every local user may send; the others need uid 0 or pyinit's own uid.
READ_ONLY = frozenset(("status", "ready", "health", "wait", "events"))


#: Bash completion: verbs, then the task names a running pyinit lists.
COMPLETION = f"""_pyinitctl() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}}
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=($(compgen -W "{" ".join(VERBS)} completion" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$(pyinitctl names 2>/dev/null)" -- "$cur"))
    fi
}}
complete -F _pyinitctl pyinitctl
"""


class Usage(Exception):
    """A command line pyinitctl cannot run: one line, status 2."""


def candidates(environ: Mapping[str, str]) -> list[str]:
    """Where to look for pyinit, in order ("@..." is an abstract name)."""
    given = environ.get("PYINIT_CONTROL", "")
    if given == "off":
        return []
    if given:
        return [given]
    found = [SOCKET, ABSTRACT]
    try:
        with open("/proc/net/unix", "rb") as f:
            table = f.read().decode(errors="replace")
    except OSError:
        return found
    names = {line.split()[-1] for line in table.splitlines()[1:] if line.split()}
    fallbacks = sorted(n for n in names if n.startswith(ABSTRACT + "/"))
    return found + (fallbacks if len(fallbacks) == 1 else [])


def connect(environ: Mapping[str, str]) -> socket | None:
    import _socket

    for address in candidates(environ):
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        try:
            sock.connect("\0" + address[1:] if address.startswith("@") else address)
        except OSError:
            sock.close()
            continue
        return sock
    return None


def replies(sock: socket) -> Iterator[dict[str, object]]:
    """The reply lines, as they come."""
    import json

    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                reply = json.loads(line)
            except ValueError:
                continue
            if isinstance(reply, dict):
                yield reply


def parse(argv: list[str]) -> dict[str, object]:
    """The request for a command line (raises Usage)."""
    if not argv or argv[0] in ("-h", "--help"):
        raise Usage("expected a verb: " + ", ".join(VERBS))
    verb, rest = argv[0], argv[1:]
    if verb not in VERBS:
        raise Usage(f"unknown verb {verb!r} (expected one of {', '.join(VERBS)})")
    request: dict[str, object] = {"v": VERSION, "verb": verb}
    words: list[str] = []
    flags: dict[str, str | bool] = {}
    takes_value = {"--timeout", "--wait", "-n"}
    i = 0
    while i < len(rest):
        word = rest[i]
        if word in takes_value:
            if i + 1 >= len(rest):
                raise Usage(f"{word} needs a value")
            flags[word] = rest[i + 1]
            i += 2
            continue
        if word.startswith("-") and word not in ("-",):
            if word not in ("--json", "--force", "--pid-only", "--ready", "--down"):
                raise Usage(f"{verb}: unknown option {word!r}")
            flags[word] = True
        else:
            words.append(word)
        i += 1
    allowed = {
        "status": {"--json"},
        "stop": {"--force"},
        "start": set(),
        "restart": {"--wait", "--timeout"},
        "signal": {"--pid-only"},
        "wait": {"--ready", "--down", "--timeout"},
        "ready": set(),
        "health": set(),
        "events": {"--json"},
        "logs": {"-n"},
    }[verb]
    extra = sorted(set(flags) - allowed)
    if extra:
        raise Usage(f"{verb}: unknown option {extra[0]!r}")
    one_task = verb in ("stop", "start", "restart", "logs")
    if one_task and len(words) != 1:
        raise Usage(f"{verb}: expected one task name")
    if verb == "signal" and len(words) != 2:
        raise Usage("signal: expected a task name and a signal (signal web HUP)")
    if verb == "wait":
        if not words:
            raise Usage("wait: expected task names")
        if flags.get("--ready") == flags.get("--down"):
            raise Usage("wait: expected --ready or --down")
    if verb in ("ready", "health", "events") and words:
        raise Usage(f"{verb}: takes no task names")
    if "--timeout" in flags:
        try:
            timeout = float(str(flags["--timeout"]))
        except ValueError:
            raise Usage(f"--timeout: expected seconds, got {flags['--timeout']!r}") from None
        if not 0 <= timeout <= 86400:
            raise Usage("--timeout: expected seconds from 0 to 86400")
        request["timeout"] = timeout
    if "--wait" in flags and flags["--wait"] != "ready":
        raise Usage("restart: --wait takes one value: ready")
    if "-n" in flags:
        text = str(flags["-n"])
        if not text.isdigit() or not 0 < int(text) <= 10000:
            raise Usage("logs: -n expected a number of lines from 1 to 10000")
        request["lines"] = int(text)
    if verb == "signal":
        request["task"], request["signal"] = words
        request["pid_only"] = bool(flags.get("--pid-only"))
    elif one_task:
        request["task"] = words[0]
    elif words:
        request["tasks"] = words
    if verb == "stop":
        request["force"] = bool(flags.get("--force"))
    if verb == "restart":
        request["wait_ready"] = flags.get("--wait") == "ready"
    if verb == "wait":
        request["until"] = "ready" if flags.get("--ready") else "down"
    request["json"] = bool(flags.get("--json"))
    return request


def check_text(tasks: list[dict[str, object]]) -> str:
    """For each task with a failing health check command: its words and its output."""
    out = []
    for t in tasks:
        if t.get("unhealthy"):
            out.append(f"\n{t.get('name')} unhealthy: {t.get('unhealthy')}\n")
        output = str(t.get("check_output") or "")
        if output:
            out.append(f"the last failing check's output:\n{output.rstrip()}\n")
    return "".join(out)


def status_text(tasks: list[dict[str, object]]) -> str:
    """One line per task: name, stage, state, pid, uptime, ready, health (when any task has
    a health check), restarts, last exit."""
    checked = any(t.get("health") for t in tasks)
    rows: list[tuple[str, ...]] = [
        ("TASK", "STAGE", "STATE", "PID", "UPTIME", "READY", "HEALTH", "RESTARTS", "LAST EXIT")
    ]
    for t in tasks:
        uptime = t.get("uptime")
        ready = t.get("ready")
        rows.append(
            (
                str(t.get("name")),
                str(t.get("stage")),
                str(t.get("state")) + (f" ({t['detail']})" if t.get("detail") else ""),
                str(t.get("pid") or "-"),
                _duration(uptime) if isinstance(uptime, int | float) else "-",
                "-" if ready is None else ("yes" if ready else "no"),
                str(t.get("health") or "-"),
                str(t.get("restarts", 0)),
                "-" if t.get("last_exit") is None else str(t.get("last_exit")),
            )
        )
    if not checked:
        rows = [row[:6] + row[7:] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    if argv[:1] in (["-h"], ["--help"]):
        sys.stdout.write(USAGE_TEXT + "\n")
        return OK
    if argv == ["completion"]:  # eval "$(pyinitctl completion)" in bash
        sys.stdout.write(COMPLETION)
        return OK
    names_only = argv == ["names"]  # what the completion offers: the tasks status lists
    try:
        request = parse(["status"] if names_only else argv)
        if names_only:
            request["names"] = True
    except Usage as e:
        sys.stderr.write(f"pyinitctl: {e}\n")
        return USAGE
    sock = connect(environ)
    if sock is None:
        sys.stderr.write(
            "pyinitctl: no pyinit to talk to (tried "
            + (", ".join(candidates(environ)) or "nothing: PYINIT_CONTROL=off")
            + ")\n"
        )
        return UNREACHABLE
    import json

    try:
        sock.sendall(json.dumps(request).encode() + b"\n")
        return _show(request, replies(sock))
    except KeyboardInterrupt:
        return OK
    except OSError as e:
        sys.stderr.write(f"pyinitctl: the connection to pyinit broke: {e.strerror}\n")
        return UNREACHABLE
    finally:
        sock.close()


def _show(request: dict[str, object], answers: Iterator[dict[str, object]]) -> int:
    """Print the replies; the exit status."""
    import json

    verb, as_json = request["verb"], request.get("json")
    for reply in answers:
        if not reply.get("ok"):
            sys.stderr.write(f"pyinitctl: {reply.get('error', 'failed')}\n")
            code = reply.get("code", FAILED)
            return code if isinstance(code, int) else FAILED
        if verb == "events":
            event = reply.get("event")
            if isinstance(event, dict):
                sys.stdout.write(
                    json.dumps(event) + "\n" if as_json else f"{event.get('text', event)}\n"
                )
                sys.stdout.flush()
            continue
        if verb == "status":
            tasks = reply.get("tasks", [])
            assert isinstance(tasks, list)
            if request.get("names"):
                sys.stdout.write(
                    "".join(f"{t.get('name')}\n" for t in tasks if isinstance(t, dict))
                )
                return OK
            sys.stdout.write(json.dumps(reply) + "\n" if as_json else status_text(tasks))
            if request.get("tasks") and not as_json:  # named tasks: why a check failed too
                sys.stdout.write(check_text(tasks))
            healthy = all(
                t.get("state") in ("running", "done") and t.get("ready") is not False
                for t in tasks
                if isinstance(t, dict)
            )
            return OK if healthy else NOT_RUNNING
        if verb == "logs":
            sys.stdout.write(str(reply.get("output", "")))
            return OK
        if verb == "health":
            sick = reply.get("unhealthy")
            names = [str(n) for n in sick] if isinstance(sick, list) else []
            if reply.get("healthy"):
                sys.stdout.write("healthy\n")
                return OK
            sys.stdout.write(f"unhealthy: {', '.join(names)}\n")
            return FAILED
        if verb == "ready":
            awaited = reply.get("waiting_for")
            if reply.get("ready"):
                sys.stdout.write("ready\n")
                return OK
            names = [str(n) for n in awaited] if isinstance(awaited, list) else []
            sys.stdout.write(f"not ready: waiting for {', '.join(names)}\n")
            return FAILED
        text = reply.get("text")
        if text:
            sys.stdout.write(f"{text}\n")
        return OK
    if verb == "events":
        return OK
    sys.stderr.write("pyinitctl: pyinit closed the connection without an answer\n")
    return UNREACHABLE


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
