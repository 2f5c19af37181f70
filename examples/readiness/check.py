"""The main command: asks the web app once, which pyinit started only when it was ready."""

import os
import urllib.request

port = os.environ.get("WEB_PORT", "8080")
with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as answer:
    print("web answered", answer.status)
