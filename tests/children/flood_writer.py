"""Writes numbered lines of one size as fast as it can, each with one os.write (at most
PIPE_BUF bytes, so the pipe takes it whole or not at all). argv: name pad on-term, where on-
term is "die" (default SIGTERM: killed mid-flood) or "count" (finish the line being written,
then say how many were written and exit 0).

Used by tests/faults/test_fault_storms.py.
"""

import os
import signal
import sys

name, pad, on_term = sys.argv[1], int(sys.argv[2]), sys.argv[3]
stop: list[int] = []
if on_term == "count":
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
tail = b" " + b"x" * pad + b"\n"
head = name.encode() + b" "
i = 0
while not stop:
    os.write(1, head + b"%010d" % i + tail)
    i += 1
os.write(1, head + b"end %d\n" % i)
