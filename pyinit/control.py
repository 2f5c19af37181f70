"""The control socket: `pyinitctl` (ctl.py) asks, pyinit answers, from inside the one loop.

A unix stream socket carrying newline-delimited JSON, one request per line with `"v": 1`, one
reply per line (docs/control.md has the protocol, for socat). Everything is an fd of the event
core: the listening socket, each client, and their deadlines (idle timeout, `wait`, `stop`).

What keeps a client from hurting pyinit:
- at most MAX_CLIENTS at once (the next gets one error line and is closed);
- a request longer than MAX_REQUEST bytes gets an error and the connection is closed;
- replies go through a bounded buffer written without blocking; a client whose buffer would
  pass MAX_PENDING (one that does not read its `events`) is dropped, never waited for;
- a client idle for IDLE seconds is closed (an `events` or `wait` client is not idle);
- the peer's uid (SO_PEERCRED) decides: uid 0 and pyinit's own may do everything, any other
  may only read (ctl.READ_ONLY); every request that changes something is a warning line, with
  the verb, the task and the uid, refused or not.

Nothing here costs start-up time: the C `_socket` module stands in for `socket`, and `json`
(which loads `re`) is imported at the first request, not when the socket is bound.
"""

from __future__ import annotations

import _socket  # not `socket`: that module builds enums and loads selectors (docs/startup.md)
import os
import stat

from pyinit import ctl, signals, view
from pyinit.forwarding import Route, deliver
from pyinit.listener import Conn, Listener

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyinit.config import Plan
    from pyinit.health import Health
    from pyinit.log import Log
    from pyinit.loop import EventLoop
    from pyinit.startorder import StartOrder
    from pyinit.tasks import Task, Tasks

MAX_CLIENTS = 16
MAX_REQUEST = 65536
MAX_PENDING = 1 << 20  # bytes of replies queued for one client
IDLE = 60.0
MUTATING = frozenset(("stop", "start", "restart", "signal", "logs"))


class Client(Conn):
    """One connection (listener.py): what it sent, what it is owed, who it is."""

    __slots__ = ("pid", "streaming", "uid", "waiting")

    def __init__(self, sock: _socket.socket, deadline: float) -> None:
        super().__init__(sock, deadline)
        # Who is at the other end, from the kernel (struct ucred: pid, uid, gid).
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        self.pid = int.from_bytes(cred[0:4], "little")
        self.uid = int.from_bytes(cred[4:8], "little")
        self.streaming = False  # an events client
        self.waiting = 0  # replies it is owed (wait, stop, restart)

    def busy(self) -> bool:
        return self.streaming or self.waiting > 0


class Waiter:
    """A reply owed once `done()` gives it, or `expired` at `deadline`."""

    __slots__ = ("client", "deadline", "done", "expired")

    def __init__(
        self,
        client: Client,
        done: Callable[[], dict[str, object] | None],
        deadline: float | None,
        expired: dict[str, object],
    ) -> None:
        self.client = client
        self.done = done
        self.deadline = deadline
        self.expired = expired


class Control:
    """The socket, its clients, and the verbs."""

    def __init__(
        self,
        core: EventLoop,
        tasks: Tasks,
        order: StartOrder,
        plan: Plan,
        log: Log,
        health: Health | None = None,
    ) -> None:
        self.health = health
        self.core = core
        self.tasks = tasks
        self.order = order
        self.plan = plan
        self.log = log
        self.listener: Listener | None = None
        self.address = ""  # where it listens ("@..." abstract)
        self.path = ""  # the file to remove at the end, if it made one
        self.waiters: list[Waiter] = []
        self.me = os.getuid()

    # -- the socket -------------------------------------------------------------------------

    def open(self) -> None:
        """Bind where ctl.candidates looks: PYINIT_CONTROL, else /run/pyinit/control.sock (in
        a directory only pyinit's uid may write), else the abstract @pyinit/control (a
        read-only /run, no root), else @pyinit/control/PID (that one is taken too)."""
        given = self.plan.control
        if given == "off":
            return
        tries = [given] if given else [ctl.SOCKET, ctl.ABSTRACT, f"{ctl.ABSTRACT}/{os.getpid()}"]
        for address in tries:
            sock = self._bind(address)
            if sock is not None:
                break
        else:
            self.log.warn(f"no control socket: could not bind {', '.join(tries)}")
            return
        self.address = address
        self.listener = Listener(
            self.core,
            sock,
            max_clients=MAX_CLIENTS,
            read_size=MAX_REQUEST,
            max_pending=MAX_PENDING,
            idle=IDLE,
            on_data=self._data,  # type: ignore[arg-type]  # its conns are Clients (make)
            make=Client,
            refusal=lambda: _line(_error(f"too many clients (at most {MAX_CLIENTS})")),
            on_drop=self._forget_waiters,
        )
        self.core.deadlines(self.next_deadline)
        self.core.after_each_wake(self.tick)
        self.tasks.on_event(self._event)
        self.log.debug(f"control socket: {address}")

    def _bind(self, address: str) -> _socket.socket | None:
        sock = _socket.socket(
            _socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_NONBLOCK | _socket.SOCK_CLOEXEC
        )
        try:
            if address.startswith("@"):
                sock.bind("\0" + address[1:])
                return sock
            directory = os.path.dirname(address)
            if address == ctl.SOCKET:
                # Only pyinit's uid may create or replace what is in it; anyone may connect,
                # and the peer's uid decides what it may do (read-only unless root or ours).
                os.makedirs(directory, mode=0o755, exist_ok=True)
                if os.stat(directory).st_uid == os.getuid():
                    os.chmod(directory, 0o755)  # noqa: S103 - anyone may reach the socket
            if _stale(address):
                os.unlink(address)
            sock.bind(address)
            os.chmod(address, 0o666)  # noqa: S103 - SO_PEERCRED decides what a peer may do
        except OSError:
            sock.close()
            return None
        self.path = address
        return sock

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.path:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    # -- clients (listener.py keeps the connections) ------------------------------------

    @property
    def clients(self) -> list[Client]:
        assert self.listener is not None
        return list(self.listener.conns.values())  # type: ignore[arg-type]  # all Clients

    def _data(self, client: Client) -> None:
        """What a client sent: every whole line is one request."""
        assert self.listener is not None
        while b"\n" in client.inbox and self.listener.open(client):
            line, client.inbox = client.inbox.split(b"\n", 1)
            self._request(client, line)
        if self.listener.open(client) and len(client.inbox) > MAX_REQUEST:
            self._send(client, _error(f"request over {MAX_REQUEST} bytes"))
            self._finish(client)

    def _send(self, client: Client, reply: dict[str, object]) -> None:
        """Queue one reply line; written without blocking (listener.py)."""
        assert self.listener is not None
        self.listener.send(client, _line(reply))

    def _finish(self, client: Client) -> None:
        """Close once what is queued has been read: it is owed nothing more."""
        assert self.listener is not None
        client.waiting = 0
        client.streaming = False
        self._forget_waiters(client)
        self.listener.finish(client)

    def _forget_waiters(self, client: Conn) -> None:
        self.waiters = [w for w in self.waiters if w.client is not client]

    # -- deadlines --------------------------------------------------------------------------

    def next_deadline(self, now: float) -> float | None:
        """When a `wait` (or `stop`, `restart`) runs out (the idle ones: listener.py)."""
        return min((w.deadline for w in self.waiters if w.deadline is not None), default=None)

    def tick(self) -> None:
        """Answer the waiters whose condition holds, or whose time ran out."""
        assert self.listener is not None
        now = self.core.clock()
        for waiter in list(self.waiters):
            if not self.listener.open(waiter.client):
                continue
            reply = waiter.done()
            expired = reply is None and waiter.deadline is not None and now >= waiter.deadline
            if reply is not None or expired:
                self.waiters.remove(waiter)
                waiter.client.waiting -= 1
                self._send(waiter.client, reply if reply is not None else waiter.expired)

    # -- requests ---------------------------------------------------------------------------

    def _request(self, client: Client, line: bytes) -> None:
        try:
            request = _decode(line)
        except ValueError:
            self._send(client, _error("not JSON: expected one JSON object per line"))
            return
        if not isinstance(request, dict):
            self._send(client, _error("expected a JSON object"))
            return
        if request.get("v") != ctl.VERSION:
            self._send(
                client,
                _error(
                    f"unknown protocol version {request.get('v')!r} "
                    f"(this pyinit speaks v{ctl.VERSION})"
                ),
            )
            return
        verb = request.get("verb")
        handler = getattr(self, f"_verb_{verb}", None) if verb in ctl.VERBS else None
        if handler is None:
            self._send(
                client,
                _error(
                    f"unknown verb {verb!r} (expected one of {', '.join(ctl.VERBS)})", ctl.USAGE
                ),
            )
            return
        if verb in MUTATING:
            task = request.get("task")
            allowed = client.uid in (0, self.me)
            what = f"{verb} {task}" if isinstance(task, str) else str(verb)
            if verb != "logs" or not allowed:
                self.log.warn(f"{'' if allowed else 'refused '}{what} (uid {client.uid})", "ctl", 0)
            if not allowed:
                self._send(
                    client,
                    _error(
                        f"uid {client.uid} may only read ({', '.join(sorted(ctl.READ_ONLY))}): "
                        f"{verb} needs root or uid {self.me}"
                    ),
                )
                return
        try:
            handler(client, request)
        except _Refused as e:
            self._send(client, _error(e.args[0], e.args[1]))
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            # A field of an unexpected type that no check above caught: the request is wrong,
            # and PID 1 must not go down for it.
            self.log.debug(f"control: {verb} request {request!r} failed: {e!r}")
            self._send(client, _error(f"bad {verb} request: {e}", ctl.USAGE))

    def _task(self, name: object) -> Task:
        """The task named `name`, or a refusal that suggests a close name."""
        if not isinstance(name, str) or not name:
            raise _Refused("expected a task name", ctl.USAGE)
        task = self.tasks.latest(name)
        if task is None:
            names = self._names()
            hint = _closest(name, names)
            more = f" (did you mean {hint}?)" if hint else f" (the tasks: {', '.join(names)})"
            raise _Refused(f"no such task: {name}{more}", ctl.NO_TASK)
        return task

    def _names(self) -> list[str]:
        seen = dict.fromkeys(t.name for t in self.tasks.all)
        seen.update(dict.fromkeys(item.name for item, _ in self.order.waiting))
        seen.update(dict.fromkeys(self.order.never_started))
        return list(seen)

    def _startable(self, task: Task) -> None:
        if task.item.stage in ("boot", "halt"):
            raise _Refused(
                f"{task.name} is a {task.item.stage} item: it runs once, in its stage's order",
                ctl.FAILED,
            )
        if self.tasks.stopping:
            raise _Refused("pyinit is stopping", ctl.FAILED)

    # -- the verbs (each named _verb_VERB) --------------------------------------------------

    def _verb_status(self, client: Client, request: dict[str, object]) -> None:
        rows = self._status_rows()
        wanted = request.get("tasks")
        if isinstance(wanted, list):
            by_name = {row["name"]: row for row in rows}
            for name in wanted:
                if name not in by_name:
                    self._task(name)  # raises with the suggestion
            rows = [by_name[name] for name in wanted]
        self._send(
            client, {"v": ctl.VERSION, "ok": True, "tasks": rows, "ready": self.order.ready_sent}
        )

    def _status_rows(self) -> list[dict[str, object]]:
        return view.status_rows(self.tasks, self.order, self.plan, self.health, self.core.clock())

    def _verb_health(self, client: Client, request: dict[str, object]) -> None:
        healthy, sick = view.healthiness(self.tasks, self.health)
        self._send(client, {"v": ctl.VERSION, "ok": True, "healthy": healthy, "unhealthy": sick})

    def _verb_ready(self, client: Client, request: dict[str, object]) -> None:
        ready, waiting = view.readiness(self.order)
        self._send(client, {"v": ctl.VERSION, "ok": True, "ready": ready, "waiting_for": waiting})

    def _verb_stop(self, client: Client, request: dict[str, object]) -> None:
        task = self._task(request.get("task"))
        self._startable(task)
        main = task.item.stage == "main"
        if main and not request.get("force"):
            raise _Refused(
                f"{task.name} is the main command: its end ends the run; use --force", ctl.FAILED
            )
        if not task.running and task.life.state not in ("backoff",):
            task.held = not main
            self._send(client, _ok(f"{task.name} is {task.state}"))
            return
        self.tasks.hold(task, hold=not main)
        self._owe(
            client,
            lambda: None if task.running else _ok(f"{task.name} is {task.state}"),
            None,
            _error("not stopped", ctl.FAILED),
        )

    def _verb_start(self, client: Client, request: dict[str, object]) -> None:
        task = self._task(request.get("task"))
        self._startable(task)
        if task.running or task.life.state == "backoff":
            raise _Refused(f"{task.name} is {task.state}, not held, done or failed", ctl.FAILED)
        self.tasks.release(task)
        self._send(
            client,
            _ok(f"{task.name} is {task.state} <pid={task.pid}>")
            if task.running
            else _error(f"{task.name} did not start (exitcode={task.status})", ctl.FAILED),
        )

    def _verb_restart(self, client: Client, request: dict[str, object]) -> None:
        task = self._task(request.get("task"))
        self._startable(task)
        if task.item.stage == "main":
            raise _Refused(f"{task.name} is the main command: its end ends the run", ctl.FAILED)
        timeout = request.get("timeout")
        deadline = self.core.clock() + float(timeout) if isinstance(timeout, int | float) else None
        wait_ready = bool(request.get("wait_ready"))
        old_pid = task.pid
        if task.running:
            self.tasks.hold(task)
        state = {"started": False}

        def done() -> dict[str, object] | None:
            if not state["started"]:
                if task.running:
                    return None  # still stopping
                state["started"] = True
                self.tasks.release(task)
                if not task.running:
                    return _error(f"{task.name} did not start (exitcode={task.status})", ctl.FAILED)
            if wait_ready and not task.ready:
                return (
                    None
                    if task.running
                    else _error(
                        f"{task.name} ended before it was ready (exitcode={task.status})",
                        ctl.FAILED,
                    )
                )
            return _ok(f"{task.name} restarted: <pid={old_pid}> -> <pid={task.pid}>", pid=task.pid)

        reply = done()
        if reply is not None:
            self._send(client, reply)
            return
        self._owe(client, done, deadline, _error(f"{task.name}: timed out", ctl.FAILED))

    def _verb_signal(self, client: Client, request: dict[str, object]) -> None:
        task = self._task(request.get("task"))
        try:
            signum = signals.parse(str(request.get("signal")))
        except ValueError:
            raise _Refused(f"unknown signal {request.get('signal')!r}", ctl.USAGE) from None
        if not task.running:
            raise _Refused(f"{task.name} is {task.state}: no process to signal", ctl.FAILED)
        route = Route(task.pid, False, None) if request.get("pid_only") else task.route
        deliver(Route(route.pid, route.group, None), signum)
        self._send(client, _ok(f"sent {signals.name(signum)} to {task.name} <pid={task.pid}>"))

    def _verb_wait(self, client: Client, request: dict[str, object]) -> None:
        names = request.get("tasks")
        if not isinstance(names, list) or not names:
            raise _Refused("wait: expected task names", ctl.USAGE)
        for name in names:
            if name not in self._names():
                self._task(name)
        until = request.get("until")
        timeout = request.get("timeout")
        deadline = self.core.clock() + float(timeout) if isinstance(timeout, int | float) else None

        def done() -> dict[str, object] | None:
            tasks = [self.tasks.latest(str(n)) for n in names]
            if until == "ready":
                good = all(t is not None and t.running and t.ready for t in tasks)
            else:
                good = all(t is None or not t.running for t in tasks)
            return _ok(f"{', '.join(map(str, names))}: {until}") if good else None

        reply = done()
        if reply is not None:
            self._send(client, reply)
            return
        self._owe(
            client,
            done,
            deadline,
            _error(f"timed out waiting for {', '.join(map(str, names))} to be {until}", ctl.FAILED),
        )

    def _verb_events(self, client: Client, request: dict[str, object]) -> None:
        client.streaming = True
        self._send(
            client,
            {
                "v": ctl.VERSION,
                "ok": True,
                "event": {"kind": "hello", "text": f"pyinit <pid={os.getpid()}>: events follow"},
            },
        )

    def _event(self, kind: str, task: Task, text: str) -> None:
        streams = [c for c in self.clients if c.streaming]
        if not streams:
            return
        event = {
            "kind": kind,
            "task": task.name,
            "state": task.state,
            "pid": task.pid or None,
            "text": text,
        }
        for client in streams:
            self._send(client, {"v": ctl.VERSION, "ok": True, "event": event})

    def _verb_logs(self, client: Client, request: dict[str, object]) -> None:
        task = self._task(request.get("task"))
        lines = request.get("lines", 20)
        count = lines if isinstance(lines, int) and 0 < lines <= 10000 else 20
        output = task.ring.tail(count).decode(errors="replace")
        self._send(client, {"v": ctl.VERSION, "ok": True, "output": output})

    def _owe(
        self,
        client: Client,
        done: Callable[[], dict[str, object] | None],
        deadline: float | None,
        expired: dict[str, object],
    ) -> None:
        client.waiting += 1
        self.waiters.append(Waiter(client, done, deadline, expired))


class _Refused(Exception):
    """A request that gets an error reply: (message, exit status for pyinitctl)."""


def _ok(text: str, **fields: object) -> dict[str, object]:
    return {"v": ctl.VERSION, "ok": True, "text": text, **fields}


def _error(message: str, code: int = ctl.FAILED) -> dict[str, object]:
    return {"v": ctl.VERSION, "ok": False, "error": message, "code": code}


def _line(reply: dict[str, object]) -> bytes:
    import json  # at the first reply (see _decode)

    return json.dumps(reply, separators=(",", ":")).encode() + b"\n"


def _decode(line: bytes) -> object:
    import json  # here, not at the top: ~10 ms with `re`, paid at the first request only

    return json.loads(line)


def _stale(path: str) -> bool:
    """A socket file no process listens on any more (a pyinit that was killed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(path)  # not ours to remove
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    probe.settimeout(0.2)
    try:
        probe.connect(path)
    except OSError:
        return True
    finally:
        probe.close()
    raise FileExistsError(path)  # a live pyinit has it: take the next place


def _closest(name: str, names: list[str]) -> str | None:
    """The name one edit away (or a prefix), for "did you mean"."""
    for candidate in names:
        if candidate.startswith(name) or name.startswith(candidate):
            return candidate
    best, best_distance = None, 3
    for candidate in names:
        distance = _distance(name, candidate)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


def _distance(a: str, b: str) -> int:
    """Levenshtein distance, with adjacent swaps counting one (wbe -> web)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]
