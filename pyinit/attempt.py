"""One TCP connect or one HTTP GET, without blocking, as an fd of the event core.

The readiness probes (`tcp:`, `http://`, probes.py) and the health checks (health.py) ask
the same question again and again: does a connect to HOST:PORT succeed, and does a GET of PATH
answer 200-399 (the Kubernetes rule)? An `Attempt` asks it once and calls `done(ok, why)`
exactly once, unless it is cancelled first; a caller with a time limit cancels it then.
"""

from __future__ import annotations

import os

from pyinit.loop import IN, OUT

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from pyinit.loop import EventLoop

#: 115, EINPROGRESS: a non-blocking connect's answer comes as writability.
IN_PROGRESS = 115
#: Enough of an answer for its status line.
STATUS_LINE = 4096


class Attempt:
    """A connect to `host`:`port`, then, when `path` is given, `GET path`."""

    def __init__(
        self,
        core: EventLoop,
        host: str,
        port: int,
        path: str | None,
        agent: str,
        done: Callable[[bool, str], None],
    ) -> None:
        import socket

        self.core = core
        self.host, self.port, self.path, self.agent = host, port, path, agent
        self.done = done
        self.reply = b""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(
            family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        code = sock.connect_ex((host, port))
        self.sock: socket.socket | None = sock
        if code in (0, IN_PROGRESS):
            core.watch(sock.fileno(), self._connected, OUT)
        else:
            self._finish(False, f"connect: {os.strerror(code).lower()}")

    def cancel(self) -> None:
        """Drop it: its socket is closed, and `done` is never called."""
        if self.sock is not None:
            self.core.forget(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def _finish(self, ok: bool, why: str) -> None:
        self.cancel()
        self.done(ok, why)

    def _connected(self, fd: int) -> None:
        import socket

        assert self.sock is not None
        error = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self._finish(False, f"connect: {os.strerror(error).lower()}")
            return
        if self.path is None:
            self._finish(True, f"connected to {self.host}:{self.port}")
            return
        host = f"[{self.host}]" if ":" in self.host else self.host
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: {host}:{self.port}\r\n"
            f"User-Agent: {self.agent}\r\nConnection: close\r\n\r\n"
        )
        try:
            self.sock.send(request.encode())  # a few dozen bytes: an empty buffer takes them
        except OSError as e:
            self._finish(False, f"http: {(e.strerror or str(e)).lower()}")
            return
        self.core.forget(fd)
        self.core.watch(fd, self._answer, IN)

    def _answer(self, fd: int) -> None:
        assert self.sock is not None
        try:
            data = self.sock.recv(STATUS_LINE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.reply += data
        if b"\n" not in self.reply and data and len(self.reply) < STATUS_LINE:
            return  # the status line is not whole yet
        words = self.reply.split(b"\n", 1)[0].split()
        code = int(words[1]) if len(words) > 1 and words[1].isdigit() else 0
        if not (words[:1] and words[0].startswith(b"HTTP/")) or not code:
            self._finish(False, "http: no answer")
            return
        self._finish(200 <= code < 400, f"http {code}")
