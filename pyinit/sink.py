"""pyinit's own stdout and stderr, written without ever blocking the loop (spec §7, design).

The problem: when `docker logs` (or whatever reads pyinit's stdout) stalls, a blocking write
stalls PID 1, and with it signal forwarding and reaping. The reference measured exactly that: the
child never got SIGTERM while the init sat in `write()`.

The fix is a non-blocking write with a bounded queue. But O_NONBLOCK belongs to the *open file
description*, which the main command shares when it inherits pyinit's stdout (tini-style
pass-through), and programs break when their stdout starts returning EAGAIN. So pyinit opens a
description of its own:

* pipe, FIFO or terminal: reopen `/proc/self/fd/N` (a new description of the same pipe or tty)
  with O_NONBLOCK, which nobody else sees;
* socket (systemd's journal stream): `send(MSG_DONTWAIT)`, non-blocking per call;
* regular file or /dev/null: writes never wait for a reader, so plain writes are fine (and
  reopening would give a second file offset that overwrites the main command's output);
* if reopening fails: the shared fd, written only when poll says it is writable and at most
  PIPE_BUF bytes at a time, which a pipe accepts without blocking.

When the reader goes away (EPIPE) the sink drops everything from then on and pyinit carries on:
an init must not die because nobody reads its logs. A full disk (ENOSPC) drops what could not be
written, and writing resumes when there is room again.

When stdout and stderr are the same pipe or terminal (`2>&1`, `docker run -t`), their two sinks
share one queue: a line the pipe took only part of is finished before anything else is written,
so the other stream's lines never land in the middle of it.
"""

from __future__ import annotations

import errno
import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections import deque
    from weakref import ReferenceType
else:
    # The C type itself: `collections` costs ~1.7 ms of start-up to import.
    from _collections import deque

#: Stop reading task pipes while this much is queued: tasks then block on their full pipes
#: (back-pressure) instead of pyinit's memory growing.
HIGH_WATER = 1 << 20
#: pyinit's own log lines are dropped (and counted) past this: they must not grow without bound
#: either, but they are small and matter, so they get more room than task output.
HARD_LIMIT = 8 << 20
#: A write of at most PIPE_BUF bytes into a pipe that poll() says is writable does not block.
PIPE_BUF = 4096
#: Small queued chunks are joined up to this size, so a queue of many short log lines is
#: written with few system calls and costs no per-line work.
COALESCE = 65536
#: At most this many queued chunks go out in one `os.writev` (Linux's IOV_MAX is 1024).
WRITEV_MAX = 64

#: The reader is gone for good: drop everything from now on.
_GONE = frozenset(
    (
        errno.EPIPE,
        errno.EBADF,
        errno.EIO,
        errno.ECONNRESET,
        errno.ENXIO,
        errno.EINVAL,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
    )
)


class _Queue:
    """What waits to be written to one file, shared by every sink that writes to that file."""

    __slots__ = ("__weakref__", "broken", "chunks", "dropped", "pending")

    def __init__(self) -> None:
        self.chunks: deque[bytes | bytearray | memoryview] = deque()
        self.pending = 0  # bytes queued
        self.broken = False  # the reader is gone: everything is dropped
        self.dropped = 0  # bytes dropped because of HARD_LIMIT, a broken reader, ENOSPC


#: (st_dev, st_ino) of an open pipe, FIFO, terminal or socket -> its queue, while a sink uses it.
_queues: dict[tuple[int, int], ReferenceType[_Queue]] = {}


def _shared_queue(st: os.stat_result) -> _Queue:
    from _weakref import ref

    key = (st.st_dev, st.st_ino)
    existing = _queues.get(key)
    queue = existing() if existing is not None else None
    if queue is None:
        queue = _Queue()
        _queues[key] = ref(queue)
    return queue


class Sink:
    """A bounded, non-blocking writer for one of pyinit's own output fds."""

    __slots__ = ("_fd", "_given", "_q", "_sock", "fd", "polled_only")

    def __init__(self, fd: int) -> None:
        self._given = fd  # pyinit's own fd 1 or 2, shared with the main command
        self.fd = fd  # the fd the loop polls for writability
        self._fd = fd  # the fd written to (maybe a private reopened one)
        self._sock: socket.socket | None = None  # when fd is a socket
        self._q = _Queue()
        self.polled_only = False  # fallback: write only after poll() said writable
        self._open_private()

    def _open_private(self) -> None:
        try:
            st = os.fstat(self.fd)
        except OSError:  # fd closed (e.g. `pyinit ... >&-`): behave as a broken reader
            self._q.broken = True
            return
        mode = st.st_mode
        if stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not os.isatty(self.fd)):
            return
        self._q = _shared_queue(st)
        if stat.S_ISSOCK(mode):
            import socket  # only under systemd's journal stream and the like

            # A socket object on a dup: leaves the shared fd's blocking mode alone.
            self._sock = socket.socket(fileno=os.dup(self.fd))
            return
        try:
            # O_NOCTTY: reopening a tty must never make it pyinit's controlling terminal.
            flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
            self._fd = os.open(f"/proc/self/fd/{self.fd}", flags)
            self.fd = self._fd
        except OSError:
            self.polled_only = True

    @property
    def pending(self) -> int:
        """Bytes queued (for this file: shared with the other sink when both write to it)."""
        return self._q.pending

    @property
    def broken(self) -> bool:
        """The reader is gone: everything written is dropped."""
        return self._q.broken

    @property
    def dropped(self) -> int:
        """Bytes dropped so far: HARD_LIMIT, a broken reader, a full disk."""
        return self._q.dropped

    @property
    def full(self) -> bool:
        """True while task output should wait (the loop stops reading task pipes)."""
        return self._q.pending >= HIGH_WATER

    def write(self, data: bytes, own: bool = False) -> None:
        """Queue `data` (whole lines) and write as much as can go now without blocking.

        `own` marks pyinit's own log lines, which may use the room up to HARD_LIMIT; task output
        never gets there because the loop stops reading at HIGH_WATER.
        """
        q = self._q
        if q.broken or not data:
            q.dropped += len(data)
            return
        if own and q.pending + len(data) > HARD_LIMIT:
            q.dropped += len(data)
            return
        was_empty = not q.chunks
        q.pending += len(data)
        self._enqueue(data)
        if was_empty and not self.polled_only:
            self.flush()

    def write_parts(self, parts: list[bytes | memoryview]) -> None:
        """`write(b"".join(parts))` without the join: the pieces are queued as they are and
        go out together in one `os.writev` (task output: output.LineSplitter.parts)."""
        q = self._q
        size = sum(len(p) for p in parts)
        if q.broken or not size:
            q.dropped += size
            return
        was_empty = not q.chunks
        q.pending += size
        for part in parts:
            if part:
                self._enqueue(part)
        if was_empty and not self.polled_only:
            self.flush()

    def _enqueue(self, data: bytes | memoryview) -> None:
        chunks = self._q.chunks
        if chunks and len(chunks[-1]) + len(data) <= COALESCE:
            last = chunks[-1]
            if isinstance(last, bytearray):
                last += data  # in place: many short lines cost no copying over and over
            else:
                chunks[-1] = bytearray(last) + data
        else:
            chunks.append(data)

    def flush(self) -> None:
        """Write queued bytes until done or the reader is full. Call when the fd is writable."""
        q = self._q
        chunks = q.chunks
        while chunks:
            data = chunks[0]
            # Several queued chunks (a prefix, a line's start, a chunk of lines) in one call.
            many = len(chunks) > 1 and self._sock is None and not self.polled_only
            batch = [chunks[i] for i in range(min(len(chunks), WRITEV_MAX))] if many else [data]
            try:
                written = os.writev(self._fd, batch) if many else self._write(data)
            except (BlockingIOError, InterruptedError):
                return  # full for now, or a signal: the loop will call again
            except OSError as e:
                if e.errno in _GONE:
                    # EPIPE (reader gone), EBADF/EIO (closed or hung-up tty): stop for good.
                    self._break()
                    return
                # ENOSPC, EDQUOT, EFBIG and the like: this chunk is lost, later ones may fit.
                chunks.popleft()
                q.pending -= len(data)
                q.dropped += len(data)
                continue
            q.pending -= written
            done = written == sum(len(c) for c in batch)
            while written and written >= len(chunks[0]):
                written -= len(chunks.popleft())
            if not done:
                # Partial write: keep the rest at the head, so lines stay whole and in order.
                if written:
                    chunks[0] = chunks[0][written:]
                return
            if self.polled_only:
                return  # one write per writable event: the next may block

    def _write(self, data: bytes | bytearray | memoryview) -> int:
        if self._sock is not None:
            import socket

            # MSG_NOSIGNAL: a gone reader is EPIPE, never SIGPIPE, whatever its disposition.
            return self._sock.send(data, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
        if self.polled_only:
            data = data[:PIPE_BUF]
        return os.write(self._fd, data)

    def _break(self) -> None:
        q = self._q
        q.broken = True
        q.dropped += q.pending
        q.chunks.clear()
        q.pending = 0

    def drain(self, timeout: float) -> None:
        """Last flush before exit: wait for the reader at most `timeout` seconds, then give up."""
        import select
        import time

        deadline = time.monotonic() + timeout
        q = self._q
        while q.chunks and not q.broken:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            poller = select.poll()
            poller.register(self.fd, select.POLLOUT)
            if poller.poll(left * 1000):
                self.flush()

    def close(self) -> None:
        """Close what the sink opened itself (never the fd it was given); later writes are
        dropped."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._fd != self._given:
            os.close(self._fd)
            self._fd = self.fd = self._given
        self._q = _Queue()
        self._q.broken = True
