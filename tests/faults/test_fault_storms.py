"""Fault injection, the storms: thousands of orphans, signals and crash-looping tasks
thrown at a real pyinit, as PID 1 and as a subreaper, and an output flood cut by SIGTERM.

What must hold: every orphan reaped and no task's status mixed up with an orphan's; pyinit's
memory flat; every forwarded signal kind delivered and pyinit alive; backoff holding a restart
storm down with little CPU; no output line lost or cut. Each test prints its figures on a
`FIGURE` line (`pytest -s -m slow tests/faults/test_fault_storms.py | grep FIGURE`): the README's
"Reliability" table is made from them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import Run, child, figure, must

pytestmark = pytest.mark.timeout(90)

PY = sys.executable


# -- helpers -----------------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of `pid`, in KiB."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0])
    return found


def count_lines(run: Run, pattern: bytes, stream: str = "stderr") -> int:
    regex = re.compile(pattern)
    return sum(1 for line in list(run.lines[stream]) if regex.search(line))


def wait_count(run: Run, pattern: bytes, n: int, timeout: float, stream: str = "stderr") -> int:
    """Wait until `n` lines match `pattern` (or pyinit ended, or the deadline passed)."""
    deadline = time.monotonic() + timeout
    while True:
        got = count_lines(run, pattern, stream)
        if got >= n or time.monotonic() > deadline or run.proc.poll() is not None:
            return got
        time.sleep(0.02)


def stamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["time"]).timestamp()


def assert_nothing_left(run: Run) -> None:
    if run.mode == "subreaper":
        assert run.left_running() == 0, run.text()[-3000:]


def start(mode: str, args: list[str], **kwargs: Any) -> Run:
    return Run(mode, args, **kwargs)


# -- zombie storm ------------------------------------------------------------------------------

ORPHANS = 10_000
REAPED = re.compile(r"reaped an orphan <pid=\d+> \(exitcode=(\d+)\)")
RESTART = re.compile(r"(\S+) exited \(exitcode=(\d+)\): restart (\d+) in")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_zombie_storm(mode: str, tmp_path: Path) -> None:
    """should reap 10,000 orphans made as fast as possible while two tasks crash-loop, with
    pyinit's RSS flat, every orphan's status its own and every task exit its own."""
    loop = (
        'restart = "on-failure"\nrestart_delay = 0.02\nrestart_max_delay = 0.05\n'
        "max_restarts = 1000000\n"
    )
    (tmp_path / "pyinit.toml").write_text(f"[task.D1]\n{loop}[task.D2]\n{loop}")
    run = start(
        mode,
        [
            "-w",
            str(tmp_path),
            "-vv",
            "--log-format=json",
            "-D",
            "exit 3",
            "-D",
            "exit 4",
            "--",
            PY,
            "-I",
            "-S",
            child("orphan_storm.py"),
            str(ORPHANS),
        ],
        stdin=subprocess.PIPE,
    )
    try:
        assert run.proc.stdin is not None
        run.expect('"line":"ready"', "stdout")  # JSON mode: main's too
        # Warm up: both tasks have been restarted a few times before the baseline is taken.
        for task in ("D1", "D2"):
            wait_count(run, rb'"task":"%s".*restart 3 in' % task.encode(), 1, 10)
        before = proc_status(run.pid)["VmRSS"]
        restarts_before = count_lines(run, rb"restart \d+ in")
        began = time.monotonic()
        run.proc.stdin.write(b"go\n")
        run.proc.stdin.flush()
        run.expect(f'"line":"orphaned {ORPHANS}"', "stdout", timeout=90)
        reaped = wait_count(run, rb"reaped an orphan", ORPHANS, 30)
        took = time.monotonic() - began
        after = proc_status(run.pid)
        restarts_during = count_lines(run, rb"restart \d+ in") - restarts_before
        run.proc.stdin.write(b"exit\n")
        run.proc.stdin.flush()
        code = run.wait(30)
    finally:
        run.kill()
    assert code == 5, run.text()[-3000:]
    everything = run.events()
    orphan_codes = [int(m.group(1)) for e in everything if (m := REAPED.search(e["message"]))]
    assert reaped == ORPHANS
    assert len(orphan_codes) == ORPHANS
    assert set(orphan_codes) == {7}  # never a task's 3 or 4 taken for an orphan's
    task_exits = [
        must(RESTART.search(e["message"])).groups()[:2]
        for e in everything
        if RESTART.search(e["message"])
    ]
    assert {(name, int(c)) for name, c in task_exits} == {("D1", 3), ("D2", 4)}
    assert restarts_during >= 10, "the tasks should have kept restarting during the storm"
    grew = after["VmRSS"] - before
    figure(
        "zombie-storm",
        mode,
        orphans=ORPHANS,
        reaped=len(orphan_codes),
        seconds=f"{took:.1f}",
        task_restarts=restarts_during,
        rss_before_kib=before,
        rss_after_kib=after["VmRSS"],
        peak_rss_kib=after["VmHWM"],
    )
    assert grew < 2048, f"RSS grew by {grew} KiB"
    assert_nothing_left(run)


# -- signal storm ------------------------------------------------------------------------------

SIGNALS = 10_000
PACE = 1e-4  # seconds between two signals
STORM_KINDS = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCHLD)
FORWARDED = ("HUP", "USR1", "USR2", "WINCH")
#: A task counting the signals it gets; on SIGTERM it prints the counts as JSON and exits 0.
COUNTER = """\
#!{py}
import json, os, signal, sys
counts = dict.fromkeys({kinds!r}, 0)
def count(signum, frame):
    counts[signal.Signals(signum).name[3:]] += 1
def report(signum, frame):
    os.write(1, ("counts " + json.dumps(counts) + "\\n").encode())
    os._exit(0)
for name in counts:
    signal.signal(getattr(signal, "SIG" + name), count)
signal.signal(signal.SIGTERM, report)
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
os.write(1, b"counting\\n")
while True:  # not signal.pause(): a signal landing inside a handler would wait for the next
    os.read(wake_r, 4096)
"""


@pytest.mark.slow
def test_signal_storm(mode: str, tmp_path: Path) -> None:
    """should survive 10,000 HUP/USR1/USR2/WINCH/CHLD signals sent in a tight loop (~10,000 a
    second), forward every kind to the tasks, keep restarting a crash-looping task with each
    exit accounted for, and exit with the main command's status."""
    (tmp_path / "trc.d").mkdir()
    counter = tmp_path / "trc.d" / "async.counter"
    counter.write_text(COUNTER.format(py=PY, kinds=FORWARDED))
    counter.chmod(0o755)
    (tmp_path / "pyinit.toml").write_text(
        '[task.D1]\nrestart = "on-failure"\nrestart_delay = 0.01\nrestart_max_delay = 0.02\n'
        "max_restarts = 1000000\n"
    )
    run = start(
        mode,
        ["-w", str(tmp_path), "-vv", "-D", "exit 3", "--", PY, child("storm_immune_main.py")],
        stdin=subprocess.PIPE,
    )
    try:
        assert run.proc.stdin is not None
        run.expect("^counter: counting", "stdout")
        run.expect("^ready", "stdout")
        wait_count(run, rb"D1 exited .*: restart 3 in", 1, 10)
        proc = psutil.Process(run.pid)
        # A tight loop, paced to ~10,000 a second so that the storm lasts long enough for
        # pyinit to handle (and forward) many of them rather than see most coalesce at once.
        began = time.perf_counter()
        for i in range(SIGNALS):
            os.kill(run.pid, STORM_KINDS[i % len(STORM_KINDS)])
            while time.perf_counter() < began + (i + 1) * PACE:
                pass
        took = time.perf_counter() - began
        assert proc.status() != psutil.STATUS_ZOMBIE
        # The crash-looping task still comes back after the storm: no exit was lost.
        restarts = count_lines(run, rb"D1 exited .*: restart \d+ in")
        assert wait_count(run, rb"D1 exited .*: restart \d+ in", restarts + 3, 10) >= restarts + 3
        forwarded = count_lines(run, rb"forward(ed|ing) SIG")
        peak = proc_status(run.pid)["VmHWM"]
        run.proc.stdin.write(b"exit\n")
        run.proc.stdin.flush()
        code = run.wait(30)
    finally:
        run.kill()
    assert code == 4, run.text()[-3000:]
    assert "Traceback" not in run.text()
    report = [line for line in run.lines["stdout"] if line.startswith(b"counter: counts ")]
    assert len(report) == 1, run.text("stdout")
    counts = json.loads(report[0].split(b"counts ", 1)[1])
    assert all(counts[kind] >= 1 for kind in FORWARDED), counts
    # Every launch of D1 has its exit line, with its own status: 3, or the signal that
    # reached it before its trap-less shell could exit.
    text = run.text()
    launched = len(re.findall(r"Launching in the background: exit 3", text))
    exits = [
        int(c) for c in re.findall(r"Exiting in the background \(exitcode=(\d+)\): exit 3", text)
    ]
    assert launched - len(exits) in (0, 1), (launched, len(exits))
    allowed = {3} | {128 + s for s in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)}
    assert set(exits[:-1]) <= allowed, exits
    assert exits[-1] in allowed | {128 + signal.SIGTERM}, exits  # the last: stopped at the end
    figure(
        "signal-storm",
        mode,
        sent=SIGNALS,
        send_seconds=f"{took:.2f}",
        forwarded=forwarded,
        received=",".join(f"{k}:{counts[k]}" for k in FORWARDED),
        d1_runs=launched,
        d1_exits=len(exits),
        d1_killed_by_signal=sum(1 for c in exits if c != 3),
        peak_rss_kib=peak,
    )
    assert_nothing_left(run)


# -- restart storm -----------------------------------------------------------------------------

CRASHERS = 20
#: The policy under test: delays 0.05 0.1 0.2 0.4 0.4 0.4 0.4 0.4, then give up (9 runs).
DELAYS = [0.05, 0.1, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4]
POLICY = (
    '[defaults]\nrestart = "on-failure"\nrestart_delay = 0.05\nrestart_max_delay = 0.4\n'
    "max_restarts = 8\nrestart_window = 60\n"
    '[task.python]\nrestart = "never"\n'
)  # the main command is not part of the storm
WAIT_FOR_STDIN = "import sys; print('ready', flush=True); sys.stdin.readline()"


def most_in_window(times: list[float], window: float) -> int:
    """The largest number of `times` inside any `window` seconds."""
    times = sorted(times)
    best = left = 0
    for right, t in enumerate(times):
        while t - times[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best


@pytest.mark.slow
def test_restart_storm(mode: str, tmp_path: Path) -> None:
    """should, with 20 tasks crash-looping at once, hold every restart to the backoff (never
    early, at most the policy's launches in any second), give each task up after exactly
    max_restarts with its own status, use little CPU, and exit with the first failure's 3."""
    (tmp_path / "pyinit.toml").write_text(POLICY)
    crashers = [arg for _ in range(CRASHERS) for arg in ("-D", "exit 3")]
    run = start(
        mode,
        [
            "-w",
            str(tmp_path),
            "-v",
            "--log-format=json",
            "--wait",
            "wait_all",
            *crashers,
            "--",
            PY,
            "-c",
            WAIT_FOR_STDIN,
        ],
        stdin=subprocess.PIPE,
    )
    try:
        assert run.proc.stdin is not None
        proc = psutil.Process(run.pid)
        began = time.monotonic()
        gave_up = wait_count(run, rb"failed for good", CRASHERS, 30)
        wall = time.monotonic() - began
        cpu = proc.cpu_times()
        peak_rss = proc_status(run.pid)["VmHWM"]
        run.proc.stdin.write(b"done\n")
        run.proc.stdin.flush()
        code = run.wait(30)
    finally:
        run.kill()
    assert gave_up == CRASHERS, run.text()[-3000:]
    assert code == 3
    everything = run.events()
    names = [f"D{i}" for i in range(1, CRASHERS + 1)]
    launches = {
        n: [stamp(e) for e in everything if e["task"] == n and e["message"].startswith("Launching")]
        for n in names
    }
    restarts = {
        n: [e for e in everything if e["task"] == n and RESTART.search(e["message"])] for n in names
    }
    early, late = [], []
    for n in names:
        assert len(launches[n]) == len(DELAYS) + 1, (n, len(launches[n]))
        assert [must(RESTART.search(e["message"])).group(2) for e in restarts[n]] == ["3"] * len(
            DELAYS
        )
        measured = [start - stamp(e) for e, start in zip(restarts[n], launches[n][1:], strict=True)]
        early += [m - want for m, want in zip(measured, DELAYS, strict=True) if m < want - 0.002]
        late.append(max(m - want for m, want in zip(measured, DELAYS, strict=True)))
    assert not early, f"restarts earlier than the backoff: {early}"
    failures = [e for e in everything if "failed for good" in e["message"]]
    assert sorted(e["task"] for e in failures) == sorted(names)
    assert all("exitcode=3" in e["message"] and "8 restarts" in e["message"] for e in failures)
    all_launches = [t for n in names for t in launches[n]]
    # The policy allows at most 5 launches of one task in any second (0, .05, .15, .35, .75).
    peak = most_in_window(all_launches, 1.0)
    assert peak <= CRASHERS * 5
    cpu_seconds = cpu.user + cpu.system
    spawns = len(all_launches)
    figure(
        "restart-storm",
        mode,
        tasks=CRASHERS,
        launches=spawns,
        gave_up=len(failures),
        peak_launches_per_second=peak,
        wall_seconds=f"{wall:.2f}",
        pyinit_cpu_seconds=f"{cpu_seconds:.2f}",
        cpu_ms_per_launch=f"{1000 * cpu_seconds / spawns:.1f}",
        worst_late_ms=f"{1000 * max(late):.0f}",
        peak_rss_kib=peak_rss,
    )
    assert cpu_seconds < 0.5 * wall, "pyinit should sleep between restarts, not spin"
    assert max(late) < 0.3, f"a restart came {max(late):.3f}s late"
    assert_nothing_left(run)


# -- output flood while stopping ---------------------------------------------------------------

FLOODERS = {"f1": (0, "die"), "f2": (200, "die"), "f3": (1000, "count"), "f4": (4000, "count")}
FLOOD_LINE = re.compile(rb"^(D\d): (f\d) (?:(\d{10}) (x*)|end (\d+))\n$")
BEFORE_TERM = 5_000  # lines of each task seen before SIGTERM is sent


@pytest.mark.slow
def test_output_flood_while_stopping(mode: str, tmp_path: Path) -> None:
    """should, when SIGTERM arrives while four tasks write numbered lines as fast as they can,
    deliver every line whole (none cut or mixed), lose none (each task's numbers a gap-free
    prefix; a task that says how many it wrote got all of them) and exit within the grace."""
    flood = child("flood_writer.py")
    items = [
        a
        for name, (pad, how) in FLOODERS.items()
        for a in ("-D", f"exec {PY} {flood} {name} {pad} {how}")
    ]
    names = {f"D{i}": name for i, name in enumerate(FLOODERS, 1)}
    run = start(mode, ["--wait", "wait_forever", "--grace", "5", *items])
    try:
        for prefix, name in names.items():
            run.expect(
                rb"^%s: %s %010d " % (prefix.encode(), name.encode(), BEFORE_TERM),
                "stdout",
                timeout=30,
            )
        peak = proc_status(run.pid)["VmHWM"]
        stopped = time.monotonic()
        run.signal(signal.SIGTERM)
        code = run.wait(30)
        took = time.monotonic() - stopped
    finally:
        run.kill()
    assert code == 143, run.text()[-3000:]
    numbers: dict[str, list[int]] = {name: [] for name in FLOODERS}
    ends: dict[str, int] = {}
    for line in run.lines["stdout"]:
        match = FLOOD_LINE.match(line)
        assert match, f"a cut or mixed line: {line[:120]!r}"
        tag, who, number, pad, end = match.groups()
        assert names[tag.decode()] == who.decode()
        if end is not None:
            ends[who.decode()] = int(end)
            continue
        assert len(pad) == FLOODERS[who.decode()][0], f"a cut line: {line[:120]!r}"
        numbers[who.decode()].append(int(number))
    for name, got in numbers.items():
        assert got == list(range(len(got))), f"{name}: lines lost or out of order"
        assert len(got) > BEFORE_TERM
    for name, (_pad, how) in FLOODERS.items():
        if how == "count":
            assert ends.get(name) == len(numbers[name]), (name, ends, len(numbers[name]))
    total = sum(len(v) for v in numbers.values())
    figure(
        "output-flood",
        mode,
        tasks=len(FLOODERS),
        lines=total,
        per_task=",".join(f"{n}:{len(v)}" for n, v in numbers.items()),
        lost=0,
        cut=0,
        stop_seconds=f"{took:.2f}",
        grace=5,
        peak_rss_kib=peak,
    )
    assert took < 5, f"pyinit took {took:.2f}s to stop"
    assert_nothing_left(run)
