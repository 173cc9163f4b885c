"""A kind cluster for the e2e tests (``E2E_CLUSTER=kind``) and ``make demo``.

Why it exists: kind is what our users run. On a machine whose Docker can pull, the cluster
uses kind's own public node image; offline (these machines) it uses a node image
assembled here by ``hack/kind-node-image.sh`` from parts built from the Go module proxy.
``KIND_NODE_IMAGE`` forces an image (``public`` = kind's default). The cluster's settings
are ``hack/kind-config.yaml``; images built here are saved with ``save_image`` and put on
the node with ``kind load image-archive`` (tests/e2e/conftest.py ``Cluster.load_archive``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.support.processes import ComponentError
from tests.support.tools import REPO_ROOT, build_components, read_versions

KIND_CONFIG = REPO_ROOT / "hack" / "kind-config.yaml"
NODE_IMAGE_SCRIPT = REPO_ROOT / "hack" / "kind-node-image.sh"
DOCKER_ENGINE_SCRIPT = REPO_ROOT / "hack" / "docker-engine.sh"
#: A small public image: if Docker can pull it, kind can pull its node image too.
REGISTRY_PROBE = "registry.k8s.io/pause:3.10"


def _run(argv: list[str], timeout: float, what: str) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ComponentError(f"{what}: {error}") from error
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise ComponentError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout.strip()


def docker_client() -> str:
    """The docker client, after starting an engine that can run kind's nodes if none runs."""
    return _run(["bash", str(DOCKER_ENGINE_SCRIPT)], 120, "hack/docker-engine.sh")


def save_image(reference: str, archive: Path) -> Path:
    """``docker save`` an image of the local engine (e.g. ``make image``'s) to a file."""
    _run([docker_client(), "save", "-o", str(archive), reference], 600, f"docker save {reference}")
    return archive


def kind_binary() -> str:
    """``kind`` from PATH, else the one built here (``hack/build-tools.sh kind``)."""
    found = shutil.which("kind")
    if found:
        return found
    return str(build_components("kind") / f"kind-{read_versions()['KIND_VERSION']}" / "kind")


def node_image(docker: str) -> str | None:
    """The node image to boot: None for kind's default (public), else a local reference."""
    chosen = os.environ.get("KIND_NODE_IMAGE", "")
    if chosen == "public":
        return None
    if chosen:
        return chosen
    try:
        _run([docker, "pull", "-q", REGISTRY_PROBE], 30, "docker pull")
        return None
    except ComponentError:
        return _run(["bash", str(NODE_IMAGE_SCRIPT)], 3600, "hack/kind-node-image.sh")


class KindCluster:
    """``kind create cluster`` on enter, ``kind delete cluster`` on exit."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.kubeconfig = workdir / "kubeconfig"
        self.kind = kind_binary()
        self.docker = docker_client()
        self.startup_seconds: dict[str, float] = {}

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        image = node_image(self.docker)
        self.startup_seconds["node image"] = time.monotonic() - started
        argv = [self.kind, "create", "cluster", "--name", self.name, "--config", str(KIND_CONFIG)]
        argv += ["--kubeconfig", str(self.kubeconfig), "--wait", "180s"]
        if image:
            argv += ["--image", image]
        # A cluster of the same name left by a killed run would make create fail.
        self.delete()
        started = time.monotonic()
        _run(argv, 600, f"kind create cluster --name {self.name}")
        self.startup_seconds["kind create cluster"] = time.monotonic() - started

    def node_exec(self, *argv: str) -> str:
        """Run a command in the node container (e.g. to read a volume's files)."""
        node = f"{self.name}-control-plane"
        return _run([self.docker, "exec", node, *argv], 60, f"{' '.join(argv)} on {node}")

    def delete(self) -> None:
        _run([self.kind, "delete", "cluster", "--name", self.name], 300, "kind delete cluster")

    def __enter__(self) -> KindCluster:
        try:
            self.start()
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.delete()
