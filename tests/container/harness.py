"""podman for the container tests: what the session prepares, and the containers the tests run.

Preparation (`prepare`), each step skipped when already done:

1. the tools: podman, runc, catatonit (podman's `--init`) and debootstrap, installed with apt-get
   when missing and we are root;
2. a containers.conf in CACHE (`CONTAINERS_CONF` for every podman call, never /etc): the runc
   runtime, default ulimits this kind of machine allows, logs in files, no network;
3. the base image, in podman's own image store under a tag that names its recipe, so it is built
   once per machine: Debian bookworm (minbase) with python3 and pip, bash, procps, libcap2, and
   the real programs of the docker/ examples (nc, ss), from debootstrap and `podman import`;
4. pyinit's wheels, built on the host by this Python into a private copy of the build context.

Then `Images.get` builds `Dockerfile.example` and every `docker/*/Dockerfile` once, from that
context, with `--build-arg BASE=<the local base image> --build-arg WHEELS=context`: no registry,
no package index, no network (`--network=none`).

Which Python the wheels are for: the image's python3 is Debian bookworm's, 3.11. When this Python
is a 3.11 as well (as on this kind of machine), `pip wheel '.[prctl]'` here gives wheels the image
can install: pyinit is pure Python, psutil's wheel is abi3, python-prctl's is cp311 and links
libcap.so.2, which the image has. With another Python, python-prctl's wheel would not install
there; then the base image also gets Debian's python3-prctl and python3-psutil, only pyinit's own
(pure Python) wheel is built, and `pip install 'pyinit-pid1[prctl]'` in the Dockerfiles finds both
requirements already installed.

Anything the machine cannot do (not root, no package access, podman cannot start a container)
raises `Unavailable`, which the conftest turns into one skip line; a Dockerfile that does not
build, or a container that misbehaves, is a failure.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path("/var/cache/pyinit-tests")  # containers.conf, the lock, debootstrap's scratch dir
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SUITE_PYTHON = (3, 11)  # bookworm's python3
BASE_PACKAGES = (
    "python3",
    "python3-pip",  # `pip install` in the Dockerfiles' runtime stage
    "bash",  # stage files without an exec bit are sourced by bash
    "procps",  # ps and pkill, in the tests and in the examples
    "libcap2",  # python-prctl's runtime library
    "netcat-openbsd",  # nc and ss: the real programs of docker/*/Dockerfile
    "iproute2",
)
DEBIAN_PYTHON_DEPS = ("python3-prctl", "python3-psutil")  # only when this Python is not 3.11
TOOLS = {"podman": "podman", "runc": "runc", "catatonit": "catatonit", "debootstrap": "debootstrap"}
CONTAINERS_CONF = """\
# Written by tests/container (harness.py); used through CONTAINERS_CONF only.
[containers]
# podman raises NOFILE and NPROC to values this kind of machine does not allow.
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
# podman logs reads files: no journald needed.
log_driver = "k8s-file"
# The tests need no network; loopback is enough for nc (and nothing depends on CNI).
netns = "none"
[engine]
# crun does not run on cgroups in hybrid mode; runc does.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
# The build context's files, as the Dockerfiles COPY them (from the repository root).
CONTEXT_FILES = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "Dockerfile.example",
    "pyinit",
    "bin",
    "docker",
)
# Every Dockerfile, by the short name its test image is tagged with.
DOCKERFILES = {
    "example": "Dockerfile.example",
    **{p.parent.name: str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("docker/*/Dockerfile"))},
}
LABEL = "pyinit-test.pid"  # on every container: which pytest process started it
BUILD_LABEL = "pyinit-test.build"  # on every image built here, intermediate stages included
WAIT = 30.0  # seconds for any one expected log line or exit: generous for a loaded CI machine


class Unavailable(Exception):
    """This machine cannot run the container tests: a skip with this reason, not a failure."""


def last_line(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def run(argv: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run argv to the end, its output captured as text; never raises for the exit status."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    try:
        return subprocess.run(argv, text=True, timeout=timeout, check=False, **kwargs)
    except FileNotFoundError as error:
        return subprocess.CompletedProcess(argv, 127, "", str(error))
    except subprocess.TimeoutExpired as error:
        out = last_line(error.stderr) if error.stderr else ""
        return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout:.0f}s {out}")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One pytest session at a time builds the base image."""
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# ---- preparation ------------------------------------------------------------------------


def ensure_tools() -> None:
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    missing = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool, path=search) is None]
    if not missing:
        return
    if shutil.which("apt-get") is None:
        raise Unavailable(f"{' '.join(missing)} missing, and no apt-get to install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
    ):
        done = run(argv, timeout=900, env=env)
        if done.returncode != 0:
            raise Unavailable(f"{' '.join(argv[:2])} failed: {last_line(done.stderr)}")


class Podman:
    """podman with this suite's containers.conf; the containers it starts, for cleanup."""

    def __init__(self, conf: Path) -> None:
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.env.pop("CONTAINER_HOST", None)  # the local engine, whatever the caller uses
        self.names: list[str] = []
        self._serial = itertools.count(1)

    def __call__(
        self, *args: str, timeout: float = 120, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        return run(["podman", *args], timeout=timeout, env=self.env, **kwargs)

    def check(self, *args: str, timeout: float = 120) -> str:
        """podman ARGS, which must succeed; its stdout."""
        done = self(*args, timeout=timeout)
        assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr.strip()}"
        return done.stdout

    def new_name(self) -> str:
        """A container name of its own, for `--name`; removed (`rm -f`) by `cleanup`."""
        name = f"pyinit-test-{os.getpid()}-{next(self._serial)}"
        self.names.append(name)
        return name

    def run_args(self, name: str) -> list[str]:
        return ["--name", name, "--label", f"{LABEL}={os.getpid()}"]

    def start(self, image: str, *command: str, options: tuple[str, ...] = ()) -> Container:
        """`podman run -d` IMAGE COMMAND: a running container (not --rm: its status is read)."""
        name = self.new_name()
        self.check("run", "-d", *self.run_args(name), *options, image, *command, timeout=120)
        return Container(self, name)

    def cleanup(self) -> None:
        if self.names:
            self("rm", "-f", "-t", "0", *self.names, timeout=120)
            self.names.clear()

    def remove_stale(self) -> None:
        """Containers left by an earlier session that was killed (its pid is gone)."""
        listed = self(
            "ps",
            "-a",
            "--filter",
            f"label={LABEL}",
            "--format",
            f'{{{{.Names}}}} {{{{index .Labels "{LABEL}"}}}}',
        )
        stale = [
            name
            for name, _, pid in (line.partition(" ") for line in listed.stdout.splitlines())
            if pid.isdigit() and not Path(f"/proc/{pid}").exists()
        ]
        if stale:
            self("rm", "-f", "-t", "0", *stale, timeout=120)


def write_conf() -> Path:
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        conf = CACHE / "containers.conf"
        if not conf.is_file() or conf.read_text() != CONTAINERS_CONF:
            scratch = conf.with_suffix(f".{os.getpid()}")
            scratch.write_text(CONTAINERS_CONF)
            scratch.replace(conf)
    except OSError as error:
        raise Unavailable(f"cannot write {CACHE}: {error.strerror}") from None
    return conf


def base_tag(packages: tuple[str, ...]) -> str:
    """The base image's name: the recipe's digest in the tag, so a changed recipe rebuilds."""
    recipe = "\n".join([SUITE, MIRROR, "minbase", "no-externally-managed", *packages])
    return f"localhost/pyinit-test-base:{SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def remove_rootfs(rootfs: Path) -> None:
    """Delete debootstrap's target, after unmounting what a killed debootstrap left mounted
    in it (/proc, /sys, /dev binds): rmtree must never walk into the host's /dev."""
    prefix = f"{rootfs}/"
    for _ in range(2):
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
        inside = sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True)
        if not inside:
            shutil.rmtree(rootfs, ignore_errors=True)
            return
        for point in inside:
            run(["umount", "-l", point], timeout=60)
    raise Unavailable(f"cannot unmount what debootstrap left mounted in {rootfs}: {inside}")


def ensure_base(podman: Podman, packages: tuple[str, ...]) -> tuple[str, bool]:
    """The base image's tag, built first when podman's store does not have it; and whether built."""
    tag = base_tag(packages)
    with locked(CACHE / "base.lock"):
        if podman("image", "exists", tag).returncode == 0:
            return tag, False
        rootfs = CACHE / "rootfs"
        remove_rootfs(rootfs)
        try:
            argv = [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                SUITE,
                str(rootfs),
                MIRROR,
            ]
            done = run(argv, timeout=1800)
            if done.returncode != 0:
                log = rootfs / "debootstrap" / "debootstrap.log"
                detail = last_line(log.read_text(errors="replace")) if log.is_file() else ""
                raise Unavailable(
                    f"debootstrap {SUITE} failed (Debian mirror unreachable?): "
                    f"{last_line(done.stderr + done.stdout)} {detail}".strip()
                )
            # The python images let `pip install` into the system Python; Debian's marks it
            # externally managed (PEP 668). The Dockerfiles install as in the python images.
            for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
                marker.unlink()
            # What the official images drop too: downloaded packages and package lists.
            for junk in [
                *rootfs.glob("var/cache/apt/archives/*.deb"),
                *rootfs.glob("var/lib/apt/lists/*_*"),
            ]:
                junk.unlink()
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            done = podman(
                "import", "--change", 'CMD ["/bin/bash"]', "-", tag, stdin=tar.stdout, timeout=600
            )
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait()
            if done.returncode != 0:
                raise Unavailable(f"podman import failed: {last_line(done.stderr)}")
        finally:
            remove_rootfs(rootfs)
        # Older recipes' base images: nothing uses them any more.
        names = podman(
            "images", "--format", "{{.Repository}}:{{.Tag}}", "localhost/pyinit-test-base"
        ).stdout.split()
        for old in set(names) - {tag}:
            podman("rmi", old)
        return tag, True


def image_python(podman: Podman, base: str) -> tuple[int, int]:
    """The base image's python3 version; the first container run, so it also proves podman."""
    done = podman(
        "run",
        "--rm",
        base,
        "python3",
        "-c",
        "import sys; print('%d %d' % sys.version_info[:2])",
        timeout=180,
    )
    if done.returncode != 0:
        raise Unavailable(f"podman cannot run a container here: {last_line(done.stderr)}")
    major, minor = done.stdout.split()
    return int(major), int(minor)


def host_wheels_fit() -> bool:
    """Whether wheels built by this Python install in the image (the same CPython 3.X)."""
    return sys.version_info[:2] == SUITE_PYTHON


def make_context(directory: Path, debian_deps: bool) -> Path:
    """A copy of the repository's build context, with the wheels in its wheels/ directory.

    A copy, so the build leaves nothing in the checkout (pip's build/ and *.egg-info, wheels/).
    """
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in CONTEXT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=ignore)
        else:
            shutil.copy2(source, directory / name)
    wheels = directory / "wheels"
    what = ["--no-deps", str(directory)] if debian_deps else [f"{directory}[prctl]"]
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheels), *what]
    # Fixed timestamps inside the wheels: unchanged sources give the same bytes, so the
    # image builds of the next session reuse their cached layers.
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
    done = run(argv, timeout=900, cwd=directory, env=env)
    if done.returncode != 0:
        raise Unavailable(f"pip wheel failed (no package index?): {last_line(done.stderr)}")
    return directory


class Prepared:
    """What the tests get: podman, the base image and the build context; timings for the report."""

    def __init__(self, podman: Podman, base: str, context: Path, timings: dict[str, float]) -> None:
        self.podman = podman
        self.base = base
        self.context = context
        self.timings = timings


def prepare(scratch: Path) -> Prepared:
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[step] = now - clock
        clock = now

    if not sys.platform.startswith("linux"):
        raise Unavailable("podman containers need Linux")
    if os.geteuid() != 0:
        raise Unavailable("need root (podman's own store, debootstrap)")
    ensure_tools()
    lap("tools")
    podman = Podman(write_conf())
    podman.remove_stale()
    debian_deps = not host_wheels_fit()
    packages = BASE_PACKAGES + (DEBIAN_PYTHON_DEPS if debian_deps else ())
    base, built = ensure_base(podman, packages)
    lap("base image (built)" if built else "base image (cached)")
    python = image_python(podman, base)
    assert python == SUITE_PYTHON, f"{base} has Python {python}, expected {SUITE_PYTHON}"
    context = make_context(scratch, debian_deps)
    lap("wheels")
    return Prepared(podman, base, context, timings)


class Images:
    """The test images, each built on first use from the prepared context (and then kept)."""

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.built: dict[str, str] = {}

    def get(self, name: str) -> str:
        if name not in self.built:
            self.built[name] = self._build(name, DOCKERFILES[name])
        return self.built[name]

    def _build(self, name: str, dockerfile: str) -> str:
        podman, tag = self.prepared.podman, f"localhost/pyinit-test-{name}:latest"
        old = podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
        start = time.monotonic()
        done = podman(
            "build", "--pull=never", "--network=none", "--label", f"{BUILD_LABEL}=1",
            "--build-arg", f"BASE={self.prepared.base}", "--build-arg", "WHEELS=context",
            "-f", str(self.prepared.context / dockerfile), "-t", tag, str(self.prepared.context),
            timeout=900,
        )  # fmt: skip
        self.prepared.timings[f"build {name}"] = time.monotonic() - start
        assert done.returncode == 0, (
            f"podman build -f {dockerfile} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        )
        new = podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
        if old and old != new:
            podman("rmi", old)  # the previous session's build (with its parents), now untagged
        return tag

    def cleanup(self) -> None:
        """Drop the untagged stage images of these builds (the prebuilt wheels' stage)."""
        self.prepared.podman("image", "prune", "-f", "--filter", f"label={BUILD_LABEL}")


class Container:
    """A container started by `Podman.start`: its logs, its state, its exit status."""

    def __init__(self, podman: Podman, name: str) -> None:
        self.podman = podman
        self.name = name

    def logs(self) -> list[str]:
        """stdout and stderr of the container, in the order written (one pipe for both)."""
        done = self.podman("logs", self.name, stderr=subprocess.STDOUT)
        return done.stdout.splitlines()

    def wait_for(
        self, pattern: str, since: int = 0, timeout: float = WAIT
    ) -> tuple[re.Match[str], int]:
        """The first log line at index >= since matching pattern, and the index after it."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.logs()
            for index in range(since, len(lines)):
                if match := re.search(pattern, lines[index]):
                    return match, index + 1
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no log line matching {pattern!r} in {self.name}:\n" + "\n".join(lines[-60:])
                )
            time.sleep(0.25)

    def state(self, field: str) -> str:
        return self.podman.check(
            "inspect", "--format", f"{{{{.State.{field}}}}}", self.name
        ).strip()

    def wait_exit(self, timeout: float = WAIT) -> int:
        """The container's exit status, once it has stopped."""
        done = self.podman("wait", self.name, timeout=timeout)
        assert done.returncode == 0, f"{self.name} still running after {timeout}s: {done.stderr}"
        return int(done.stdout.split()[-1])

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return self.podman("exec", self.name, *command, timeout=60)

    def stop(self, timeout: int = 10) -> float:
        """`podman stop -t TIMEOUT` (the stop signal, then SIGKILL); the seconds it took."""
        start = time.monotonic()
        self.podman.check("stop", "-t", str(timeout), self.name, timeout=timeout + 60)
        return time.monotonic() - start
