"""The command: a parent and a forked child in the same process group; both report every signal
they get on stdout as "<role> <number>", and both end on SIGTERM/SIGINT/SIGQUIT. The signals
are blocked and taken with sigwait, not caught by handlers around a sleep: a signal that
lands while CPython is still inside the previous handler's call is only marked pending, and
`time.sleep` then resumes without running its handler (seen once in CI).

Used by tests/process/test_signals.py.
"""

import os
import signal
import sys

STOP = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
role = "parent"
wanted = {int(a) for a in sys.argv[1:]}
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
if os.fork() == 0:
    role = "child"
os.write(1, f"{role} ready\n".encode())
while True:
    signum = signal.sigwait(wanted)
    os.write(1, f"{role} {signum}\n".encode())
    if signum in STOP:
        os._exit(0 if role == "parent" else 3)
