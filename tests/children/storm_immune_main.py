"""The main command: immune to the storm, it exits 4 when told on stdin.

Used by tests/faults/test_fault_storms.py.
"""

import signal
import sys

for name in ("HUP", "USR1", "USR2", "WINCH"):
    signal.signal(getattr(signal, "SIG" + name), signal.SIG_IGN)
print("ready", flush=True)
sys.stdin.readline()
sys.exit(4)
