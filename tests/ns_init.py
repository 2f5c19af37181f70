"""A stand-in PID 1 for the "subreaper" test mode: it runs pyinit as its child, so pyinit is
*not* PID 1 and must make itself the child subreaper, while this process reaps whatever falls
through to PID 1 so the namespace never shows zombies that are not pyinit's fault.

With NS_INIT_WAIT_ALL set, it first waits (at most 10 s) for every process in the namespace to
end, for tests where pyinit outlives the child of ns_init (tini's -p).

When pyinit exits, it prints `ns_init: left N` on stderr: the processes still alive in the
namespace (pyinit promised none), then kills them and exits with pyinit's status.
Signals to this process are not forwarded: tests signal pyinit directly.
"""

import os
import signal
import sys


def main() -> int:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(signum, signal.SIG_IGN)
    child = os.fork()
    if child == 0:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_DFL)
        os.execvp(sys.argv[1], sys.argv[1:])
    code = 255
    while True:
        pid, status = os.wait()
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code
            break
    if os.environ.get("NS_INIT_WAIT_ALL"):
        signal.alarm(10)
        try:
            while True:
                os.wait()
        except ChildProcessError:
            pass
    left = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
    sys.stderr.write(f"ns_init: left {len(left)}\n")
    sys.stderr.flush()
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return code


if __name__ == "__main__":
    sys.exit(main())
