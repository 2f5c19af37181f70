"""A task that prints every signal it gets and keeps running (tests of signal forwarding).

    signal_printer.py [--name NAME] [--drain SEC] [--exit-after N] [--fork]

Prints `NAME ready` once its handlers are in (NAME: --name, else $PYINIT_TASK), then
`NAME got SIGNAME` for each signal, in the order they arrive. SIGTERM does not end it unless
`--drain SEC` is given: then it prints `NAME draining`, keeps running SEC seconds, and exits 0.
`--exit-after N` exits 0 after N signals. `--fork` also forks a child that prints the same
lines as `NAME-child` (for group-versus-pid tests).
"""

import argparse
import os
import signal
import sys
import time

CAUGHT = [
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGTERM,
    signal.SIGWINCH,
    signal.SIGCONT,
    signal.SIGALRM,
]

parser = argparse.ArgumentParser()
parser.add_argument("--drain", type=float, default=None)
parser.add_argument("--exit-after", type=int, default=0)
parser.add_argument("--fork", action="store_true")
parser.add_argument("--name", default=os.environ.get("PYINIT_TASK", "app"))
args = parser.parse_args()
name = args.name
count = 0
drain_until = None


def on_signal(signum: int, frame: object) -> None:
    global count, drain_until
    os.write(1, f"{name} got {signal.Signals(signum).name}\n".encode())
    count += 1
    if args.exit_after and count >= args.exit_after:
        os._exit(0)
    if signum == signal.SIGTERM and args.drain is not None and drain_until is None:
        os.write(1, f"{name} draining\n".encode())
        drain_until = time.monotonic() + args.drain


for s in CAUGHT:
    signal.signal(s, on_signal)
if args.fork and os.fork() == 0:
    name += "-child"
# Not signal.pause(): a signal that lands just before it is only handled at the next one. The
# C-level handler writes to the wakeup fd, so a blocking read of it cannot miss one.
wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
os.write(1, f"{name} ready\n".encode())
while True:
    if drain_until is not None:
        left = drain_until - time.monotonic()
        if left <= 0:
            os.write(1, f"{name} drained\n".encode())
            sys.exit(0)
        time.sleep(min(left, 0.1))
    else:
        os.read(wake_r, 512)  # returns once a signal came; its handler runs right after
