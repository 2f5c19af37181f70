"""KILLER of test_output.py

Used by tests/process/test_output.py.
"""

import os
import signal
import sys

count, how = int(sys.argv[1]), sys.argv[2]
data = b"".join(b"line %d\n" % i for i in range(count)) + b"partial"
pos = 0
while pos < len(data):
    pos += os.write(1, data[pos : pos + 3000])
os.write(2, b"last words\n")
if how == "group":
    os.killpg(os.getpgid(0), signal.SIGKILL)
os.kill(os.getpid(), signal.SIGKILL)
