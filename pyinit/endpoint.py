"""The HTTP endpoint for probes (`--http ADDR:PORT`): /healthz, /readyz, /status, /metrics.

A Kubernetes `httpGet` probe, a load balancer or Prometheus asks over HTTP, and nothing is
forked to answer (an exec probe forks `pyinitctl` every few seconds). It is a small HTTP/1.0
responder in the one loop, no threads and no `http.server`: each connection is an fd and a
deadline of the event core. It is read-only: no path changes anything (docs/health.md).

What keeps a client from hurting pyinit is the control socket's listener (listener.py): at
most MAX_CLIENTS at once, and when one more comes the oldest is closed (so stalled connections
cannot lock out the probes); a request head over MAX_REQUEST bytes gets 431 and is closed; a
client that sends nothing whole within IDLE seconds of connecting, or does not read its
answer, is closed; an answer is written without blocking and is never larger than the status
JSON.
"""

from __future__ import annotations

import _socket  # not `socket`: that module builds enums and loads selectors (docs/startup.md)
import json

from pyinit import view
from pyinit.listener import Conn, Listener

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyinit.config import Plan
    from pyinit.health import Health
    from pyinit.log import Log
    from pyinit.loop import EventLoop
    from pyinit.startorder import StartOrder
    from pyinit.tasks import Tasks

MAX_CLIENTS = 16
MAX_REQUEST = 8192
IDLE = 10.0
PATHS = ("/healthz", "/readyz", "/status", "/metrics")
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}
TEXT = "text/plain; charset=utf-8"
#: Prometheus' text exposition format, version 0.0.4.
METRICS = "text/plain; version=0.0.4; charset=utf-8"


class Endpoint:
    """The listening socket and its connections."""

    def __init__(
        self,
        core: EventLoop,
        tasks: Tasks,
        order: StartOrder,
        plan: Plan,
        log: Log,
        health: Health | None,
    ) -> None:
        self.core = core
        self.tasks = tasks
        self.order = order
        self.plan = plan
        self.log = log
        self.health = health
        self.listener: Listener | None = None

    def open(self, host: str, port: int) -> None:
        """Listen on host:port; a failure is an error line, and the run goes on without."""
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
        sock = _socket.socket(
            family, _socket.SOCK_STREAM | _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC
        )
        try:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(MAX_CLIENTS)
        except OSError as e:
            sock.close()
            self.log.error(f"no HTTP endpoint: could not listen on {where}: {e.strerror}")
            return
        self.listener = Listener(
            self.core,
            sock,
            max_clients=MAX_CLIENTS,
            read_size=MAX_REQUEST,
            max_pending=1 << 20,  # an answer is at most the status JSON
            idle=IDLE,
            on_data=self._data,
            idle_from_last_read=False,  # IDLE seconds for the whole request, not per read
        )
        if not (host.startswith("127.") or host == "::1"):
            # Every container of a pod shares the pod's network: off loopback, anyone who can
            # reach the pod reads the task list (nothing can be changed over HTTP).
            self.log.warn(
                f"the HTTP endpoint listens on {where}, not on loopback: whoever reaches it "
                f"reads the status of every task"
            )
        self.log.info(f"HTTP endpoint on {where}: {' '.join(PATHS)}")

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    # -- a connection's request -------------------------------------------------------------

    def _data(self, conn: Conn) -> None:
        """What came so far: answer once the request head is whole."""
        end = conn.inbox.find(b"\r\n\r\n")
        if end < 0:
            end = conn.inbox.find(b"\n\n")
        if end < 0:
            if len(conn.inbox) > MAX_REQUEST:
                self._answer(conn, 431, "request head too large\n")
            return
        self._request(conn, conn.inbox[:end])

    def _request(self, conn: Conn, head: bytes) -> None:
        words = head.split(b"\n", 1)[0].strip().split()
        if len(words) != 3 or not words[2].startswith(b"HTTP/1."):
            self._answer(conn, 400, "expected GET PATH HTTP/1.x\n")
            return
        method, target = words[0], words[1].decode(errors="replace")
        if method not in (b"GET", b"HEAD"):
            self._answer(conn, 405, "read-only: GET or HEAD\n", head_only=False)
            return
        path = target.split("?", 1)[0]
        if path not in PATHS:
            self._answer(conn, 404, f"not found; try {', '.join(PATHS)}\n", method == b"HEAD")
            return
        code, body, kind = getattr(self, "_" + path[1:])()
        self._answer(conn, code, body, method == b"HEAD", kind)

    def _answer(
        self, conn: Conn, code: int, body: str, head_only: bool = False, kind: str = TEXT
    ) -> None:
        """Queue the whole answer and close once it is written (HTTP/1.0: one per connection)."""
        data = body.encode()
        head = (
            f"HTTP/1.0 {code} {REASONS[code]}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(data)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        conn.inbox = b""
        assert self.listener is not None
        self.listener.send(conn, head.encode() + (b"" if head_only else data))
        self.listener.finish(conn)

    # -- the paths (each named _PATH) -------------------------------------------------------

    def _healthz(self) -> tuple[int, str, str]:
        healthy, sick = view.healthiness(self.tasks, self.health)
        return (
            (200, "healthy\n", TEXT) if healthy else (503, f"unhealthy: {', '.join(sick)}\n", TEXT)
        )

    def _readyz(self) -> tuple[int, str, str]:
        ready, waiting = view.readiness(self.order)
        if ready:
            return 200, "ready\n", TEXT
        return 503, f"waiting for: {', '.join(waiting) or 'the foreground to start'}\n", TEXT

    def _status(self) -> tuple[int, str, str]:
        rows = self._rows()
        reply = {"v": 1, "ok": True, "tasks": rows, "ready": self.order.ready_sent}
        return 200, json.dumps(reply) + "\n", "application/json"

    def _metrics(self) -> tuple[int, str, str]:
        return 200, metrics_text(self._rows()), METRICS

    def _rows(self) -> list[dict[str, object]]:
        return view.status_rows(self.tasks, self.order, self.plan, self.health, self.core.clock())


def _flag(value: object, row: dict[str, object]) -> int | None:
    if value is None:  # declares no `ready`: ready while it runs
        return int(row.get("pid") is not None)
    return int(bool(value))


def _health(row: dict[str, object]) -> int | None:
    word = row.get("health")
    return None if word in (None, "starting") else int(word == "healthy")


#: (name, type, help, the row's value); a row without a value (None) gives no sample.
SERIES = (
    ("up", "gauge", "1 when the task's process runs", lambda r: int(r.get("pid") is not None)),
    ("ready", "gauge", "1 when the task is ready (0 before)", lambda r: _flag(r["ready"], r)),
    ("healthy", "gauge", "1 when its health checks pass, 0 when unhealthy", _health),
    (
        "restarts_total",
        "counter",
        "restarts of the task since pyinit started",
        lambda r: r["restarts"],
    ),
    ("last_exit_status", "gauge", "the status its last run ended with", lambda r: r["last_exit"]),
    ("uptime_seconds", "gauge", "seconds since its current run started", lambda r: r["uptime"]),
)


def metrics_text(rows: list[dict[str, object]]) -> str:
    """Prometheus text format: per task, up, ready, healthy, restarts, last exit, uptime."""
    lines = []
    for name, kind, text, value in SERIES:
        lines += [f"# HELP pyinit_task_{name} {text}", f"# TYPE pyinit_task_{name} {kind}"]
        for row in rows:
            sample = value(row)
            if sample is not None:
                label = _label(str(row["name"]))
                lines.append(f'pyinit_task_{name}{{task="{label}"}} {sample}')
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    """A label value as the format escapes it: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
