"""The pyinit way as a Kubernetes pod, for real: `podman kube play docker/pyinit-way/k8s-pod.yaml`.

podman reads Kubernetes pod YAML. The pod's container runs pyinit as PID 1 with its tasks; the
test checks the prefixed logs, that a task killed inside the pod is restarted by pyinit (the
container's restartCount stays 0), the health seen through `pyinitctl health`, through the
HTTP endpoint and through podman's own healthcheck (podman 4.3 maps the exec livenessProbe to
one), and that the pod's stop and `podman kube down` end with pyinit's status well within
terminationGracePeriodSeconds (podman 4.3 does not map that field to the container's stop
timeout, so the test gives it to `podman pod stop`, as the kubelet would).
"""

import re
import time
from pathlib import Path

import pytest

from .harness import ROOT, Container, Images, Podman

# The body only: the session's preparation (conftest.py) has a time limit on every step.
pytestmark = pytest.mark.timeout(180, func_only=True)

POD_YAML = ROOT / "docker" / "pyinit-way" / "k8s-pod.yaml"
READYZ = (
    "import urllib.request as u; r = u.urlopen('http://127.0.0.1:8099/readyz', timeout=5); "
    "print(r.status, r.read().decode().strip())"
)


def test_the_pod_yaml_under_podman_kube_play(
    images: Images, podman: Podman, tmp_path: Path
) -> None:
    name = podman.new_name()
    text = POD_YAML.read_text()
    text = re.sub(r"(?m)^  name: pm-pyinit$", f"  name: {name}", text)
    text = re.sub(r"(?m)^      image: pm-pyinit$", f"      image: {images.get('pyinit-way')}", text)
    assert name in text, "the pod's name is where the test expects it"
    pod = tmp_path / "pod.yaml"
    pod.write_text(text)
    found = re.search(r"terminationGracePeriodSeconds: (\d+)", text)
    assert found, text
    grace = int(found.group(1))
    podman.check("kube", "play", str(pod), timeout=180)
    try:
        ctr = Container(podman, f"{name}-procmgr")
        ctr.wait_for(r"^netlistener: \w{3} \w{3} ")  # prefixed: nc prints what netsender sent
        _, after = ctr.wait_for(r"^netmon: State +Recv-Q")
        # A task killed inside the pod is pyinit's to restart, not the kubelet's.
        assert ctr.exec("pkill", "-x", "ss").returncode == 0
        _, after = ctr.wait_for(r"pyinit \[async/\d+\]: netmon .*restart 1", since=after)
        ctr.wait_for(r"^netmon: State +Recv-Q", since=after)
        assert ctr.state("Status") == "running"
        assert podman.check("inspect", "--format", "{{.RestartCount}}", ctr.name).strip() == "0"
        # The health, three ways: pyinitctl, the HTTP endpoint, podman's mapped healthcheck.
        health = ctr.exec("pyinitctl", "health")
        assert (health.returncode, health.stdout) == (0, "healthy\n"), health
        ready = ctr.exec("python3", "-c", READYZ)
        assert ready.stdout.strip() == "200 ready", ready
        deadline = time.monotonic() + 30  # its first check comes `interval` (5 s) after start
        healthy = r"(?m)^netlistener +async +running .* healthy "
        while not re.search(healthy, (status := ctr.exec("pyinitctl", "status")).stdout):
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        check = podman("healthcheck", "run", ctr.name, timeout=60)
        mapped = "has no defined healthcheck" not in check.stderr
        if mapped:  # podman 4.3 maps an exec livenessProbe to its own healthcheck
            assert check.returncode == 0, check
        # The end: `kube down` stops the pod (SIGTERM to PID 1, SIGKILL after the grace) and
        # removes it. The stop is done as its own step first, with the pod's grace, so that
        # the container's status and last lines can still be read before the removal.
        start = time.monotonic()
        podman.check("pod", "stop", "-t", str(grace), name, timeout=grace + 60)
        took = time.monotonic() - start
        assert ctr.state("ExitCode") == "143"
        ctr.wait_for(r"pyinit \[main/1\]: run ended: stopped by SIGTERM \(exitcode=143\)")
        podman.check("kube", "down", str(pod), timeout=120)
    finally:
        podman("kube", "down", str(pod), timeout=120)
    assert took < grace, f"the stop took {took:.1f}s: pyinit was SIGKILLed"
