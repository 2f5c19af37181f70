"""pyinit: a container init (PID 1) in Python.

Start reading at `stages.py` (what happens, in order), then `runtime.py` (the parts of a run
and how they are wired), and docs/architecture.md.
"""

__version__ = "0.1.0"
