"""listener.py, the bounded listening socket under the control socket and the HTTP endpoint:
a real unix socket, driven by a fake event core with a settable clock."""

from __future__ import annotations

import _socket
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyinit.listener import Conn, Listener

pytestmark = pytest.mark.timeout(10)


class Core:
    """The event core's face, without epoll: `turn()` calls every watched handler whose fd is
    ready now (poll with no wait), then the after-wake hooks."""

    def __init__(self) -> None:
        self.now = 100.0
        self.handlers: dict[int, tuple[Callable[[int], None], int]] = {}
        self.sources: list[Callable[[float], float | None]] = []
        self.hooks: list[Callable[[], None]] = []

    def clock(self) -> float:
        return self.now

    def watch(self, fd: int, handler: Callable[[int], None], mask: int = 1) -> None:
        self.handlers[fd] = (handler, mask)

    def forget(self, fd: int) -> None:
        del self.handlers[fd]

    def deadlines(self, source: Callable[[float], float | None]) -> None:
        self.sources.append(source)

    def after_each_wake(self, hook: Callable[[], None]) -> None:
        self.hooks.append(hook)

    def turn(self) -> None:
        import select

        poller = select.poll()
        for fd, (_, mask) in self.handlers.items():
            if mask:
                poller.register(fd, mask)
        for fd, _ in poller.poll(0):
            if fd in self.handlers:
                self.handlers[fd][0](fd)
        for hook in self.hooks:
            hook()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Core, list[Listener], str]]:
    core = Core()
    made: list[Listener] = []
    yield core, made, str(tmp_path / "s")
    for listener in made:
        listener.close()
    while CLIENTS:
        CLIENTS.pop().close()


def serve(
    core: Core, made: list[Listener], path: str, on_data: Callable[[Conn], None], **kw: object
) -> Listener:
    server = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_NONBLOCK)
    server.bind(path)
    options: dict[str, object] = {"max_clients": 2, "read_size": 64, "max_pending": 256}
    options.update(kw)
    listener = Listener(core, server, idle=5.0, on_data=on_data, **options)  # type: ignore[arg-type]
    made.append(listener)
    return listener


CLIENTS: list[socket.socket] = []


def client(path: str) -> socket.socket:
    """A connected client socket (closed at the end of the test)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    CLIENTS.append(sock)
    return sock


def echo_lines(listener: list[Listener]) -> Callable[[Conn], None]:
    def on_data(conn: Conn) -> None:
        while b"\n" in conn.inbox:
            line, conn.inbox = conn.inbox.split(b"\n", 1)
            listener[0].send(conn, b"got " + line + b"\n")

    return on_data


def test_a_request_is_answered(served: tuple[Core, list[Listener], str]) -> None:
    """should hand what a client sends to the protocol and write its answer back."""
    core, made, path = served
    serve(core, made, path, echo_lines(made))
    c = client(path)
    core.turn()  # accept
    c.sendall(b"one\ntw")
    core.turn()
    assert c.recv(100) == b"got one\n"
    c.sendall(b"o\n")
    core.turn()
    assert c.recv(100) == b"got two\n"


def test_one_client_too_many_is_refused_or_the_oldest_goes(
    served: tuple[Core, list[Listener], str],
) -> None:
    """should, at max_clients, write the refusal to the newcomer and close it; without a
    refusal, close the oldest connection and let the newcomer in."""
    core, made, path = served
    serve(core, made, path, echo_lines(made), refusal=lambda: b"too many\n")
    first, second = client(path), client(path)
    core.turn()
    third = client(path)
    core.turn()
    assert third.recv(100) == b"too many\n"
    assert third.recv(100) == b""
    made[0].close()
    os.unlink(path)
    made.clear()
    serve(core, made, path, echo_lines(made))
    old = client(path)
    core.turn()
    core.now += 1
    newer = client(path)
    core.turn()
    core.now += 1
    newest = client(path)
    core.turn()
    assert old.recv(100) == b""  # the oldest went
    newest.sendall(b"hi\n")
    core.turn()
    assert newest.recv(100) == b"got hi\n"
    for s in (first, second, newer):
        s.close()


def test_a_client_that_does_not_read_is_dropped(served: tuple[Core, list[Listener], str]) -> None:
    """should close a client whose unread answers would pass max_pending, not queue more."""
    core, made, path = served
    conns: list[Conn] = []
    serve(core, made, path, conns.append)
    c = client(path)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    core.turn()
    c.sendall(b"x")
    core.turn()
    conn = conns[0]
    for _ in range(10_000):
        if not made[0].open(conn):
            break
        made[0].send(conn, b"y" * 200)
    assert not made[0].open(conn)
    assert made[0].conns == {}


def test_a_half_closed_client_still_gets_what_it_is_owed(
    served: tuple[Core, list[Listener], str],
) -> None:
    """should keep a busy connection whose client shut its writing side, write the answer
    that comes later, then close."""
    core, made, path = served
    conns: list[Conn] = []

    class Owed(Conn):
        owed = True

        def busy(self) -> bool:
            return self.owed

    serve(core, made, path, conns.append, make=Owed)
    c = client(path)
    core.turn()
    c.sendall(b"wait for it\n")
    c.shutdown(socket.SHUT_WR)
    core.turn()
    core.turn()  # the end of its stream
    conn = conns[0]
    assert made[0].open(conn)
    assert isinstance(conn, Owed)
    conn.owed = False
    made[0].send(conn, b"here it is\n")
    assert c.recv(100) == b"here it is\n"
    assert c.recv(100) == b""
    assert not made[0].open(conn)


def test_idle_clients_are_closed_at_their_deadline(
    served: tuple[Core, list[Listener], str],
) -> None:
    """should close a connection idle for `idle` seconds, counted from its last read (the
    control socket) or from its accept (the endpoint: the whole request within the time)."""
    core, made, path = served
    serve(core, made, path, lambda conn: None)
    c = client(path)
    core.turn()
    assert made[0].next_deadline(core.now) == 105.0
    core.now = 104.0
    c.sendall(b"still here")
    core.turn()
    assert made[0].next_deadline(core.now) == 109.0  # from the last read
    core.now = 109.0
    core.turn()
    assert c.recv(100) == b""
    made[0].close()
    os.unlink(path)
    made.clear()
    serve(core, made, path, lambda conn: None, idle_from_last_read=False)
    d = client(path)
    core.turn()
    core.now = 112.0
    d.sendall(b"slow")
    core.turn()
    assert made[0].next_deadline(core.now) == 114.0  # from the accept at 109
