"""Numbered lines as fast as it can (os.write, one whole line each), until killed (SIGUSR1 is
for the counter only).

Used by tests/faults/test_fault_pressure.py.
"""

import os
import signal

signal.signal(signal.SIGUSR1, signal.SIG_IGN)
i = 0
while True:
    os.write(1, b"line %010d\n" % i)
    i += 1
