"""A bounded listening socket in the one loop: what the control socket (control.py) and the
HTTP endpoint (endpoint.py) share, so that each is only its protocol.

Every connection is an fd of the event core. What keeps a client from hurting pyinit:
- at most `max_clients` at once; one more is either refused (`refusal` is written to it and it
  is closed: the control socket) or let in after the oldest is closed (the endpoint, so that a
  few stalled connections cannot lock the probes out);
- what it sends is read `read_size` bytes at a time into its inbox; its protocol (`on_data`)
  decides what a request is and how long one may be;
- replies go to a bounded outbox written without blocking: a client whose outbox would pass
  `max_pending` bytes is closed, never waited for;
- a client that is idle for `idle` seconds is closed, unless it is `busy()` (an `events`
  stream, a `wait` that is owed an answer);
- when it closes its side (or half-closes it), what it is owed is still written, then ours is
  closed.
"""

from __future__ import annotations

import _socket  # not `socket`: that module builds enums and loads selectors (docs/startup.md)

from pyinit.loop import IN, OUT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyinit.loop import EventLoop


class Conn:
    """One connection: what it sent, what it has still to read, until when it may be idle."""

    __slots__ = ("closing", "deadline", "fd", "inbox", "outbox", "sock")

    def __init__(self, sock: _socket.socket, deadline: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.inbox = b""
        self.outbox = bytearray()
        self.deadline = deadline
        self.closing = False  # our side closes once the outbox is written

    def busy(self) -> bool:
        """Owed an answer later, or streaming: never idle, and not closed when written."""
        return False


def accept(server: _socket.socket) -> _socket.socket:
    """accept4(SOCK_CLOEXEC) on the C type (socket.py's `accept` wraps it; typeshed leaves
    it out): the new connection, non-blocking."""
    fd, _ = server._accept()  # type: ignore[attr-defined]
    sock = _socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


class Listener:
    """The listening socket and its connections; the protocol gets `on_data(conn)` when bytes
    came, and answers with `send` and `finish`."""

    def __init__(
        self,
        core: EventLoop,
        server: _socket.socket,
        *,
        max_clients: int,
        read_size: int,
        max_pending: int,
        idle: float,
        on_data: Callable[[Conn], None],
        make: Callable[[_socket.socket, float], Conn] = Conn,
        refusal: Callable[[], bytes] | None = None,
        on_drop: Callable[[Conn], None] | None = None,
        idle_from_last_read: bool = True,
    ) -> None:
        self.core = core
        self.server: _socket.socket | None = server
        self.max_clients = max_clients
        self.read_size = read_size
        self.max_pending = max_pending
        self.idle = idle
        self.on_data = on_data
        self.make = make
        self.refusal = refusal  # None: let the newcomer in and close the oldest instead
        self.on_drop = on_drop
        self.idle_from_last_read = idle_from_last_read  # else from the accept
        self.conns: dict[int, Conn] = {}
        server.listen(max_clients)
        core.watch(server.fileno(), self._accept)
        core.deadlines(self.next_deadline)
        core.after_each_wake(self.tick)

    def close(self) -> None:
        for fd in list(self.conns):
            self.drop(fd)
        if self.server is not None:
            self.core.forget(self.server.fileno())
            self.server.close()
            self.server = None

    # -- connections ------------------------------------------------------------------------

    def _accept(self, fd: int) -> None:
        assert self.server is not None
        while True:
            try:
                sock = accept(self.server)
            except OSError:  # nothing more to accept now (or EMFILE: at the next wake-up)
                return
            if len(self.conns) >= self.max_clients:
                if self.refusal is not None:
                    try:
                        sock.send(self.refusal())
                    except OSError:
                        pass
                    sock.close()
                    continue
                oldest = min(self.conns.values(), key=lambda c: c.deadline)
                self.drop(oldest.fd)
            conn = self.make(sock, self.core.clock() + self.idle)
            self.conns[conn.fd] = conn
            self.core.watch(conn.fd, self._readable)

    def _readable(self, fd: int) -> None:
        conn = self.conns[fd]
        try:
            data = conn.sock.recv(self.read_size)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # it closed (or half-closed) its side: answer what is owed, then close
            conn.closing = True
            if conn.busy() or conn.outbox:
                self._rewatch(conn, self._writable, OUT if conn.outbox else 0)
                return
            self.drop(fd)
            return
        if self.idle_from_last_read:
            conn.deadline = self.core.clock() + self.idle
        conn.inbox += data
        self.on_data(conn)

    def send(self, conn: Conn, data: bytes) -> None:
        """Queue `data`; write what the socket takes now, the rest when it can."""
        if len(conn.outbox) + len(data) > self.max_pending:
            self.drop(conn.fd)  # it does not read: it is not waited for
            return
        conn.outbox += data
        self._flush(conn)

    def finish(self, conn: Conn) -> None:
        """Close once what is queued has been read (the protocol has said it owes nothing)."""
        conn.closing = True
        if not conn.outbox:
            self.drop(conn.fd)

    def drop(self, fd: int) -> None:
        conn = self.conns.pop(fd, None)
        if conn is None:
            return
        self.core.forget(fd)
        conn.sock.close()
        if self.on_drop is not None:
            self.on_drop(conn)

    def open(self, conn: Conn) -> bool:
        """Whether `conn` is still connected."""
        return self.conns.get(conn.fd) is conn

    def _flush(self, conn: Conn) -> None:
        try:
            sent = conn.sock.send(conn.outbox)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.drop(conn.fd)
            return
        del conn.outbox[:sent]
        if conn.outbox:
            self._rewatch(conn, self._writable, OUT)
        elif conn.closing and not conn.busy():
            self.drop(conn.fd)
        else:
            self._rewatch(conn, self._readable, 0 if conn.closing else IN)

    def _rewatch(self, conn: Conn, handler: Callable[[int], None], mask: int) -> None:
        self.core.forget(conn.fd)
        self.core.watch(conn.fd, handler, mask)

    def _writable(self, fd: int) -> None:
        self._flush(self.conns[fd])

    # -- deadlines --------------------------------------------------------------------------

    def next_deadline(self, now: float) -> float | None:
        return min((c.deadline for c in self.conns.values() if not c.busy()), default=None)

    def tick(self) -> None:
        now = self.core.clock()
        for fd, conn in list(self.conns.items()):
            if not conn.busy() and now >= conn.deadline:
                self.drop(fd)
