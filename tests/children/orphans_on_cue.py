"""The main command: on a line on stdin, makes N orphans that exit 7; writes nothing.

Used by tests/faults/test_fault_pressure.py.
"""

import os
import signal
import sys

signal.signal(signal.SIGUSR1, signal.SIG_IGN)
n = int(sys.argv[1])
sys.stdin.readline()
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            os._exit(7)
        os._exit(0)
    os.waitpid(pid, 0)
sys.stdin.readline()
