"""Makes N orphans that have all exited by the time it prints "orphaned N", then waits.

Used by tests/process/test_reaping.py.
"""

import os
import sys
import time

n = int(sys.argv[1])
r, w = os.pipe()
for _ in range(n):
    if os.fork() == 0:  # the middle parent exits at once: its child is orphaned
        if os.fork() == 0:
            os.close(w)
            os.read(r, 1)  # wait until released, then exit as an orphan
            os._exit(7)
        os._exit(0)
os.close(r)
for _ in range(n):
    try:
        os.waitpid(-1, 0)  # the middle parents are ours to reap
    except ChildProcessError:
        break
os.close(w)  # release every orphan at once
print("orphaned", n, flush=True)
time.sleep(3600)
