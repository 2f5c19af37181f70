"""An HTTP server that binds after 0.3 s, writes the time just before it listens, and answers
each GET with 503 (the first `fails`) and then 200.

Used by tests/process/test_readiness.py.
"""

import socket
import sys
import time

port, stamp_path, fails = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
time.sleep(0.3)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
with open(stamp_path, "w") as stamp:
    stamp.write(str(time.time()))
s.listen()
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        c.recv(4096)
        code = b"503 Busy" if fails > 0 else b"200 OK"
        fails -= 1
        c.sendall(b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\n\r\n")
    except OSError:
        pass
    c.close()
