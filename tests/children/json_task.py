"""JSON_TASK of test_output.py

Used by tests/process/test_output.py.
"""

import os

pid = os.getpid()
os.write(1, b"hello from %d\n" % pid)
os.write(2, b"oops from %d\n" % pid)
os.write(1, b'bad \xff\xfe utf-8 "quoted" \\ back\n')
os.write(1, b"no newline at the end")
