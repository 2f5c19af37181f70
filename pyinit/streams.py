"""Task output on its way out: pipes -> line splitter (prefix or JSON) -> pyinit's sinks.

A task's stdout and stderr are non-blocking pipes watched by the event core (loop.py). What a
task writes is cut into whole lines (output.py), prefixed or turned into JSON, and queued on
pyinit's stdout or stderr `Sink` (sink.py), which never blocks either.

Back-pressure: when a sink's queue is full, no task pipe is read until it has drained to half,
so a task that writes faster than pyinit's reader reads blocks in its own `write`, and nothing
is lost or grows without bound (the reliability suite, tests/process/test_output.py, guards this).
"""

from __future__ import annotations

import os
import time

from pyinit.loop import IN, OUT
from pyinit.output import LineSplitter
from pyinit.sink import HIGH_WATER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Callable

    from pyinit.config import Item, Plan
    from pyinit.loop import EventLoop
    from pyinit.sink import Sink
else:
    from _collections import deque  # the C type: `collections` costs ~1.7 ms (sink.py)

READ_SIZE = 65536  # one pipe's worth: also the line limit, so a chunk never hides a long line
#: How long pyinit's own output may take to reach a slow reader at exit before it is dropped.
FINAL_FLUSH = 2.0


class Ring:
    """A task's last output, both streams as read, bounded to `limit` bytes (`pyinitctl logs`).
    Chunks are kept as they came: adding one is an append, never a copy of the rest."""

    __slots__ = ("chunks", "limit", "size")

    def __init__(self, limit: int = 65536) -> None:
        self.chunks: deque[bytes] = deque()
        self.limit = limit
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        while self.size - len(self.chunks[0]) >= self.limit:
            self.size -= len(self.chunks.popleft())

    def tail(self, lines: int) -> bytes:
        """The last `lines` lines (a last line without its newline counts)."""
        data = b"".join(self.chunks)[-self.limit :]
        cut = data.split(b"\n")
        if cut and cut[-1] == b"":
            cut.pop()
        return b"".join(line + b"\n" for line in cut[-lines:])


class Stream:
    """One of a task's output pipes on its way to one of pyinit's sinks. `owner` is the task's
    list of open streams, which the stream leaves when its pipe closes. `probe`, while set, sees
    the raw chunks (a `ready = "log:..."` task that is not ready yet)."""

    __slots__ = ("fd", "no", "owner", "probe", "ring", "sink", "splitter")

    def __init__(
        self,
        fd: int,
        no: int,
        sink: Sink,
        splitter: LineSplitter,
        owner: list[Stream],
        probe: Callable[[bytes, int], None] | None,
        ring: Ring | None,
    ) -> None:
        self.fd = fd
        self.ring = ring
        self.no = no
        self.sink = sink
        self.splitter = splitter
        self.owner = owner
        self.probe = probe


class Streams:
    """Every open task pipe, pyinit's two sinks, and whether reading is paused."""

    def __init__(self, core: EventLoop, plan: Plan, sinks: dict[int, Sink], env: dict[str, str]):
        self.core = core
        self.plan = plan
        self.sinks = sinks
        self.env = env
        self.open: dict[int, Stream] = {}
        self.paused = False  # task pipes not read while a sink is full
        self.watching_sinks: dict[int, Sink] = {}

    # -- a task's pipes ---------------------------------------------------------------------

    def captured(self, item: Item) -> bool:
        """Task output goes through pyinit (prefixed, JSON) or straight to pyinit's fds."""
        if item.stage == "main" and not self.plan.prefix_main and not self.plan.log_json:
            # Like tini: the main command owns the terminal and its output. In JSON mode every
            # line must be JSON, so its output is captured too (it then has no terminal).
            return False
        return bool(self._prefix_format(item)) or self.plan.log_json

    def attach(
        self,
        fd: int,
        stream_no: int,
        item: Item,
        index: int,
        pid: int,
        owner: list[Stream],
        probe: Callable[[bytes, int], None] | None = None,
        ring: Ring | None = None,
    ) -> None:
        """Read the pipe `fd` a task writes its stream `stream_no` (1 or 2) to, from now on.
        `pid` is bound into its prefix now: lines read after the task exited (a background
        child's) keep it. `probe(chunk, stream_no)` sees what it reads, unprefixed."""
        splitter = self._splitter(item, index, pid, stream_no)
        stream = Stream(fd, stream_no, self.sinks[stream_no], splitter, owner, probe, ring)
        self.open[fd] = stream
        owner.append(stream)
        self.core.watch(fd, self._readable, 0 if self.paused else IN)

    def drain(self, streams: list[Stream]) -> None:
        """Move everything these pipes hold now (a task ended: its last lines come first)."""
        for stream in list(streams):
            self._read(stream, drain=True)

    def _readable(self, fd: int) -> None:
        self._read(self.open[fd], drain=False)

    def _read(self, stream: Stream, drain: bool) -> None:
        """Move what the task wrote to pyinit's sink; on `drain`, everything there is now."""
        while True:
            try:
                chunk = os.read(stream.fd, READ_SIZE)
            except BlockingIOError:  # nothing more for now (a grandchild may still hold it)
                return
            if not chunk:
                self._close(stream)
                return
            if stream.probe is not None:
                stream.probe(chunk, stream.no)
            if stream.ring is not None:
                stream.ring.add(chunk)
            stream.sink.write_parts(stream.splitter.parts(chunk))
            if stream.sink.full and not self.paused:
                self._pause()
            if not drain:
                return

    def _close(self, stream: Stream) -> None:
        tail = stream.splitter.flush()
        if tail:
            stream.sink.write(tail)
        self.core.forget(stream.fd)
        os.close(stream.fd)
        del self.open[stream.fd]
        stream.owner.remove(stream)

    # -- back-pressure ----------------------------------------------------------------------

    def _pause(self) -> None:
        """A sink is full: stop reading task pipes; tasks block on them (back-pressure)."""
        self.paused = True
        for fd in self.open:
            self.core.modify(fd, 0)

    def watch_sinks(self) -> None:
        """After each wake-up: poll sinks with queued bytes for writability; resume task pipes
        once drained."""
        for sink in self.sinks.values():
            want = sink.pending > 0 and not sink.broken
            if want and sink.fd not in self.watching_sinks:
                try:
                    self.core.watch(sink.fd, self._writable, OUT)
                except PermissionError:  # a regular file: always writable, write it all now
                    sink.flush()
                    continue
                self.watching_sinks[sink.fd] = sink
            elif not want and sink.fd in self.watching_sinks:
                self.core.forget(sink.fd)
                del self.watching_sinks[sink.fd]
        if self.paused and all(s.pending < HIGH_WATER // 2 for s in self.sinks.values()):
            self.paused = False
            for fd in self.open:
                self.core.modify(fd, IN)

    def _writable(self, fd: int) -> None:
        self.watching_sinks[fd].flush()

    # -- the end ----------------------------------------------------------------------------

    def close_all(self) -> None:
        """At the end: flush what tasks wrote (grandchildren may hold pipes open forever)."""
        for stream in list(self.open.values()):
            self._read(stream, drain=True)
            if stream.fd in self.open:
                self._close(stream)

    def flush_sinks(self) -> None:
        for sink in self.sinks.values():
            sink.drain(FINAL_FLUSH)

    # -- prefixes ---------------------------------------------------------------------------

    def _prefix_format(self, item: Item) -> str:
        settings = self.plan.settings(item.name)
        return settings.prefix if settings.prefix is not None else self.plan.prefix

    def _splitter(self, item: Item, index: int, pid: int, stream_no: int) -> LineSplitter:
        fmt = self._prefix_format(item)
        if self.plan.log_json:
            from pyinit.log import task_line_json

            stream_name = "stdout" if stream_no == 1 else "stderr"
            return LineSplitter(
                format_line=task_line_json(item.name, item.stage, pid, stream_name),
                limit=READ_SIZE,
            )
        if "{time}" in fmt:
            from pyinit.output import per_second

            def build(now: float) -> bytes:
                return self._prefix(item, index, fmt, pid, stream_no, now)

            return LineSplitter(prefix_fn=per_second(build), limit=READ_SIZE)
        return LineSplitter(self._prefix(item, index, fmt, pid, stream_no), limit=READ_SIZE)

    def _prefix(
        self, item: Item, index: int, fmt: str, pid: int, stream_no: int, now: float | None = None
    ) -> bytes:
        # A stage file's name may hold a line break: in a prefix it would split every line.
        name = item.name.replace("\n", " ").replace("\r", " ")
        if _colour(self.sinks[stream_no].fd, self.env):  # the stream's own sink decides
            name = f"\x1b[{31 + index % 6}m{name}\x1b[0m"
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) if "{time}" in fmt else ""
        text = fmt.format(name=name, pid=pid, stage=item.stage, time=stamp)
        return text.encode(errors="surrogateescape")


def _colour(fd: int, env: dict[str, str]) -> bool:
    """Colours only on a terminal, and never with NO_COLOR set non-empty (no-color.org)."""
    return not env.get("NO_COLOR") and os.isatty(fd)
