"""Counts SIGUSR1 into a file (its output would be stuck behind the stalled reader).

Used by tests/faults/test_fault_pressure.py.
"""

import os
import signal
import sys
import time

path = sys.argv[1]
count = 0


def got(signum: int, frame: object) -> None:
    global count
    count += 1
    with open(path + ".tmp", "w") as f:
        f.write(str(count))
    os.rename(path + ".tmp", path)


signal.signal(signal.SIGUSR1, got)
with open(path + ".ready", "w"):
    pass
while True:
    time.sleep(1)
