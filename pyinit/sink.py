"""pyinit's own stdout and stderr, written without ever blocking the loop (SPEC §7, DESIGN).

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
an init must not die because nobody reads its logs.
"""

from __future__ import annotations

import errno
import os
import stat

#: Stop reading task pipes while this much is queued: tasks then block on their full pipes
#: (back-pressure) instead of pyinit's memory growing.
HIGH_WATER = 1 << 20
#: pyinit's own log lines are dropped (and counted) past this: they must not grow without bound
#: either, but they are small and matter, so they get more room than task output.
HARD_LIMIT = 8 << 20
#: A write of at most PIPE_BUF bytes into a pipe that poll() says is writable does not block.
PIPE_BUF = 4096


class Sink:
    """A bounded, non-blocking writer for one of pyinit's own output fds."""

    __slots__ = ("_chunks", "_fd", "_sock", "broken", "dropped", "fd", "pending", "polled_only")

    def __init__(self, fd: int) -> None:
        self.fd = fd                  # the fd the loop polls for writability
        self._fd = fd                 # the fd written to (maybe a private reopened one)
        self._sock: object = None     # a socket object when fd is a socket
        self._chunks: list[bytes] = []
        self.pending = 0              # bytes queued
        self.broken = False           # the reader is gone: everything is dropped
        self.dropped = 0              # bytes dropped because of HARD_LIMIT or a broken reader
        self.polled_only = False      # fallback: write only after poll() said writable
        self._open_private()

    def _open_private(self) -> None:
        try:
            mode = os.fstat(self.fd).st_mode
        except OSError:  # fd closed (e.g. `pyinit ... >&-`): behave as a broken reader
            self.broken = True
            return
        if stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not os.isatty(self.fd)):
            return
        if stat.S_ISSOCK(mode):
            import socket  # only under systemd's journal stream and the like

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
    def full(self) -> bool:
        """True while task output should wait (the loop stops reading task pipes)."""
        return self.pending >= HIGH_WATER

    def write(self, data: bytes, own: bool = False) -> None:
        """Queue `data` (whole lines) and write as much as can go now without blocking.

        `own` marks pyinit's own log lines, which may use the room up to HARD_LIMIT; task output
        never gets there because the loop stops reading at HIGH_WATER.
        """
        if self.broken or not data:
            self.dropped += len(data)
            return
        if own and self.pending + len(data) > HARD_LIMIT:
            self.dropped += len(data)
            return
        self._chunks.append(data)
        self.pending += len(data)
        if not self.polled_only and len(self._chunks) == 1:
            self.flush()

    def flush(self) -> None:
        """Write queued bytes until done or the reader is full. Call when the fd is writable."""
        while self._chunks:
            data = self._chunks[0]
            try:
                written = self._write(data)
            except BlockingIOError:
                return
            except InterruptedError:  # a signal arrived: the loop will call again
                return
            except OSError as e:
                # EPIPE (reader gone), EBADF/EIO (closed or hung-up tty): stop writing for good.
                if e.errno not in (errno.EPIPE, errno.EBADF, errno.EIO, errno.ECONNRESET,
                                   errno.ENXIO, errno.EINVAL):
                    raise
                self._break()
                return
            self.pending -= written
            if written == len(data):
                self._chunks.pop(0)
            else:
                # Partial write: keep the rest at the head, so lines stay whole and in order.
                self._chunks[0] = data[written:]
                return
            if self.polled_only:
                return  # one write per writable event: the next may block

    def _write(self, data: bytes) -> int:
        if self._sock is not None:
            import socket

            assert isinstance(self._sock, socket.socket)
            return self._sock.send(data, socket.MSG_DONTWAIT)
        if self.polled_only:
            data = data[:PIPE_BUF]
        return os.write(self._fd, data)

    def _break(self) -> None:
        self.broken = True
        self.dropped += self.pending
        self._chunks.clear()
        self.pending = 0

    def drain(self, timeout: float) -> None:
        """Last flush before exit: wait for the reader at most `timeout` seconds, then give up."""
        import select
        import time

        deadline = time.monotonic() + timeout
        while self._chunks and not self.broken:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            poller = select.poll()
            poller.register(self.fd, select.POLLOUT)
            if poller.poll(left * 1000):
                self.flush()
