"""An HTTP server for the health tests: GET answers with the status code written in the file
named by $HEALTH_FILE (200 when it is missing), so a test turns the task sick and well again.

    health_server.py PORT
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            with open(os.environ["HEALTH_FILE"]) as f:
                code = int(f.read().strip() or 200)
        except (OSError, KeyError, ValueError):
            code = 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the test reads pyinit's lines, not the server's


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
