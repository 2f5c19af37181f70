"""Sink, in-process against real pipes, sockets, terminals and files: pyinit's own output never
blocks the loop, stays whole and in order, and never changes the fd the main command shares
(spec §7, README "Output")."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyinit.sink import HARD_LIMIT, HIGH_WATER, PIPE_BUF, Sink

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe (read end, write end) with the default 64 KiB capacity, closed afterwards."""
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.fixture
def new_sink() -> Iterator[Callable[[int], Sink]]:
    """Sink(fd), closed (its private fd or socket) at the end of the test."""
    made: list[Sink] = []

    def make(fd: int) -> Sink:
        made.append(Sink(fd))
        return made[-1]

    yield make
    for s in made:
        s.close()


def lines(count: int, tag: bytes, width: int = 100) -> list[bytes]:
    """`count` distinct numbered lines, `width` bytes each with the newline."""
    return [(b"%s %08d " % (tag, i)).ljust(width - 1, b".") + b"\n" for i in range(count)]


def read_available(fd: int) -> bytes:
    """Everything the pipe or socket holds now, without blocking."""
    was = os.get_blocking(fd)
    os.set_blocking(fd, False)
    out = []
    try:
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            out.append(chunk)
    finally:
        os.set_blocking(fd, was)
    return b"".join(out)


def pump(sinks: list[Sink], r: int, limit: float = 10.0) -> bytes:
    """Play the loop and a reader: read what is there, flush every sink with bytes queued,
    until nothing is queued any more."""
    got = []
    deadline = time.monotonic() + limit
    while any(s.pending for s in sinks):
        assert time.monotonic() < deadline, "the sink did not drain"
        got.append(read_available(r))
        for s in sinks:
            if s.pending:
                s.flush()
    got.append(read_available(r))
    return b"".join(got)


def test_write_to_a_full_pipe_returns_and_queues(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should return at once when the pipe is full, keep the rest queued, and say `full` once
    HIGH_WATER bytes wait."""
    r, w = pipe
    s = new_sink(w)
    data = lines(30000, b"a")  # 3 MB, far more than the pipe holds
    started = time.monotonic()
    for line in data:
        s.write(line)
    assert time.monotonic() - started < 2
    written = len(read_available(r))
    assert 0 < written <= 1 << 20  # what the pipe took
    assert s.pending == len(data) * 100 - written
    assert s.full
    assert s.pending >= HIGH_WATER


def test_full_only_at_high_water(pipe: tuple[int, int], new_sink: Callable[[int], Sink]) -> None:
    """should not be `full` below HIGH_WATER queued bytes, and be full at it."""
    _r, w = pipe
    s = new_sink(w)
    s.write(b"x" * 65536)  # fills the pipe (64 KiB by default)
    assert s.pending == 0
    s.write(b"y" * (HIGH_WATER - 1))
    assert s.pending == HIGH_WATER - 1
    assert not s.full
    s.write(b"z")
    assert s.pending == HIGH_WATER
    assert s.full


@pytest.mark.timeout(20)
def test_flush_after_the_reader_drains(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should write out everything queued, whole and in order, as the reader makes room."""
    r, w = pipe
    s = new_sink(w)
    data = lines(20000, b"b")
    for line in data:
        s.write(line)
    assert s.pending > 0
    assert pump([s], r) == b"".join(data)
    assert s.pending == 0
    assert not s.full
    assert s.dropped == 0


@pytest.mark.timeout(20)
def test_big_chunks_stay_in_order_after_partial_writes(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should continue a chunk the pipe took only part of before starting the next one."""
    r, w = pipe
    s = new_sink(w)
    chunks = [bytes([65 + i % 26]) * (100_000 + 7 * i) for i in range(12)]
    for chunk in chunks:
        s.write(chunk)
    out = b""
    while s.pending:
        out += os.read(r, 5000)  # small reads: many partial writes
        s.flush()
    out += read_available(r)
    assert out == b"".join(chunks)


def test_flush_when_the_pipe_is_still_full_does_nothing(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should return from flush without raising or losing bytes while the pipe stays full."""
    r, w = pipe
    s = new_sink(w)
    s.write(b"q" * 200_000)
    pending = s.pending
    for _ in range(3):
        s.flush()
    assert s.pending == pending
    assert pump([s], r) == b"q" * 200_000


def test_epipe_breaks_the_sink_without_raising(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should, when the reader is gone (EPIPE), mark the sink broken and drop what was queued
    and everything after, counting it, without raising."""
    r, w = pipe
    s = new_sink(w)
    s.write(b"x" * 200_000)  # some queued
    os.close(r)
    s.flush()
    assert s.broken
    assert s.pending == 0
    assert not s.full
    s.write(b"more\n")
    s.write(b"own\n", own=True)
    s.flush()
    assert s.dropped >= 200_000 - 65536 + len(b"more\n") + len(b"own\n")
    s.drain(1)  # nothing to wait for


def test_epipe_on_the_first_write(pipe: tuple[int, int], new_sink: Callable[[int], Sink]) -> None:
    """should break on the very first write when the reader is already gone."""
    r, w = pipe
    os.close(r)
    s = new_sink(w)
    s.write(b"hello\n")
    assert s.broken
    assert s.dropped == 6


def test_closed_fd_is_a_broken_sink(pipe: tuple[int, int], new_sink: Callable[[int], Sink]) -> None:
    """should treat a closed fd (`pyinit >&-`) as a reader that is gone: writes are dropped,
    nothing raises."""
    _r, w = pipe
    os.close(w)
    s = new_sink(w)
    assert s.broken
    s.write(b"lost\n")
    s.write(b"lost too\n", own=True)
    s.flush()
    s.drain(0.5)
    assert s.dropped == len(b"lost\n") + len(b"lost too\n")
    assert s.pending == 0


def test_original_pipe_fd_stays_blocking(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should leave the fd it was given (shared with the main command) blocking: the sink
    writes through a description of its own."""
    r, w = pipe
    assert os.get_blocking(w)
    s = new_sink(w)
    s.write(b"x" * 300_000)  # the sink itself must not block on this
    assert os.get_blocking(w)
    assert s.fd != w
    assert not os.get_blocking(s.fd)
    assert os.get_inheritable(s.fd) is False  # the private fd never reaches a task
    assert pump([s], r) == b"x" * 300_000


def test_original_tty_fd_stays_blocking(new_sink: Callable[[int], Sink]) -> None:
    """should leave a terminal fd blocking too, and write to the terminal through its own fd."""
    import pty

    master, slave = pty.openpty()
    try:
        assert os.get_blocking(slave)
        s = new_sink(slave)
        assert os.get_blocking(slave)
        s.write(b"on the terminal\n")
        got = b""
        deadline = time.monotonic() + 5
        while b"terminal" not in got and time.monotonic() < deadline:
            got += os.read(master, 1024)
        assert b"on the terminal" in got
    finally:
        os.close(master)
        os.close(slave)


def test_socket_stdout_never_blocks_and_stays_blocking(new_sink: Callable[[int], Sink]) -> None:
    """should write to a socket (systemd's journal stream) without blocking when its buffer is
    full, keep the rest queued, leave the shared socket fd blocking, and deliver it all."""
    a, b = socket.socketpair()
    try:
        assert a.getblocking()
        s = new_sink(a.fileno())
        data = lines(50000, b"s")  # 5 MB, more than the socket buffers hold
        started = time.monotonic()
        for line in data:
            s.write(line)
        assert time.monotonic() - started < 2
        assert s.pending > 0
        assert os.get_blocking(a.fileno())
        assert a.getblocking()
        assert pump([s], b.fileno()) == b"".join(data)
    finally:
        a.close()
        b.close()


def test_socket_uses_send_with_msg_dontwait(
    monkeypatch: pytest.MonkeyPatch,
    new_sink: Callable[[int], Sink],
) -> None:
    """should write to a socket with send(MSG_DONTWAIT), a non-blocking call on a blocking
    socket."""
    a, b = socket.socketpair()
    calls: list[int] = []
    real_send = socket.socket.send

    def spy(self: socket.socket, data: bytes, flags: int = 0) -> int:
        calls.append(flags)
        return real_send(self, data, flags)

    try:
        s = new_sink(a.fileno())
        monkeypatch.setattr(socket.socket, "send", spy)
        s.write(b"journal\n")
        assert calls
        assert all(flags & socket.MSG_DONTWAIT for flags in calls)
        assert b.recv(100) == b"journal\n"
    finally:
        a.close()
        b.close()


def test_socket_reader_gone_breaks_the_sink(new_sink: Callable[[int], Sink]) -> None:
    """should mark a socket sink broken, without raising, when the other end is closed."""
    a, b = socket.socketpair()
    try:
        s = new_sink(a.fileno())
        b.close()
        s.write(b"nobody listens\n")
        s.write(b"still nobody\n")
        assert s.broken
        assert s.pending == 0
    finally:
        a.close()


def test_regular_file_shares_the_offset(tmp_path: Path, new_sink: Callable[[int], Sink]) -> None:
    """should write a regular file through the fd itself, so its lines land between the main
    command's (same offset), not over them."""
    fd = os.open(tmp_path / "log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        s = new_sink(fd)
        os.write(fd, b"main 1\n")
        s.write(b"sink 1\n")
        os.write(fd, b"main 2\n")
        s.write(b"sink 2\n" * 1000)
        assert s.pending == 0
        assert not s.broken
        assert os.get_blocking(fd)
    finally:
        os.close(fd)
    assert (tmp_path / "log").read_bytes() == b"main 1\nsink 1\nmain 2\n" + b"sink 2\n" * 1000


def test_dev_null_swallows_everything(new_sink: Callable[[int], Sink]) -> None:
    """should write to /dev/null at once and never queue or break."""
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        s = new_sink(fd)
        s.write(b"x" * (3 * HIGH_WATER))
        assert s.pending == 0
        assert not s.broken
        assert not s.full
    finally:
        os.close(fd)


def test_full_disk_drops_without_raising(new_sink: Callable[[int], Sink]) -> None:
    """should drop (and count) what a full disk refuses (ENOSPC, here /dev/full) without
    raising and without giving up on later writes."""
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        s = new_sink(fd)
        s.write(b"no room\n")
        s.write(b"still no room\n", own=True)
        assert s.dropped == len(b"no room\n") + len(b"still no room\n")
        assert s.pending == 0
        assert not s.broken
    finally:
        os.close(fd)


def test_own_lines_dropped_past_hard_limit(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should queue pyinit's own lines past HIGH_WATER but drop (and count) them past
    HARD_LIMIT, so a stalled reader cannot grow pyinit's memory without bound."""
    r, w = pipe
    s = new_sink(w)
    line = b"L" * 999 + b"\n"
    total = HARD_LIMIT // len(line) + 2000
    for _ in range(total):
        s.write(line, own=True)
    assert s.pending <= HARD_LIMIT
    assert s.pending > HIGH_WATER
    assert s.dropped >= 1000 * len(line)
    assert s.dropped % len(line) == 0  # whole lines dropped, never parts
    out = pump([s], r)
    assert len(out) % len(line) == 0
    assert set(out.split(b"\n")[:-1]) == {line[:-1]}


def test_many_small_own_lines_drain_fast(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should drain 8 MB of small queued lines in well under a second's worth of CPU (no
    per-line quadratic work)."""
    r, w = pipe
    s = new_sink(w)
    line = b"pyinit: a restart line\n"
    for _ in range(HARD_LIMIT // len(line)):
        s.write(line, own=True)
    started = time.process_time()
    out = pump([s], r, limit=30)
    assert out == line * (len(out) // len(line))
    assert s.dropped + len(out) == (HARD_LIMIT // len(line)) * len(line)
    assert time.process_time() - started < 3


def test_drain_gives_up_after_the_timeout(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should stop waiting for a reader that never reads once the timeout is over."""
    _r, w = pipe
    s = new_sink(w)
    s.write(b"x" * 500_000)
    started = time.monotonic()
    s.drain(0.3)
    took = time.monotonic() - started
    assert 0.25 <= took < 2
    assert s.pending > 0


def test_drain_delivers_to_a_slow_reader(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should, at exit, write everything queued to a reader that keeps reading."""
    import threading

    r, w = pipe
    s = new_sink(w)
    data = b"".join(lines(5000, b"d"))
    s.write(data)
    got = []

    def reader() -> None:
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                return
            got.append(chunk)

    t = threading.Thread(target=reader)
    t.start()
    s.drain(5)
    assert s.pending == 0
    os.close(w)
    s.close()
    t.join(5)
    assert b"".join(got) == data


def test_polled_fallback_writes_pipe_buf_at_a_time(
    pipe: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
    new_sink: Callable[[int], Sink],
) -> None:
    """should, when the fd cannot be reopened, write the shared fd only on flush (after the
    loop's poll said writable), at most PIPE_BUF bytes at once, and leave it blocking."""
    r, w = pipe

    def no_reopen(*args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, "no /proc")

    monkeypatch.setattr(os, "open", no_reopen)
    s = new_sink(w)
    monkeypatch.undo()
    assert s.polled_only
    assert s.fd == w
    s.write(b"p" * 10000)
    assert read_available(r) == b""  # nothing until the loop says writable
    s.flush()
    assert read_available(r) == b"p" * PIPE_BUF
    assert os.get_blocking(w)
    assert pump([s], r) == b"p" * (10000 - PIPE_BUF)


@pytest.mark.timeout(20)
def test_stdout_and_stderr_on_one_pipe_never_mix_lines(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should, when pyinit's stdout and stderr are the same pipe (`2>&1`, a terminal), keep
    every line whole even when one sink's write was partial: the other sink must not write
    into the middle of that line."""
    r, w = pipe
    w2 = os.dup(w)
    try:
        out_sink, err_sink = new_sink(w), new_sink(w2)
        out_lines = lines(15000, b"out", width=300)
        err_lines = lines(750, b"err", width=57)
        for i in range(750):
            # Task output comes in chunks of many lines (what one read gives): these are
            # bigger than PIPE_BUF, so the pipe may take only part of one.
            out_sink.write(b"".join(out_lines[20 * i : 20 * i + 20]))
            err_sink.write(err_lines[i], own=True)
        data = pump([out_sink, err_sink], r, limit=15)
    finally:
        os.close(w2)
    got = data.split(b"\n")
    assert got[-1] == b""
    got = got[:-1]
    assert [line + b"\n" for line in got if line.startswith(b"out")] == out_lines
    assert [line + b"\n" for line in got if line.startswith(b"err")] == err_lines
    assert len(got) == 15750


def test_private_fd_is_not_inherited_and_nonblocking(
    pipe: tuple[int, int],
    new_sink: Callable[[int], Sink],
) -> None:
    """should open its private description close-on-exec and O_NONBLOCK."""
    _r, w = pipe
    s = new_sink(w)
    flags = fcntl.fcntl(s.fd, fcntl.F_GETFD)
    assert flags & fcntl.FD_CLOEXEC
    assert fcntl.fcntl(s.fd, fcntl.F_GETFL) & os.O_NONBLOCK
    assert not fcntl.fcntl(w, fcntl.F_GETFL) & os.O_NONBLOCK


# -- write_parts: the pieces of one batch of lines, in one writev ---------------------------


def test_write_parts_goes_out_in_one_writev(
    pipe: tuple[int, int], new_sink: Callable[[int], Sink], monkeypatch: pytest.MonkeyPatch
) -> None:
    """should write the pieces (short ones joined, a big view as it is) in order, with one
    system call."""
    r, w = pipe
    s = new_sink(w)
    calls: list[str] = []
    real_write, real_writev = os.write, os.writev

    def write(fd: int, data: bytes) -> int:
        calls.append("write")
        return real_write(fd, data)

    def writev(fd: int, buffers: list[bytes]) -> int:
        calls.append(f"writev of {len(buffers)}")
        return real_writev(fd, buffers)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "writev", writev)
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20)  # room for all of it at once
    body = b"".join(lines(800, b"t: "))  # 80 KB: over what is joined with the short pieces
    s.write_parts([b"t: ", b"zero\n", memoryview(body)[:-100], b""])
    assert read_available(r) == b"t: zero\n" + body[:-100]
    assert calls == ["writev of 2"]
    assert s.pending == 0


@pytest.mark.timeout(20)
def test_write_parts_to_a_full_pipe_stay_whole_and_in_order(
    pipe: tuple[int, int], new_sink: Callable[[int], Sink]
) -> None:
    """should queue what the pipe does not take, views included, and write it out whole and
    in order as the reader makes room, mixed with plain writes."""
    r, w = pipe
    s = new_sink(w)
    expected = []
    for i in range(400):
        block = b"".join(lines(30, b"%03d" % i))
        parts: list[bytes | memoryview] = [b"p: ", memoryview(block)[: 50 + i], block[50 + i :]]
        s.write_parts(parts)
        expected.append(b"p: " + block)
        if i % 7 == 0:
            s.write(b"own line %d\n" % i, own=True)
            expected.append(b"own line %d\n" % i)
    assert s.pending > 0
    assert pump([s], r) == b"".join(expected)
    assert s.dropped == 0


def test_write_parts_to_a_gone_reader_are_dropped_and_counted(
    pipe: tuple[int, int], new_sink: Callable[[int], Sink]
) -> None:
    """should count every byte of the pieces as dropped once the reader is gone."""
    r, w = pipe
    s = new_sink(w)
    os.close(r)
    s.write_parts([b"a: ", memoryview(b"bc\n")])
    s.write_parts([b"d: ", b"ef\n"])
    assert s.broken
    assert s.dropped == 12
