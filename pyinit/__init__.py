"""pyinit: a container init (PID 1) in Python.

Start reading at `stages.py` (what happens, in order) and `loop.py` (how).
"""

__version__ = "0.1.0"
