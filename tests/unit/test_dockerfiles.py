"""Static checks of the integration examples: Dockerfiles, trc.d, k8s and systemd files.

Nothing is built or run here (no docker needed): each Dockerfile is parsed just
enough to check what `docker build` would trip over (a COPY of a file that is not
in the build context, an undeclared build argument, a shell-form ENTRYPOINT that
would put /bin/sh in front of pyinit as PID 1), with its default build arguments
(a user with a registry) and with WHEELS=context (prebuilt wheels, no network).
tests/container/ builds and runs them for real.
"""

import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(10)

DOCKERFILES = sorted([ROOT / "Dockerfile.example", *ROOT.glob("docker/*/Dockerfile")], key=str)
STAGE_FILES = sorted(p for p in ROOT.glob("docker/*/trc.d/*") if p.is_file())
PODS = sorted(ROOT.glob("docker/**/k8s-pod.yaml"))
UNITS = sorted(ROOT.glob("docker/**/*.service"))
PYINIT_NAMES = {"pyinit", "trc"}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---- a minimal Dockerfile parser --------------------------------------------------


@dataclass
class Stage:
    base: str  # the FROM image, build args substituted
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Dockerfile:
    global_args: dict[str, str | None]
    stages: list[Stage]


def logical_lines(text: str) -> list[str]:
    """Join `\\` continuations; drop comments and blank lines (also inside one)."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops these, even in the middle of a continuation
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def substitute(text: str, args: dict[str, str | None]) -> str:
    """Expand `$VAR`, `${VAR}` and `${VAR:-default}` from declared build args."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        value = args.get(name)
        if value:
            return value
        if match.group(2) is not None:
            return match.group(2)
        raise KeyError(name)

    return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)", one, text)


def parse_arg(rest: str) -> tuple[str, str | None]:
    name, _, default = rest.partition("=")
    return name.strip(), (default.strip().strip("\"'") if "=" in rest else None)


def parse(text: str, build_args: dict[str, str] | None = None) -> Dockerfile:
    """The stages, FROM lines expanded with the ARG defaults, or `--build-arg` values given."""
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for line in logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(substitute(words[0], global_args), name))
        elif keyword == "ARG" and not stages:
            key, default = parse_arg(rest)
            global_args[key] = (build_args or {}).get(key, default)  # only declared ones count
        elif stages:
            stages[-1].instructions.append((keyword, rest))
    return Dockerfile(global_args, stages)


def copy_parts(rest: str) -> tuple[dict[str, str], list[str]]:
    """Split a COPY/ADD argument string into its --flags and its paths."""
    flags = {}
    while match := re.match(r"--([\w-]+)(?:=(\S*))?\s*", rest):
        flags[match.group(1)] = match.group(2) or ""
        rest = rest[match.end() :]
    if rest.startswith("["):  # JSON form: ["src", ..., "dest"]
        return flags, json.loads(rest)
    return flags, shlex.split(rest)


def used_stages(dockerfile: Dockerfile) -> list[Stage]:
    """The stages the final one needs (by FROM or COPY --from): the only ones built
    (BuildKit, podman, buildah), so the only ones whose instructions must work."""
    by_name = {stage.name: stage for stage in dockerfile.stages if stage.name}
    used: list[Stage] = []
    todo = [dockerfile.stages[-1]]
    while todo:
        stage = todo.pop()
        if any(stage is seen for seen in used):
            continue
        used.append(stage)
        sources = [stage.base] + [
            copy_parts(rest)[0].get("from", "") for k, rest in stage.instructions if k == "COPY"
        ]
        todo += [by_name[source] for source in sources if source in by_name]
    return used


WHEELS_CHOICES = ("source", "context")  # ARG WHEELS: build the wheels, or take prebuilt ones


@pytest.fixture(params=DOCKERFILES, ids=rel)
def dockerfile_path(request: pytest.FixtureRequest) -> Path:
    return Path(request.param)


@pytest.fixture
def dockerfile(dockerfile_path: Path) -> Dockerfile:
    return parse(dockerfile_path.read_text())


# ---- the parser itself ------------------------------------------------------------


def test_parser_handles_continuations_args_and_stages() -> None:
    """should join continuations, expand build args in FROM and record stage names"""
    text = (
        "# syntax comment\nARG BASE=python:3.11-slim\nFROM ${BASE} AS build\n"
        "RUN apt-get update \\\n # a comment inside\n && true\n"
        "FROM $BASE\nCOPY --from=build /wheels /wheels\n"
        'ENTRYPOINT ["pyinit", "--"]\n'
    )
    parsed = parse(text)
    assert [(s.base, s.name) for s in parsed.stages] == [
        ("python:3.11-slim", "build"),
        ("python:3.11-slim", None),
    ]
    assert parsed.stages[0].instructions == [("RUN", "apt-get update  && true")]
    assert copy_parts(parsed.stages[1].instructions[0][1]) == (
        {"from": "build"},
        ["/wheels", "/wheels"],
    )
    assert used_stages(parsed) == parsed.stages[::-1]


def test_parser_takes_build_args_and_finds_used_stages() -> None:
    """should expand FROM with --build-arg values and follow FROM/COPY --from to used stages"""
    text = (
        "ARG WHEELS=one\nFROM base AS wheels-one\nFROM scratch AS wheels-two\n"
        "FROM wheels-${WHEELS} AS wheels\nFROM base\nCOPY --from=wheels /w /w\n"
    )
    for choice in ("one", "two"):
        parsed = parse(text, {"WHEELS": choice, "UNDECLARED": "x"})
        assert parsed.global_args == {"WHEELS": choice}
        assert [s.name for s in used_stages(parsed)] == [None, "wheels", f"wheels-{choice}"]


# ---- Dockerfiles ------------------------------------------------------------------


def test_all_dockerfiles_found() -> None:
    """should find Dockerfile.example and one Dockerfile per docker/ example"""
    names = {rel(p) for p in DOCKERFILES}
    assert {
        "Dockerfile.example",
        "docker/trc-way/Dockerfile",
        "docker/pyinit-way/Dockerfile",
        "docker/one-file/Dockerfile",
    } <= names


def test_base_images_come_from_declared_args(dockerfile: Dockerfile) -> None:
    """should build and run on the same ARG BASE image, in two stages or more"""
    assert len(dockerfile.stages) >= 2, "expected a build stage and a runtime stage"
    assert dockerfile.global_args.get("BASE"), "ARG BASE needs a default"
    names = {stage.name for stage in dockerfile.stages}
    # The wheels are built for one Python: the runtime must have the same one. Only a
    # stage holding files (the prebuilt wheels) may start from scratch, with no Python.
    assert {s.base for s in dockerfile.stages if s.base not in names} - {"scratch"} == {
        dockerfile.global_args["BASE"]
    }


@pytest.mark.parametrize("choice", WHEELS_CHOICES)
def test_wheels_stage_follows_the_wheels_arg(dockerfile_path: Path, choice: str) -> None:
    """should take the runtime's wheels from the stage `wheels-$WHEELS`, source by default"""
    parsed = parse(dockerfile_path.read_text(), {"WHEELS": choice})
    assert parse(dockerfile_path.read_text()).global_args.get("WHEELS") == "source"
    used = {stage.name for stage in used_stages(parsed)}
    assert {"wheels", f"wheels-{choice}"} <= used
    assert not {f"wheels-{other}" for other in WHEELS_CHOICES if other != choice} & used


def test_prebuilt_wheels_build_needs_no_network(dockerfile_path: Path) -> None:
    """should, with WHEELS=context, take the wheels from the context's wheels/ and never
    reach an index: no pip wheel, no compiler, apt-get only for packages BASE lacks"""
    parsed = parse(dockerfile_path.read_text(), {"WHEELS": "context"})
    used = used_stages(parsed)
    wheels = next(stage for stage in used if stage.name == "wheels-context")
    assert wheels.instructions == [("COPY", "wheels/ /wheels/")]
    runs = [rest for stage in used for keyword, rest in stage.instructions if keyword == "RUN"]
    assert not [run for run in runs if "pip wheel" in run or "build-essential" in run]
    for run in runs:  # apt-get only behind the `dpkg -s` check of what is missing
        assert "apt-get" not in run or ("dpkg -s" in run and 'if [ -n "$missing" ]' in run), run
    assert all("--no-index" in run for run in runs if "pip install" in run)


def test_copy_sources_exist_in_context(dockerfile: Dockerfile) -> None:
    """should COPY/ADD, with the default build args, only paths of the repository root
    (WHEELS=context also copies wheels/, which whoever builds that way makes)"""
    for stage in used_stages(dockerfile):
        for keyword, rest in stage.instructions:
            if keyword not in ("COPY", "ADD"):
                continue
            flags, paths = copy_parts(rest)
            if "from" in flags:
                continue  # a file of another stage or image, not of the context
            assert len(paths) >= 2, f"{keyword} {rest}: no destination"
            for source in paths[:-1]:
                if re.match(r"[a-z+]+://|git@", source):
                    continue  # ADD of a URL
                pattern = source.strip("/") or "."  # paths are relative to ROOT
                assert pattern == "." or list(ROOT.glob(pattern)), f"{keyword} {source}"


def test_copy_from_names_an_earlier_stage(dockerfile: Dockerfile) -> None:
    """should take `COPY --from=NAME` only from a stage defined above it"""
    seen: set[str] = set()
    for index, stage in enumerate(dockerfile.stages):
        for keyword, rest in stage.instructions:
            source = copy_parts(rest)[0].get("from") if keyword == "COPY" else None
            if source is not None:
                assert source in seen | {str(i) for i in range(index)}, source
        if stage.name:
            seen.add(stage.name)


def test_entrypoint_is_pyinit_in_exec_form(dockerfile: Dockerfile) -> None:
    """should start pyinit as PID 1: a JSON-array ENTRYPOINT whose first word is it"""
    final = dockerfile.stages[-1].instructions
    entrypoints = [rest for keyword, rest in final if keyword == "ENTRYPOINT"]
    assert entrypoints, "the final stage has no ENTRYPOINT"
    argv = json.loads(entrypoints[-1])  # shell form is not JSON: it fails here
    assert isinstance(argv, list)
    assert all(isinstance(word, str) for word in argv)
    assert os.path.basename(argv[0]) in PYINIT_NAMES


def test_stop_signal_is_sigterm(dockerfile: Dockerfile) -> None:
    """should have docker stop send SIGTERM, which starts pyinit's orderly shutdown"""
    final = dockerfile.stages[-1].instructions
    assert ("STOPSIGNAL", "SIGTERM") in final


def test_runtime_installs_from_wheels_only(dockerfile: Dockerfile) -> None:
    """should install pyinit in the final stage from the built wheels, no index"""
    runs = " ".join(r for k, r in dockerfile.stages[-1].instructions if k == "RUN")
    assert "--no-index" in runs
    assert "--find-links /wheels" in runs


# ---- trc.d stage files ------------------------------------------------------------


def test_stage_files_found() -> None:
    """should find the stage files of both docker/ examples"""
    assert {p.parent.parent.name for p in STAGE_FILES} >= {"trc-way", "pyinit-way"}


@pytest.mark.parametrize("path", STAGE_FILES, ids=rel)
def test_stage_file_is_runnable(path: Path) -> None:
    """should be an executable with a shebang, or a bash file pyinit can source"""
    assert re.match(r"(trc\.)?(boot|async|sync|halt)\.", path.name), "no stage prefix"
    text = path.read_text(encoding="utf-8")  # text, not a binary
    first = text.splitlines()[0] if text else ""
    if os.access(path, os.X_OK):
        assert first.startswith("#!"), "an executable needs a shebang"
        shell = os.path.basename(first[2:].split()[0])
        if shell not in ("sh", "bash"):
            return  # another interpreter: nothing to check it with here
        check = subprocess.run([shell, "-n", str(path)], check=False, capture_output=True)
    else:  # sourced by bash: no shebang, or one naming bash or sh
        assert not first.startswith("#!") or re.match(r"#!.*\b(ba)?sh\b", first)
        check = subprocess.run(["bash", "-n", str(path)], check=False, capture_output=True)
    assert check.returncode == 0, check.stderr.decode()


# ---- Kubernetes and systemd -------------------------------------------------------


@pytest.mark.parametrize("path", PODS, ids=rel)
def test_pod_grace_exceeds_pyinit_budget(path: Path) -> None:
    """should give the pod more time to stop than pyinit's own 5 s grace"""
    text = path.read_text()
    grace = re.findall(r"^\s*terminationGracePeriodSeconds:\s*(\d+)\s*$", text, re.M)
    assert grace, "terminationGracePeriodSeconds missing"
    assert int(grace[0]) > 5
    assert re.search(r"^\s*terminationMessagePath:\s*/dev/termination-log", text, re.M)


def test_pod_manifest_found() -> None:
    """should ship at least one Kubernetes pod manifest"""
    assert PODS


@pytest.mark.parametrize("path", UNITS, ids=rel)
def test_unit_execstart_names_pyinit(path: Path) -> None:
    """should run pyinit (or its trc alias) as the systemd service's main process"""
    starts = re.findall(r"^ExecStart=(.*)$", path.read_text(), re.M)
    assert len(starts) == 1
    program = shlex.split(starts[0])[0].lstrip("-@:+!")  # systemd's exec prefixes
    assert os.path.basename(program) in PYINIT_NAMES


def test_units_found() -> None:
    """should ship a systemd unit for each docker/ example"""
    assert {p.parent.name for p in UNITS} >= {"trc-way", "pyinit-way"}


def test_images_install_the_distribution_by_its_name(dockerfile_path: Path) -> None:
    """should install pyinit by the name pyproject.toml gives it ("pyinit" on the index is
    another project: README, "Install")."""
    import tomllib

    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert name == "pyinit-pid1"
    text = dockerfile_path.read_text()
    installs = re.findall(r"pip install [^\n]*--find-links /wheels '([^']+)'", text)
    assert installs == [f"{name}[prctl]"], installs
