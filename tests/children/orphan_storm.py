"""The main command: says "ready", waits for a line on stdin, then makes N orphans (a middle
parent that exits at once, so its child is re-parented to pyinit and exits 7), says
"orphaned N", waits for another line and exits 5.

Used by tests/faults/test_fault_storms.py.
"""

import os
import sys

n = int(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            os._exit(7)
        os._exit(0)
    os.waitpid(pid, 0)
print("orphaned", n, flush=True)
sys.stdin.readline()
sys.exit(5)
