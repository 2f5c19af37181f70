"""Every Dockerfile builds offline from the local base image and wheels, into a working image."""

import json

import pytest

from .harness import DOCKERFILES, Images, Podman

# The body only: the session's preparation (conftest.py) has a time limit on every step.
pytestmark = pytest.mark.timeout(180, func_only=True)

ENTRYPOINTS = {  # as each Dockerfile writes it
    "example": ["pyinit", "-w", "/etc", "--"],
    "pyinit-way": ["pyinit", "-w", "/opt/app", "--"],
    "one-file": ["pyinit", "-w", "/opt/app", "--"],
    "trc-way": ["pyinit", "--compat=trc", "-w", "/opt/app"],
}


def test_every_dockerfile_is_built() -> None:
    """should build Dockerfile.example and one image per docker/*/Dockerfile"""
    assert set(DOCKERFILES) == set(ENTRYPOINTS)


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_image_builds_offline_and_runs_pyinit(name: str, images: Images, podman: Podman) -> None:
    """should build with BASE=local and WHEELS=context, pyinit as exec-form ENTRYPOINT, prctl in"""
    image = images.get(name)
    config = json.loads(podman.check("image", "inspect", "--format", "{{json .Config}}", image))
    assert config["Entrypoint"] == ENTRYPOINTS[name]
    assert config["StopSignal"] in ("SIGTERM", "15")
    # The wheels were installed, python-prctl among them (not the ctypes fallback).
    probe = "import prctl, psutil, pyinit.cli; print('ok', pyinit.cli.__file__)"
    out = podman.check("run", "--rm", "--entrypoint", "python3", image, "-c", probe)
    assert out.startswith("ok /usr/local/lib/python3"), out  # pip's, not a copy of the tree
    version = podman.check("run", "--rm", "--entrypoint", "pyinit", image, "--version")
    assert "pyinit" in version, version
