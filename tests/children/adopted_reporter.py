"""Double-forks; the orphan reports who adopted it, compared with MAINPID (pyinit's pid).

Used by tests/process/test_init_process.py.
"""

import os
import time

if os.fork() == 0:
    if os.fork() == 0:
        time.sleep(0.2)  # the middle parent is gone by now
        print("adopted", os.getppid() == int(os.environ["MAINPID"]), os.getppid(), flush=True)
        os._exit(0)
    os._exit(0)
os.wait()
time.sleep(0.5)
