"""Writes numbered lines to stdout and (every 7th) stderr with raw os.write calls of random
sizes, so lines reach pyinit cut at arbitrary points; then a line of exactly LIMIT bytes, a
longer one (cut by pyinit), and a last line without a newline. argv: tag count [seed].

Used by tests/process/test_output.py.
"""

import os
import random
import sys

tag, count = sys.argv[1].encode(), int(sys.argv[2])
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
bufs: dict[int, list[bytes]] = {1: [], 2: []}
for i in range(count):
    bufs[2 if i % 7 == 3 else 1].append(b"%s %d\n" % (tag, i))
bufs[1].append(b"L" * 65536 + b"\n")
bufs[1].append(b"M" * 100000 + b"\n")
bufs[2].append(b"E" * 65536 + b"\n")
bufs[1].append(b"end of " + tag)
data = {fd: b"".join(parts) for fd, parts in bufs.items()}
pos = {1: 0, 2: 0}
while pos[1] < len(data[1]) or pos[2] < len(data[2]):
    fd = rng.choice((1, 1, 1, 2))
    if pos[fd] < len(data[fd]):
        size = rng.choice((1, 7, 100, 4095, 4096, 9000, 70000))
        pos[fd] += os.write(fd, data[fd][pos[fd] : pos[fd] + size])
