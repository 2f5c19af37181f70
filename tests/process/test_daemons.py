"""Daemons and leftovers with real programs: redis, nginx, gunicorn (docs/leftovers.md).

What a task leaves when its main process exits is stopped before the task restarts or counts
as ended; `type = "forking"` makes the daemon the task. Each test runs as PID 1 and as a child
subreaper; a program that is missing skips its test with one line.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import StartPyinit, need, port_for

pytestmark = pytest.mark.timeout(60)


def nginx_conf(tmp_path: Path, port: int) -> Path:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""\
pid {tmp_path}/nginx.pid;
error_log stderr;
worker_processes 2;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    server {{ listen 127.0.0.1:{port}; return 200 "hello from nginx\\n"; }}
}}
""")
    return conf


def fetch(port: int) -> str:
    """A main command that prints what http://127.0.0.1:PORT/ answers, retrying briefly."""
    return (
        "import time, urllib.request\n"
        "for _ in range(100):\n"
        "    try:\n"
        f"        print(urllib.request.urlopen('http://127.0.0.1:{port}/').read().decode())\n"
        "        break\n"
        "    except OSError:\n"
        "        time.sleep(0.05)\n"
    )


def test_a_daemonizing_nginx_is_named_and_stopped(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """nginx forks by default: its parent's exit 0 should give one warning that names the
    daemon and the foreground flag, the daemon should get SIGTERM, and a CI job around it
    should not pass (143)."""
    nginx = need("nginx", "nginx")
    conf = nginx_conf(tmp_path, port_for(mode, 1))
    run = run_pyinit(
        mode, ["-D", f"exec {nginx} -c {conf}", "--", "sh", "-c", "sleep 5; echo TESTS PASSED"]
    )
    assert run.wait() == 143
    line = run.expect(
        r"D1 exited 0 after [0-9.]+s leaving [0-9]+ process(es)? \(nginx\): it "
        r"daemonized itself; run it in the foreground \(nginx -g 'daemon off;'\) "
        r"or set type = \"forking\" in \[task.D1\]"
    )
    assert b"TESTS PASSED\n" not in run.lines["stdout"], line


def test_forking_nginx_serves_and_is_stopped(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """`type = "forking"` with a pid_file: the daemon is the task, so nginx should serve the
    main command, and get the stop signal at the end."""
    nginx = need("nginx", "nginx")
    port = port_for(mode, 2)
    conf = nginx_conf(tmp_path, port)
    (tmp_path / "pyinit.toml").write_text(
        f'[task.D1]\ntype = "forking"\npid_file = "{tmp_path}/nginx.pid"\n'
    )
    run = run_pyinit(
        mode,
        [
            "-v",
            "-w",
            str(tmp_path),
            "-D",
            f"exec {nginx} -c {conf}",
            "--",
            sys.executable,
            "-c",
            fetch(port),
        ],
    )
    assert run.wait() == 0
    run.expect(r"^hello from nginx$", "stdout")
    run.expect(r"D1 forked: its main process is <pid=[0-9]+> \(nginx\)")
    assert not any(b"leaving" in line for line in run.lines["stderr"])


def test_forking_redis_main_pid_is_the_daemons(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """The forking task's pid should be redis's own process id (as redis reports it), and a
    shutdown of redis should end the task (wait_any then stops the main command)."""
    redis = need("redis-server", "redis-server")
    cli = need("redis-cli", "redis-tools")
    port = port_for(mode, 3)
    (tmp_path / "pyinit.toml").write_text(
        f'[task.redis]\ntype = "forking"\npid_file = "{tmp_path}/redis.pid"\n'
    )
    (tmp_path / "trc.d").mkdir()
    (tmp_path / "trc.d" / "async.redis").write_text(
        f"exec {redis} --port {port} --daemonize yes --save '' --dir {tmp_path} "
        f"--pidfile {tmp_path}/redis.pid\n"
    )
    script = (
        f"until {cli} -p {port} ping >/dev/null 2>&1; do sleep 0.05; done; "
        f"{cli} -p {port} info server | grep process_id; "
        f"{cli} -p {port} shutdown nosave; sleep 30"
    )
    run = run_pyinit(mode, ["-v", "-w", str(tmp_path), "--", "sh", "-c", script])
    line = run.expect(r"^process_id:[0-9]+", "stdout")
    pid = int(line.strip().split(b":")[1])
    run.expect(rf"redis forked: its main process is <pid={pid}> \(redis-server\)")
    run.expect(r"redis ended \(exitcode=0\) while sh was running: stopping it")
    assert run.wait() == 143


def test_a_restart_first_stops_the_orphaned_workers(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """gunicorn's master killed with SIGKILL leaves its workers holding the port: pyinit
    should stop them before the restart, so the new master binds at once (no 'Connection in
    use')."""
    pytest.importorskip("gunicorn", reason="needs gunicorn (pip install gunicorn)")
    port = port_for(mode, 4)
    (tmp_path / "app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'hello from gunicorn\\n']\n"
    )
    (tmp_path / "pyinit.toml").write_text('[task.web]\nrestart = "always"\nrestart_delay = 0\n')
    (tmp_path / "trc.d").mkdir()
    (tmp_path / "trc.d" / "async.web").write_text(
        f"exec {sys.executable} -m gunicorn -w 2 -b 127.0.0.1:{port} --chdir {tmp_path} "
        f"--pid {tmp_path}/gunicorn.pid app:app\n"
    )
    killer = (
        f"import os, signal, time\n{fetch(port)}"
        f"os.kill(int(open('{tmp_path}/gunicorn.pid').read()), signal.SIGKILL)\n"
        "time.sleep(30)\n"
    )
    run = run_pyinit(mode, ["-w", str(tmp_path), "--", sys.executable, "-c", killer])
    run.expect(
        r"web exited 137 after [0-9.]+s leaving [0-9]+ process(es)? \(.*\): stopping "
        r"them first"
    )
    run.expect(r"web exited \(exitcode=137\): restart 1 in 0s")
    listening = rf"Listening at: http://127\.0\.0\.1:{port} "
    run.expect(listening, count=2)  # the first master's line, then the restarted master's
    run.signal(15)
    run.wait()
    assert not any(b"Connection in use" in line for line in run.lines["stderr"])


def test_a_service_leaving_a_child_restarts_without_it(
    mode: str, run_pyinit: StartPyinit, tmp_path: Path
) -> None:
    """A background task that exits 3 leaving `sleep` behind should name it and stop it
    before its restart, and again when it fails for good (whose status, under wait_any, is
    the run's)."""
    (tmp_path / "pyinit.toml").write_text(
        '[task.D1]\nrestart = "on-failure"\nrestart_delay = 0\nmax_restarts = 1\n'
    )
    run = run_pyinit(
        mode, ["-w", str(tmp_path), "-D", "sleep 1000 & echo started; exit 3", "--", "sleep", "30"]
    )
    # The leftover is named `bash` when the scan comes before its fork has exec'd sleep.
    leaving = r"D1 exited 3 after [0-9.]+s leaving 1 process \((sleep|bash)\): stopping them first"
    run.expect(leaving)
    run.expect(r"D1 failed for good \(exitcode=3\)")
    assert run.wait() == 3
    assert sum(1 for line in run.lines["stderr"] if re.search(leaving.encode(), line)) == 2


def postgres_bin(program: str) -> str:
    """PostgreSQL's server programs live in /usr/lib/postgresql/N/bin on Debian, off PATH."""
    found = shutil.which(program) or next(
        iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"), reverse=True)), None
    )
    if found is None or os.geteuid() != 0:
        pytest.skip(f"needs {program} and root (apt-get install postgresql)")
    return str(found)


def test_postgres_as_its_own_user_with_initdb_in_boot(mode: str, run_pyinit: StartPyinit) -> None:
    """The finding of `[defaults] user = "postgres"` with `-B 'initdb …'`: the boot items run
    as postgres and share the boot state (a function defined by one, used by the next), initdb
    makes the cluster, postgres runs in the foreground until it logs that it is ready, the main
    command queries it, and the stop (SIGINT, postgres's fast shutdown) ends the run with 0."""
    initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
    psql = need("psql", "postgresql-client")
    port = port_for(mode, 6)
    with tempfile.TemporaryDirectory(prefix="pyinit-pg-") as top:
        work = Path(top)
        work.chmod(0o755)
        data, sockets = work / "data", work / "run"
        sockets.mkdir()
        shutil.chown(sockets, "postgres", "postgres")
        shutil.chown(work, "postgres", "postgres")
        (work / "pyinit.toml").write_text(
            '[defaults]\nuser = "postgres"\n\n'
            '[task.D1]\nstop_signal = "INT"\nready = "log:database system is ready"\n'
        )
        run = run_pyinit(
            mode,
            [
                "-v",
                "-w",
                str(work),
                "-B",
                f"pgopts() {{ echo '-p {port} -k {sockets} -c listen_addresses='; }}",
                "-B",
                f"{initdb} -D {data} -U postgres --auth=trust -E UTF8 >/dev/null && pgopts",
                "-D",
                f"exec {postgres} -D {data} $(pgopts)",
                "--",
                psql,
                "-h",
                str(sockets),
                "-p",
                str(port),
                "-U",
                "postgres",
                "-tAc",
                "select current_user || ' ' || 6 * 7",
            ],
            cwd=work,
        )
        run.expect(r"postgres 42", stream="stdout", timeout=50)
        assert run.wait() == 0
        run.expect(r"D1 is ready after .*database system is ready")  # psql waited for it
        run.expect(r"D1: .*received fast shutdown request")  # SIGINT, on postgres's stderr
        assert not any(b"Permission denied" in line for line in run.lines["stderr"])
