"""pyinit's own log lines, in TrivialRC's format or as JSON (spec §7).

Text:  `2026-11-27 10:00:00 pyinit [async/123]: Launching in the background: trc.d/async.web`
       (local time, the name pyinit was started as, the stage namespace and the pid the line is
       about: TrivialRC's exact format, so existing log filters keep working).
JSON:  one object per line: time (RFC 3339), task, stage, pid, stream, level, message. The
       stage is the task's own (boot, async, sync, main, halt), the word its output lines
       carry too; `pyinit` on lines about no task. Always valid UTF-8: text that was not (a
       file name) has U+FFFD for the bad bytes and the raw bytes in `message_b64`.

Levels follow TrivialRC's switches: errors and warnings by default, `-v`/`RC_VERBOSE=true` adds
the launch and exit lines (info), `-vv`/`RC_VERBOSE_EXTRA=true` adds debug, `-q` keeps only errors.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

ERROR, WARN, INFO, DEBUG = 0, 1, 2, 3
LEVEL_NAMES = ("error", "warn", "info", "debug")
STDOUT, STDERR = 1, 2


def rfc3339(now: float) -> str:
    """UTC time with milliseconds, as log shippers expect: 2026-11-27T10:00:00.123Z."""
    return _rfc3339_ms(int(now * 1000))


def _rfc3339_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def json_line(fields: dict[str, object]) -> bytes:
    """One JSON object and a newline; non-ASCII kept as UTF-8.

    A string holding bytes that were not UTF-8 (a file name decoded with surrogateescape) would
    come out as lone `\\udcXX` escapes, which strict parsers reject: such a field gets U+FFFD
    for the bad bytes, and a `FIELD_b64` field next to it the raw bytes.
    """
    import json  # only in JSON mode: it costs start-up time

    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode() + b"\n"
    except UnicodeEncodeError:
        pass
    import binascii

    clean: dict[str, object] = {}
    for key, value in fields.items():
        clean[key] = value
        if isinstance(value, str):
            raw = value.encode(errors="surrogateescape")
            clean[key] = raw.decode(errors="replace")
            if clean[key] != value:
                clean[f"{key}_b64"] = binascii.b2a_base64(raw, newline=False).decode()
    return json.dumps(clean, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def task_line_json(
    task: str, stage: str, pid: int, stream: str, clock: Callable[[], float] = time.time
) -> Callable[[bytes], bytes]:
    """The per-line formatter for a task's output in JSON mode (LineSplitter's format_line):
    `{"time":…,"task":…,"stage":…,"pid":…,"stream":…,"line":…}`, the line decoded as UTF-8;
    a line that is not valid UTF-8 has U+FFFD for the bad bytes and its raw bytes in
    `line_b64`, so that nothing is lost and every parser accepts the line.

    Everything but the line is encoded once (the time once per millisecond), so a line costs
    one string escape instead of a whole json.dumps: about five times faster. The pid is the
    one given here, also for lines read after the task exited.
    """
    from json.encoder import encode_basestring  # what json.dumps uses with ensure_ascii=False

    middle = json_line({"task": task, "stage": stage, "pid": pid, "stream": stream})
    middle = b"," + middle[1:-2] + b',"line":'  # the fields without their braces
    last_ms = -1
    head = b""

    def format_line(line: bytes) -> bytes:
        nonlocal last_ms, head
        ms = int(clock() * 1000)
        if ms != last_ms:
            last_ms = ms
            head = b'{"time":"' + _rfc3339_ms(ms).encode() + b'"' + middle
        try:
            text, tail = line.decode(), b"}\n"
        except UnicodeDecodeError:
            import binascii

            text = line.decode(errors="replace")
            tail = b',"line_b64":"' + binascii.b2a_base64(line, newline=False) + b'"}\n'
        return head + encode_basestring(text).encode() + tail

    return format_line


class Log:
    """Writes pyinit's own lines through `write(stream, data)` (the non-blocking sinks)."""

    __slots__ = (
        "_last_second",
        "_stamp",
        "json",
        "main_pid",
        "name",
        "note_level",
        "split_streams",
        "stages",
        "verbosity",
        "write",
    )

    def __init__(
        self,
        write: Callable[[int, bytes], None],
        *,
        name: str = "pyinit",
        verbosity: int = WARN,
        json: bool = False,
        split_streams: bool = False,
        main_pid: int = 0,
        notes_are_debug: bool = False,
    ) -> None:
        self.write = write
        self.name = name
        self.verbosity = verbosity
        self.json = json
        # TrivialRC prints `log` lines on stdout and `warn` lines on stderr; pyinit's own mode
        # keeps its chatter off the application's stdout (a common complaint about tini).
        self.split_streams = split_streams
        self.main_pid = main_pid
        # pyinit's own commentary (why the run ended, a signal received, a SIGKILL sent) is a
        # warning in pyinit's mode; TrivialRC mode keeps trc's message catalogue, so there it
        # is a debug line.
        self.note_level = DEBUG if notes_are_debug else WARN
        # task name -> its stage, for JSON lines about it: the `ns` callers pass is TrivialRC's
        # namespace (boot items log as main, the main command as sync), not the stage its
        # output lines carry.
        self.stages: dict[str, str] = {}
        self._last_second = -1
        self._stamp = ""

    def enabled(self, level: int) -> bool:
        return level <= self.verbosity

    def error(
        self, message: str, ns: str = "main", pid: int = 0, task: str = "", event: str = ""
    ) -> None:
        self.emit(ERROR, message, ns, pid, task, event=event)

    def warn(
        self, message: str, ns: str = "main", pid: int = 0, task: str = "", event: str = ""
    ) -> None:
        self.emit(WARN, message, ns, pid, task, event=event)

    def note(self, message: str, ns: str = "main", pid: int = 0, task: str = "") -> None:
        """A line of pyinit's own that TrivialRC has no counterpart for."""
        if self.note_level == DEBUG:
            self.debug(message, ns, pid, task)
        else:
            self.emit(WARN, message, ns, pid, task)

    def info(
        self, message: str, ns: str = "main", pid: int = 0, task: str = "", event: str = ""
    ) -> None:
        self.emit(INFO, message, ns, pid, task, event=event)

    def debug(self, message: str, ns: str = "main", pid: int = 0, task: str = "") -> None:
        # TrivialRC's debug lines read ` - message` (two spaces after the colon).
        self.emit(DEBUG, " - " + message, ns, pid, task)

    def emit(
        self,
        level: int,
        message: str,
        ns: str = "main",
        pid: int = 0,
        task: str = "",
        force: bool = False,
        event: str = "",
    ) -> None:
        """Write one line if `level` is enabled (or `force`, for lines a task asked for).
        `event` names a task's change of state (start, ready, restart, give-up, unhealthy,
        healthy: the words of `pyinitctl events`) for the JSON log's "event" field."""
        if not force and level > self.verbosity:
            return
        stream = STDOUT if self.split_streams and level >= INFO else STDERR
        pid = pid or self.main_pid
        now = time.time()
        if self.json:
            if level == DEBUG and message.startswith(" - "):
                message = message[3:]  # TrivialRC's debug mark: JSON has the level for that
            line = json_line(
                {
                    "time": rfc3339(now),
                    "task": task or self.name,
                    "stage": self.stages.get(task, ns) if task else "pyinit",
                    "pid": pid,
                    "stream": "stdout" if stream == STDOUT else "stderr",
                    "level": LEVEL_NAMES[level],
                    "message": message,
                    **({"event": event} if event else {}),
                }
            )
        else:
            if "\n" in message:  # one message, one line (a file name may hold a newline)
                message = message.replace("\n", " ")
            line = f"{self._timestamp(now)} {self.name} [{ns}/{pid}]: {message}\n".encode(
                errors="surrogateescape"
            )
        self.write(stream, line)

    def _timestamp(self, now: float) -> str:
        second = int(now)
        if second != self._last_second:  # strftime once a second, not once a line
            self._last_second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        return self._stamp
