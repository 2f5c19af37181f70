"""Fault injection, resource pressure: a fork bomb held by its own process limit,
pyinit's stdout a full pipe nobody reads, pyinit's stdout gone (EPIPE) or closed (fd 1 not
open). pyinit must keep supervising all the while — restart, forward signals, reap — and exit
with the right status, leaving nothing behind, as PID 1 and as subreaper.

Figures go to `FIGURE` lines for the README table.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import stat
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from conftest import ROOT, Run, child, command, figure, survivors_item

pytestmark = pytest.mark.timeout(60)

PY = sys.executable
GRACE = 1
CRASH_LOOP = (
    'restart = "on-failure"\nrestart_delay = 0.05\nrestart_max_delay = 0.1\n'
    "max_restarts = 1000000\n"
)
RESTARTED = rb"D\d exited \(exitcode=3\): restart \d+ in"


def count_lines(run: Run, pattern: bytes, stream: str = "stderr") -> int:
    regex = re.compile(pattern)
    return sum(1 for line in list(run.lines[stream]) if regex.search(line))


def wait_count(run: Run, pattern: bytes, n: int, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while True:
        got = count_lines(run, pattern)
        if got >= n or time.monotonic() > deadline or run.proc.poll() is not None:
            return got
        time.sleep(0.02)


def survivors_in(text: str) -> int:
    """The count the survivors halt item printed, in output collected without a `Run`."""
    counts = re.findall(r"survivors (\d+) ", text)
    assert len(counts) == 1, text[-3000:]
    return int(counts[0])


def rss_kib(pid: int) -> int:
    rss: int = psutil.Process(pid).memory_info().rss
    return rss // 1024


def readable_by_others(path: Path) -> bool:
    """Whether a user other than root can read `path` (every directory above searchable)."""
    for parent in [*reversed(path.parents), path]:
        mode = parent.stat().st_mode
        need = stat.S_IXOTH if parent != path else stat.S_IROTH
        if not mode & need:
            return False
    return True


# -- fork bomb ---------------------------------------------------------------------------------

NPROC = 30
#: Forks without end, inside a limit of NPROC processes for its user (set in the item itself;
#: the task runs as nobody, as root would not be held by it). At the limit bash says
#: "fork: retry" and sleeps before trying again.
BOMB = f"trap - ERR; trap '' USR1; ulimit -u {NPROC}; echo bombing; b() {{ b & b & wait; }}; b"
USR1_MAIN = "trap 'echo got USR1' USR1; echo ready; while :; do sleep 0.05 || :; done"


@pytest.mark.slow
def test_fork_bomb_inside_a_process_limit(mode: str, tmp_path: Path) -> None:
    """should, while a task (as nobody, `ulimit -u 30`) fork-bombs up to its limit, keep
    restarting another task and forwarding signals, then stop the whole bomb on SIGTERM within
    the grace, with the main command's 143 and no process left."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a task as nobody")
    if not readable_by_others(ROOT / "pyinit" / "trc_functions.sh"):
        pytest.skip("the checkout is not readable by nobody")
    (tmp_path / "pyinit.toml").write_text(f'[task.D1]\nuser = "nobody"\n[task.D2]\n{CRASH_LOOP}')
    run = Run(
        mode,
        [
            "-w",
            str(tmp_path),
            "-v",
            "--grace",
            str(GRACE),
            "-D",
            BOMB,
            "-D",
            "exit 3",
            *survivors_item(tmp_path),
            "--",
            "bash",
            "-c",
            USR1_MAIN,
        ],
    )
    try:
        run.expect("^ready", "stdout")
        run.expect("^D1: .*fork: (retry: )?Resource temporarily unavailable")
        bombs = [
            p for p in psutil.Process(run.pid).children(recursive=True) if p.uids().real == 65534
        ]
        # pyinit goes on: restarts, forwarding.
        restarts = count_lines(run, RESTARTED)
        assert wait_count(run, RESTARTED, restarts + 3) >= restarts + 3, run.text()[-3000:]
        run.signal(signal.SIGUSR1)
        run.expect("^got USR1", "stdout")
        stopped = time.monotonic()
        run.signal(signal.SIGTERM)
        code = run.wait(30)
        took = time.monotonic() - stopped
    finally:
        run.kill()
    assert code == 143, run.text()[-3000:]
    assert "Traceback" not in run.text()
    assert run.survivors() == 0, run.text()[-2000:]
    if mode == "subreaper":
        assert run.left_running() == 0, run.text()[-2000:]
    figure(
        "fork-bomb",
        mode,
        limit=NPROC,
        bomb_processes=len(bombs),
        restarts_during=3,
        usr1_delivered=1,
        stop_seconds=f"{took:.2f}",
        survivors=0,
    )
    assert len(bombs) <= NPROC
    assert took < GRACE + 4


# -- a full pipe and a stalled reader ----------------------------------------------------------

STALL_ORPHANS = 1000
FULL = 48 << 10  # a pipe this full is taking no more lines (the rest of its pages may not fit one)


def pipe_fill(fd: int) -> int:
    buf = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return int.from_bytes(buf, sys.byteorder)


def wait_for(predicate: Callable[[], object], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_stalled_reader_full_pipe(mode: str, tmp_path: Path) -> None:
    """should, with its stdout a full pipe nobody reads, keep restarting a crash-looping task,
    forwarding signals and reaping 1,000 orphans with bounded memory; once read again, deliver
    the flood's lines whole and gap-free; and exit 143 on SIGTERM."""
    flood = child("line_flood.py")
    counter = child("usr1_counter.py")
    count_file = tmp_path / "usr1"
    (tmp_path / "pyinit.toml").write_text(f"[task.D2]\n{CRASH_LOOP}")
    r, w = os.pipe()
    run = Run(
        mode,
        [
            "-w",
            str(tmp_path),
            "-vv",
            "--grace",
            str(GRACE),
            "-D",
            f"exec {PY} {flood}",
            "-D",
            "exit 3",
            "-D",
            f"exec {PY} {counter} {count_file}",
            "--",
            PY,
            child("orphans_on_cue.py"),
            str(STALL_ORPHANS),
        ],
        stdin=subprocess.PIPE,
        stdout=w,
    )
    os.close(w)
    received = bytearray()
    reader: threading.Thread | None = None
    try:
        assert run.proc.stdin is not None
        assert wait_for(lambda: pipe_fill(r) >= FULL), "pyinit's stdout never filled up"
        # Back-pressure reached: pyinit's queue is full, it stopped reading, the flood blocks.
        flood_task = next(
            p for p in psutil.Process(run.pid).children() if str(flood) in " ".join(p.cmdline())
        )
        assert wait_for(lambda: flood_task.status() == psutil.STATUS_SLEEPING), (
            "the flood never blocked"
        )
        assert wait_for(lambda: os.path.exists(f"{count_file}.ready"))
        stalled_rss = rss_kib(run.pid)
        # Stalled: restarts go on,
        restarts = count_lines(run, RESTARTED)
        assert wait_count(run, RESTARTED, restarts + 3) >= restarts + 3, run.text()[-3000:]
        # signals are forwarded,
        run.signal(signal.SIGUSR1)
        assert wait_for(count_file.exists), "USR1 was not forwarded while stalled"
        # orphans are reaped.
        run.proc.stdin.write(b"go\n")
        run.proc.stdin.flush()
        assert wait_count(run, rb"reaped an orphan", STALL_ORPHANS, 30) == STALL_ORPHANS
        peak_rss = rss_kib(run.pid)
        still_full = pipe_fill(r)

        def read_all() -> None:
            while chunk := os.read(r, 1 << 16):
                received.extend(chunk)

        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        assert wait_for(lambda: len(received) > 4 << 20, 30), "the flood did not resume"
        run.signal(signal.SIGTERM)
        code = run.wait(30)
    finally:
        run.kill()
        if reader is not None:
            reader.join(10)
        os.close(r)
    assert code == 143, run.text()[-3000:]
    assert "Traceback" not in run.text()
    assert still_full >= FULL
    assert received.endswith(b"\n")
    lines = bytes(received).split(b"\n")[:-1]
    numbers = []
    for line in lines:
        match = re.fullmatch(rb"D1: line (\d{10})", line)
        assert match, f"a cut or foreign line: {line[:100]!r}"
        numbers.append(int(match.group(1)))
    assert numbers == list(range(len(numbers))), "lines lost or out of order"
    figure(
        "stalled-reader",
        mode,
        stall_restarts=3,
        usr1_delivered=1,
        orphans_reaped=STALL_ORPHANS,
        rss_stalled_kib=stalled_rss,
        rss_after_kib=peak_rss,
        lines_after=len(numbers),
        lost=0,
        cut=0,
    )
    assert peak_rss - stalled_rss < 4096, "pyinit's memory grew while stalled"


# -- pyinit's stdout gone or closed ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("how", ["reader-gone", "fd-closed"])
def test_stdout_gone(mode: str, tmp_path: Path, how: str) -> None:
    """should, with pyinit's stdout a pipe with no reader (EPIPE) or not open at all, keep a
    flooding task and a crash-looping one supervised, give the latter up after its restarts
    and exit with its status 3, with no traceback and nothing left running."""
    flood = child("line_flood.py")
    (tmp_path / "pyinit.toml").write_text(
        '[task.D2]\nrestart = "on-failure"\nrestart_delay = 0.05\nmax_restarts = 3\n'
    )
    args = [
        "-w",
        str(tmp_path),
        "-v",
        "--grace",
        str(GRACE),
        "-D",
        f"exec {PY} {flood}",
        "-D",
        "echo to-the-void; echo on-stderr >&2; exit 3",
        *survivors_item(tmp_path),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if how == "reader-gone":
        r, w = os.pipe()
        os.close(r)
        result = subprocess.run(
            command(mode, args), stdout=w, stderr=subprocess.PIPE, env=env, timeout=40, check=False
        )
        os.close(w)
    else:
        wrapped = ["sh", "-c", 'exec "$@" >&-', "sh", *command(mode, args)]
        result = subprocess.run(
            wrapped,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            timeout=40,
            check=False,
        )
    err = result.stderr.decode(errors="replace")
    assert result.returncode == 3, err[-3000:]
    assert "Traceback" not in err
    assert len(re.findall(r"D2 exited \(exitcode=3\): restart \d+ in", err)) == 3, err[-3000:]
    assert "D2 failed for good" in err
    assert err.count("D2: on-stderr") == 4  # stderr still carries the tasks' own lines
    assert survivors_in(err) == 0, err[-2000:]
    if mode == "subreaper":
        assert "ns_init: left 0" in err, err[-2000:]
    figure(f"stdout-{how}", mode, restarts=3, gave_up=1, status=result.returncode, survivors=0)
