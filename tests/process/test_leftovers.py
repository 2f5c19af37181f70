"""Which processes a task left when its main process exited (pyinit/leftovers.py), on fake
process tables: pure and exact."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from pyinit import leftovers
from pyinit.leftovers import Proc

pytestmark = pytest.mark.timeout(10)
ME = 1  # pyinit
TASK = 10  # the task's main process (gone), so its session id
STARTED = 100.0  # when the task's run began, in seconds since boot


def table(*procs: Proc) -> dict[int, Proc]:
    return {p.pid: p for p in procs}


def no_marks(pid: int) -> str | None:
    return None


def find(
    procs: dict[int, Proc], claimed: dict[int, str] | None = None, mark: object = no_marks
) -> list[int]:
    return [p.pid for p in leftovers.find(procs, ME, "web", TASK, STARTED, claimed or {}, mark)]


def test_parse_stat_reads_a_name_with_parentheses_and_spaces() -> None:
    """should take the fields after the last ')' so that a name like 'a) (b' cannot shift
    them."""
    data = b"42 (a) (b) S 1 40 41 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 1234 0 0\n"
    proc = leftovers.parse_stat(data)
    assert proc == Proc(42, 1, 40, 41, 1234 / leftovers.TICKS, "a) (b")


@pytest.mark.parametrize("data", [b"", b"42 nothing", b"x (a) S 1 2 3", b"42 (a) S 1"])
def test_parse_stat_refuses_what_is_not_a_stat_line(data: bytes) -> None:
    """should give None, never raise, for text that is not /proc/PID/stat."""
    assert leftovers.parse_stat(data) is None


def test_the_task_session_and_its_descendants_are_its_leftovers() -> None:
    """should find the re-parented children still in the task's session, and their children
    wherever they are (a worker's own child)."""
    procs = table(
        Proc(11, ME, TASK, TASK, 101, "gunicorn"),
        Proc(12, ME, TASK, TASK, 101, "gunicorn"),
        Proc(13, 12, 13, 13, 102, "helper"),
        Proc(20, ME, 20, 20, 50, "other"),
    )
    assert find(procs, {20: "db"}) == [11, 12, 13]


def test_a_daemon_that_left_the_session_is_found_by_its_start_time() -> None:
    """should count a setsid'd child of pyinit with no readable mark (nginx writes its title
    over its environment) as the task's when it started after the task's run began."""
    procs = table(
        Proc(30, ME, 30, 30, STARTED + 0.02, "nginx"),
        Proc(31, 30, 30, 30, STARTED + 0.03, "nginx"),
        Proc(40, ME, 40, 40, STARTED - 5, "older"),
    )
    assert find(procs) == [30, 31]


def test_a_mark_decides_before_the_start_time() -> None:
    """should follow PYINIT_TASK where it can be read: another task's daemon is not ours even
    if it started later, and ours is ours even if the clocks disagree."""
    procs = table(Proc(30, ME, 30, 30, STARTED + 1, "cron"), Proc(40, ME, 40, 40, 1, "sshd"))
    marks = {30: "other", 40: "web"}
    assert find(procs, mark=marks.get) == [40]


def test_a_running_task_keeps_what_is_in_its_session() -> None:
    """should leave alone a process in a running task's session or group, and the running
    tasks themselves."""
    procs = table(
        Proc(20, ME, 20, 20, STARTED + 1, "db"), Proc(21, ME, 20, 20, STARTED + 1, "db-worker")
    )
    assert find(procs, {20: "db"}) == []


def test_a_process_that_is_not_pyinits_child_is_only_found_through_its_parent() -> None:
    """should not take a process whose parent lives (not re-parented to pyinit)."""
    procs = table(Proc(50, 7, 50, 50, STARTED + 1, "stranger"))
    assert find(procs) == []


def test_daemonized_and_the_main_process() -> None:
    """should tell a daemon (an exit 0 leaving a process re-parented to pyinit, in its session
    or not yet out of it) from workers left by a crash, and take the oldest root as a forking
    task's main process."""
    workers = [Proc(11, ME, TASK, TASK, 101, "w"), Proc(12, ME, TASK, TASK, 102, "w")]
    assert not leftovers.daemonized(137, workers, ME)
    daemon = [Proc(31, 30, 30, 30, 101, "nginx"), Proc(30, ME, 30, 30, 100.5, "nginx")]
    assert leftovers.daemonized(0, daemon, ME)
    before_setsid = [Proc(30, ME, TASK, TASK, 100.5, "nginx")]
    assert leftovers.daemonized(0, before_setsid, ME)
    assert not leftovers.daemonized(0, [], ME)
    main = leftovers.main_process(daemon, ME)
    assert main is not None
    assert main.pid == 30
    assert leftovers.main_process([], ME) is None


def test_describe_and_advice() -> None:
    """should count the leftovers, name each program once, and advise the foreground flag of
    a daemon it knows."""
    found = [Proc(30, ME, 30, 30, 1, "nginx"), Proc(31, 30, 30, 30, 1, "nginx")]
    assert leftovers.describe(found) == "2 processes (nginx)"
    assert leftovers.describe(found[:1]) == "1 process (nginx)"
    assert leftovers.advice(found, "web") == (
        "it daemonized itself; run it in the foreground (nginx -g 'daemon off;') or set "
        'type = "forking" in [task.web]'
    )
    assert "foreground or set" in leftovers.advice([Proc(5, ME, 5, 5, 1, "mystery")], "x")


@pytest.mark.parametrize(
    ("text", "pid"),
    [(b"123\n", 123), (b"  77 ", 77), (b"", None), (b"0", None), (b"-5", None), (b"12a", None)],
)
def test_read_pid_file(tmp_path: Path, text: bytes, pid: int | None) -> None:
    """should read a positive pid and nothing else."""
    path = tmp_path / "x.pid"
    path.write_bytes(text)
    assert leftovers.read_pid_file(str(path)) == pid
    assert leftovers.read_pid_file(str(tmp_path / "missing")) is None


def test_scan_sees_this_process() -> None:
    """should find the test process itself in the real process table, with its parent."""
    import os

    me = leftovers.scan()[os.getpid()]
    assert (me.ppid, me.sid) == (os.getppid(), os.getsid(0))
    assert 0 < me.start <= leftovers.now()


@pytest.mark.timeout(30)
def test_scan_below_finds_the_descendants_the_full_scan_finds() -> None:
    """should give, from the kernel's children lists, exactly the descendants of a process
    that the full /proc scan gives (a child and its grandchild here), reading far fewer."""
    child = subprocess.Popen(["sh", "-c", "sleep 30 & echo started; wait"], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"started\n"
        below = leftovers.scan_below(os.getpid())
        full = leftovers.scan()
        roots = [p for p in full.values() if p.ppid == os.getpid()]
        expected = {p.pid for p in leftovers._with_descendants(full, roots)}
        assert set(below) == expected
        assert child.pid in below
        # the grandchild, whether or not it has exec'd sleep yet (its comm is sh until then)
        assert any(p.ppid == child.pid for p in below.values())
        assert leftovers.read_proc(child.pid) == full[child.pid]
        assert leftovers.read_proc(2**22 + 1) is None  # above pid_max: never a process
    finally:
        # The sleep first, so that sh's `wait` reaps it: nothing is left to the host's PID 1,
        # which reaps no orphans.
        for proc in leftovers.scan_below(child.pid).values():
            os.kill(proc.pid, signal.SIGKILL)
        child.wait(10)
        child.stdout.close()  # type: ignore[union-attr]
