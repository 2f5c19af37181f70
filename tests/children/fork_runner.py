"""Keeps forking as fast as it can: each generation starts the next and exits, so its pid
changes faster than a list of processes can be made (it stays in its process group); SIGTERM
ignored.

Used by tests/faults/test_fault_escape.py.
"""

import os
import signal

signal.signal(signal.SIGTERM, signal.SIG_IGN)
generation = 0
while True:
    try:
        if os.fork():
            os._exit(0)
    except OSError:
        pass
    generation += 1
    if generation == 200:
        os.write(1, b"generation 200\n")
