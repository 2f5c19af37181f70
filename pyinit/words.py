"""The domain's words as types: each closed set of strings pyinit's records hold.

Imported only under `TYPE_CHECKING` (for mypy), never at run time: `typing` costs about 7 ms
of start-up (docs/startup.md). The tuples the code checks values against sit next to their
use (`config.WAIT_POLICIES`, `supervisor.RESTART_POLICIES`, ...), typed as tuples of these, so
mypy holds the two together.
"""

from typing import Literal

#: The stages an item runs in; "main" is the main command's.
Stage = Literal["boot", "async", "sync", "halt", "main"]
#: How an item runs: a program exec'd as an argv vector, or bash code (a file or a string).
How = Literal["exec", "bash-file", "bash-code"]
#: What pyinit was asked to do: run the plan, or only show it (--check).
Action = Literal["run", "check"]
#: When the run ends (waitpolicy.py).
WaitPolicyName = Literal["wait_any", "wait_err", "wait_all", "wait_forever"]
#: When a task that exited is started again (supervisor.py).
RestartPolicy = Literal["never", "on-failure", "always"]
#: What an exit led to (supervisor.Decision.action).
DecisionAction = Literal["restart", "done", "failed", "limit"]
#: Where a task's forwarded signals go: its process group, or its pid only.
SignalTarget = Literal["group", "pid"]
#: systemd's words: a "forking" task's exit 0 means its daemon runs.
TaskType = Literal["simple", "forking"]
#: What the foreground waits for from the async tasks that declare `ready`.
MainAfter = Literal["ready", "started"]
#: The order the shutdown stops the tasks in.
StopOrder = Literal["dependents-first", "parallel"]
#: A scheduled run's failure: a warning, or the end of the run.
OnFailure = Literal["warn", "exit"]
#: What an unhealthy task gets (docs/health.md).
HealthAction = Literal["restart", "stop", "exit", "none"]
#: The format of pyinit's own log lines.
LogFormat = Literal["text", "json"]
