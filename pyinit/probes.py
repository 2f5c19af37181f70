"""Watching a task become ready: one probe per task, as fds and deadlines of the event core.

A probe is made before the task's process is forked (`Probes.make`), because some forms must
exist before the exec: the notify socket (so that a short-lived `systemd-notify --ready` is
attributed to the task that ran it) and the fd:N pipe. It tells `on_ready(why)` once, per run
of the task; `stopped()` forgets the run, `close()` the probe (docs/readiness.md).

    notify   a datagram socket of the task's own (abstract namespace: no file, no permission
             problem for a task that runs as another user), NOTIFY_SOCKET in its environment
    fd:N     a pipe whose write end is the task's fd N; the first newline is readiness
    log:RE   the first line of its output that matches (streams.py hands over the raw chunks)
    listen   /proc/PID/net/tcp and tcp6 of the task's network namespace show a listener
    tcp      a non-blocking connect succeeds
    http     a non-blocking GET answers 200-399 (the Kubernetes rule)
    file     the path exists (a stale one is removed before the start)
    command  the command exits 0; Tasks runs it (as the task's user, in its own session) and
             reaps it like every process
"""

from __future__ import annotations

import os

from pyinit import leftovers

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from pyinit.attempt import Attempt
    from pyinit.log import Log
    from pyinit.loop import EventLoop
    from pyinit.ready import ReadyForm

#: The largest notify datagram read (systemd's own limit is larger; READY=1 needs 7 bytes).
DATAGRAM = 4096
#: How much of a line the log form keeps while it waits for the line's end.
LINE_LIMIT = 65536
#: How long after an fd:N pipe's EOF the task must still run for the EOF to be news.
EOF_GRACE = 0.2
#: TCP state 0A: LISTEN (include/net/tcp_states.h).
LISTEN = "0A"


class Probe:
    """What every form has: the task's name, the callback, whether this run is ready."""

    def __init__(
        self, form: ReadyForm, name: str, on_ready: Callable[[str], None], log: Log
    ) -> None:
        self.form = form
        self.name = name
        self.on_ready = on_ready
        self.log = log
        self.ready = False
        self.pid = 0
        self.session = 0
        self.cwd = "/"
        self.due: float | None = None  # when a polled form looks next
        self.status = ""  # the last sd_notify STATUS= (notify only)

    def prepare(self, cwd: str) -> tuple[dict[str, str], dict[int, int]]:
        """Before the fork: the variables and the fds ({fd in the task: fd in pyinit}) the
        task's process gets for this run; `cwd` is where it will start."""
        self.cwd = cwd
        return self.env(), self.pass_fds()

    def env(self) -> dict[str, str]:
        """Variables the task's process gets for this form."""
        return {}

    def pass_fds(self) -> dict[int, int]:
        """{fd in the task: fd in pyinit} for this run."""
        return {}

    def started(self, pid: int, now: float) -> None:
        """The task's process runs (exec succeeded)."""
        self.pid = self.session = pid
        self.ready = False

    def stopped(self) -> None:
        """This run is over: what belongs to it is closed; the probe stays for the next."""
        self.pid = 0
        self.due = None

    def close(self) -> None:
        self.stopped()

    def _ready(self, why: str) -> None:
        if not self.ready and self.pid:
            self.ready = True
            self.due = None
            self.on_ready(why)

    # for the polled forms
    def poll(self, now: float) -> None:
        """Look once (called when `due` has come)."""

    # for the log form
    def saw(self, chunk: bytes, stream_no: int) -> None:
        """Raw output the task wrote (before any prefix)."""

    # for the command form
    def ended(self, code: int) -> None:
        """The check this probe ran has been reaped with `code`."""


class NotifyProbe(Probe):
    """sd_notify(3): READY=1, STATUS=, STOPPING=1, RELOADING=1, MAINPID=, WATCHDOG= on the
    task's socket. With `ready_at_start` the task did not ask for `ready = "notify"`: the
    socket is there for the health watchdog, and the run is ready once it has started."""

    def __init__(
        self,
        form: ReadyForm,
        name: str,
        on_ready: Callable[[str], None],
        log: Log,
        core: EventLoop,
        address: str,
        watchdog: tuple[float, Callable[[str], None]] | None = None,
        ready_at_start: bool = False,
    ) -> None:
        super().__init__(form, name, on_ready, log)
        import socket

        self.core = core
        self.address = address  # "@..." as NOTIFY_SOCKET names it
        self.watchdog = watchdog  # (timeout, called with "1" or "trigger"), for health
        self.ready_at_start = ready_at_start
        self.sock: socket.socket | None = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        self.sock.bind("\0" + address[1:])
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        core.watch(self.sock.fileno(), self._readable)

    def env(self) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": self.address}
        if self.watchdog is not None:  # as systemd sets them; spawn fills in WATCHDOG_PID
            env["WATCHDOG_USEC"] = str(round(self.watchdog[0] * 1_000_000))
        return env

    def started(self, pid: int, now: float) -> None:
        super().started(pid, now)
        if self.ready_at_start:
            self._ready("started")

    def _readable(self, fd: int) -> None:
        import socket

        assert self.sock is not None
        cred_size = socket.CMSG_SPACE(12)  # struct ucred: pid, uid, gid
        while True:
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(DATAGRAM, cred_size)
            except BlockingIOError:
                return
            except OSError:  # a datagram too odd to read: drop it, keep the loop going
                return
            sender = 0
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    sender = int.from_bytes(value[:4], "little", signed=True)
            if not self._ours(sender):
                self.log.debug(
                    f"{self.name}: ignored a notify message from <pid={sender}>, which is "
                    f"not one of its processes"
                )
                continue
            self._message(data, sender)

    def _ours(self, sender: int) -> bool:
        """A message is the task's when its sender is in the task's session (what the task
        forks stays there), or already gone (`systemd-notify` exits at once); a running
        process of another session is not."""
        if not self.pid:
            return False
        if sender in (0, self.pid):
            return sender == self.pid
        proc = leftovers.read_proc(sender)
        return proc is None or self.session in (proc.sid, proc.pgid)

    def _message(self, data: bytes, sender: int) -> None:
        for raw in data.split(b"\n"):
            line = raw.decode(errors="replace")
            key, _, value = line.partition("=")
            if line == "READY=1":
                self._ready("notify: READY=1")
            elif key == "STATUS":
                self.status = value
                self.log.info(f"{self.name}: status: {value}", task=self.name)
            elif line in ("STOPPING=1", "RELOADING=1"):
                self.log.info(f"{self.name}: {line.split('=')[0].lower()}", task=self.name)
            elif key == "WATCHDOG" and value in ("1", "trigger") and self.watchdog is not None:
                self.watchdog[1](value)
            elif key == "MAINPID":
                self.log.debug(f"{self.name}: MAINPID={value} (pyinit follows its own pid)")
            elif line:
                self.log.debug(f"{self.name}: notify message {line[:200]!r} not understood")

    def close(self) -> None:
        super().close()
        if self.sock is not None:
            self.core.forget(self.sock.fileno())
            self.sock.close()
            self.sock = None


class FdProbe(Probe):
    """s6's notification-fd: a newline on fd N. EOF without one means it never will be."""

    def __init__(
        self, form: ReadyForm, name: str, on_ready: Callable[[str], None], log: Log, core: EventLoop
    ) -> None:
        super().__init__(form, name, on_ready, log)
        self.core = core
        self.read_fd = self.write_fd = -1

    def env(self) -> dict[str, str]:
        return {"PYINIT_READY_FD": str(self.form.fd)}  # for a bash item's `ready`

    def pass_fds(self) -> dict[int, int]:
        self._close_pipe()
        self.read_fd, self.write_fd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        os.set_blocking(self.write_fd, True)
        return {self.form.fd: self.write_fd}

    def started(self, pid: int, now: float) -> None:
        super().started(pid, now)
        if self.write_fd >= 0:  # the task has its copy; ours would keep EOF from coming
            os.close(self.write_fd)
            self.write_fd = -1
        if self.read_fd >= 0:
            self.core.watch(self.read_fd, self._readable)

    def _readable(self, fd: int) -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        if b"\n" in data:
            self._ready(f"a newline on fd {self.form.fd}")
        if not data or self.ready:
            if not data and not self.ready:
                # A task that dies closes the fd before the reaper hears of it: say so only if
                # it still runs a moment later (stopped() forgets the run, and the look).
                self.due = self.core.clock() + EOF_GRACE
            self._close_pipe()

    def poll(self, now: float) -> None:
        self.due = None
        if not self.ready and _alive(self.pid):
            self.log.warn(
                f"{self.name} closed fd {self.form.fd} without writing a newline: it "
                f"will not be ready in this run",
                task=self.name,
            )

    def _close_pipe(self) -> None:
        if self.read_fd >= 0:
            try:
                self.core.forget(self.read_fd)
            except (KeyError, FileNotFoundError):  # not watched yet (the spawn failed)
                pass
            os.close(self.read_fd)
        if self.write_fd >= 0:
            os.close(self.write_fd)
        self.read_fd = self.write_fd = -1

    def stopped(self) -> None:
        super().stopped()
        self._close_pipe()


class LogProbe(Probe):
    """The first whole output line that matches the regex."""

    def __init__(
        self, form: ReadyForm, name: str, on_ready: Callable[[str], None], log: Log
    ) -> None:
        super().__init__(form, name, on_ready, log)
        import re

        self.regex = re.compile(form.pattern)
        self.partial = {1: b"", 2: b""}

    def started(self, pid: int, now: float) -> None:
        super().started(pid, now)
        self.partial = {1: b"", 2: b""}

    def saw(self, chunk: bytes, stream_no: int) -> None:
        if self.ready or not self.pid:
            return
        lines = (self.partial[stream_no] + chunk).split(b"\n")
        self.partial[stream_no] = lines.pop()[-LINE_LIMIT:]
        for line in lines:
            if self.regex.search(line):
                self._ready(f"log: {line[:200].decode(errors='replace')}")
                return


class PolledProbe(Probe):
    """listen, tcp, http and file: looked at every `ready_interval`, from the start on. A
    connect or request still unanswered at the next look is dropped and made again."""

    def __init__(
        self,
        form: ReadyForm,
        name: str,
        on_ready: Callable[[str], None],
        log: Log,
        core: EventLoop,
        interval: float,
    ) -> None:
        super().__init__(form, name, on_ready, log)
        self.core = core
        self.interval = interval
        self.attempt: Attempt | None = None  # tcp, http: the connect or GET in flight

    def env(self) -> dict[str, str]:
        if self.form.kind == "file":  # a stale file from the last run must not count
            try:
                os.unlink(os.path.join(self.cwd, self.form.path))
            except OSError:
                pass
        return {}

    def started(self, pid: int, now: float) -> None:
        super().started(pid, now)
        self.due = now  # the first look at once: a fast task is ready at its first poll

    def poll(self, now: float) -> None:
        self.due = now + self.interval
        kind = self.form.kind
        if kind == "file":
            if os.path.exists(os.path.join(self.cwd, self.form.path)):
                self._ready(f"file {self.form.path} exists")
        elif kind == "listen":
            if listening(self.pid, self.form.port):
                self._ready(f"listening on port {self.form.port}")
        else:
            self._drop_socket()  # an attempt that outlived the interval has failed
            self._connect()

    def _connect(self) -> None:
        from pyinit.attempt import Attempt

        form = self.form
        path = form.path if form.kind == "http" else None
        self.attempt = Attempt(self.core, form.host, form.port, path, "pyinit-ready", self._done)

    def _done(self, ok: bool, why: str) -> None:
        self.attempt = None
        if ok and self.form.kind == "http":
            self._ready(f"GET {self.form.path} answered {why.rsplit(maxsplit=1)[-1]}")
        elif ok:
            self._ready(why)

    def _drop_socket(self) -> None:
        if self.attempt is not None:
            self.attempt.cancel()
            self.attempt = None

    def stopped(self) -> None:
        super().stopped()
        self._drop_socket()


def _alive(pid: int) -> bool:
    """The process runs (is not a zombie): an fd closed by its death is not news."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2][1:2] != b"Z"
    except OSError:
        return False


def listening(pid: int, port: int) -> bool:
    """A TCP socket of `pid`'s network namespace listens on `port` (IPv4 or IPv6)."""
    want = f":{port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            continue
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) > 3 and fields[1].endswith(want) and fields[3] == LISTEN:
                return True
    return False


class CommandProbe(Probe):
    """A command that exits 0 when the task is ready, run every `ready_interval` until one
    does. `run(argv)` starts one (Tasks does: the task's user, environment and cwd, its own
    session, output to /dev/null) and returns its pid, or 0; `ended(code)` is called when it
    has been reaped. A check that outlives the task's run is killed with its group."""

    def __init__(
        self,
        form: ReadyForm,
        name: str,
        on_ready: Callable[[str], None],
        log: Log,
        interval: float,
        run: Callable[[tuple[str, ...]], int],
    ) -> None:
        super().__init__(form, name, on_ready, log)
        self.interval = interval
        self.run = run
        self.check = 0  # the pid of the check running now

    def started(self, pid: int, now: float) -> None:
        super().started(pid, now)
        self.due = now

    def poll(self, now: float) -> None:
        self.due = now + self.interval
        if not self.check:  # one at a time: a slow check is waited for (until ready_timeout)
            self.check = self.run(self.form.argv)

    def ended(self, code: int) -> None:
        self.check = 0
        if code == 0:
            self._ready(f"{self.form.argv[0]} exited 0")
        else:
            self.log.debug(f"{self.name}: ready check {self.form.text!r} exited {code}")

    def stopped(self) -> None:
        super().stopped()
        if self.check:
            try:
                os.killpg(self.check, 9)  # SIGKILL to its group: it has a session of its own
            except OSError:  # gone already
                pass


class Probes:
    """Every probe of the run: one deadline source and one after-wake hook for the polled."""

    def __init__(self, core: EventLoop, log: Log) -> None:
        self.core = core
        self.log = log
        self.all: list[Probe] = []
        self.counter = 0

    def make(
        self,
        form: ReadyForm,
        name: str,
        interval: float,
        on_ready: Callable[[str], None],
        run: Callable[[tuple[str, ...]], int],
        watchdog: tuple[float, Callable[[str], None]] | None = None,
        ready_at_start: bool = False,
    ) -> Probe:
        """A probe for one task (kept across its restarts); `run` starts a command check;
        `watchdog` (a notify form only) hears WATCHDOG=1 and WATCHDOG=trigger."""
        probe: Probe
        if form.kind == "notify":
            self.counter += 1
            address = f"@pyinit/{os.getpid()}/notify/{self.counter}"
            probe = NotifyProbe(
                form, name, on_ready, self.log, self.core, address, watchdog, ready_at_start
            )
        elif form.kind == "fd":
            probe = FdProbe(form, name, on_ready, self.log, self.core)
        elif form.kind == "log":
            probe = LogProbe(form, name, on_ready, self.log)
        elif form.kind == "command":
            probe = CommandProbe(form, name, on_ready, self.log, interval, run)
        else:
            probe = PolledProbe(form, name, on_ready, self.log, self.core, interval)
        self.all.append(probe)
        return probe

    def next_deadline(self, now: float) -> float | None:
        return min((p.due for p in self.all if p.due is not None), default=None)

    def tick(self) -> None:
        now = self.core.clock()
        for probe in self.all:
            if probe.due is not None and probe.due <= now and probe.pid:
                probe.poll(now)

    def close(self) -> None:
        for probe in self.all:
            probe.close()
