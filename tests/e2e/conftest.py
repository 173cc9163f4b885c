"""Fixtures of the e2e tests: a cluster whose pods really run, images built here, namespaces.

Why it exists: the e2e tier proves the packaged operator with real containers. The same
tests run against

- ``E2E_KUBECONFIG`` unset: a cluster started here (``ControlPlane`` + ``Node``: this host's
  containerd, runc and kubelet; see tests/support/node.py). Images are imported into the
  node's containerd directly. Needs root and Debian's containerd, runc,
  containernetworking-plugins.
- ``E2E_CLUSTER=kind``: a kind cluster created for the session and deleted after it
  (tests/support/kind.py: kind's public node image where Docker can pull it, else a node
  image assembled here by hack/kind-node-image.sh).
- ``E2E_KUBECONFIG=<path>``: any cluster, e.g. kind. Images are loaded with
  ``kind load image-archive`` when ``E2E_KIND_CLUSTER`` names the kind cluster;
  otherwise they must already be on the nodes. PersistentVolumeClaims use the cluster's
  default StorageClass (kind has one).

The operator image (``E2E_OPERATOR_IMAGE``, default ``backup-operator:dev``, built by
``make image``) is taken from ``E2E_OPERATOR_IMAGE_ARCHIVE`` (a ``docker save`` tar) or
from the local Docker engine. Without it the operator tests skip, or fail under
``CI=true``, like every missing component.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.controlplane import ControlPlane
from tests.support.harness import failed_report, unavailable
from tests.support.kind import KindCluster, kind_binary, save_image
from tests.support.kube import Kube, resource_path
from tests.support.node import (
    Node,
    NodeToolsUnavailableError,
    build_test_images,
    control_plane_args,
    e2e_static_dir,
    host_requirements,
    node_tools,
)
from tests.support.processes import ComponentError
from tests.support.tools import ToolsUnavailableError, tools
from tests.support.waiting import wait_for

_HERE = Path(__file__).parent
REPO_ROOT = _HERE.parents[1]
OPERATOR_NAMESPACE = "backup-operator"
OPERATOR_IMAGE = os.environ.get("E2E_OPERATOR_IMAGE", "backup-operator:dev")
_TIMINGS: dict[str, float] = {}


# --------------------------------------------------------------------------- hooks


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs a cluster whose pods really run (tests/e2e)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TIMINGS:
        figures = ", ".join(f"{name} {secs:.1f}s" for name, secs in _TIMINGS.items())
        terminalreporter.write_line(f"e2e cluster: {figures}")


# --------------------------------------------------------------------------- cluster


@dataclass
class Cluster:
    """Where the e2e tests run: a kubeconfig, and how to put an image on the nodes."""

    kubeconfig: Path
    workdir: Path
    node: Node | None = None
    kind_cluster: str | None = None
    loaded: set[str] = field(default_factory=set)

    @property
    def local(self) -> bool:
        """True for the cluster started here (hostPath volumes, node files readable)."""
        return self.node is not None

    def load_archive(self, reference: str, archive: Path) -> None:
        """Put an image archive (``docker save`` format) on the cluster's nodes, once."""
        if reference in self.loaded:
            return
        if self.node is not None:
            self.node.import_image(archive)
        elif self.kind_cluster:
            subprocess.run(
                [kind_binary(), "load", "image-archive", str(archive), "--name", self.kind_cluster],
                check=True,
            )
        self.loaded.add(reference)

    def kubectl(self, *args: str, input_text: str | None = None) -> str:
        result = subprocess.run(
            ["kubectl", f"--kubeconfig={self.kubeconfig}", *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def pod_logs(self, namespace: str, pod: str, container: str) -> str:
        """A container's log: from the node's files here, else through the API."""
        if self.node is not None:
            texts = []
            pattern = f"{namespace}_{pod}_*/{container}/*.log"
            for path in sorted(self.node.pod_logs_dir.glob(pattern)):
                texts.append(path.read_text(errors="replace"))
            return "".join(texts)
        try:
            return self.kubectl("logs", "-n", namespace, pod, "-c", container, "--tail=200")
        except AssertionError as error:
            return str(error)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The cluster of the session: ``E2E_KUBECONFIG``'s, or one started here."""
    workdir = tmp_path_factory.mktemp("e2e")
    external = os.environ.get("E2E_KUBECONFIG")
    if external:
        yield Cluster(Path(external), workdir, kind_cluster=os.environ.get("E2E_KIND_CLUSTER"))
        return
    if os.environ.get("E2E_CLUSTER") == "kind":
        yield from _kind_cluster(workdir)
        return
    missing = host_requirements()
    if missing:
        unavailable("e2e", "this host cannot run a node: " + "; ".join(missing))
    started = time.monotonic()
    try:
        binaries = tools()
        node_binaries = node_tools()
    except (ToolsUnavailableError, NodeToolsUnavailableError) as error:
        unavailable("e2e", str(error))
    _TIMINGS["binaries"] = time.monotonic() - started
    plane = ControlPlane(workdir / "controlplane", binaries=binaries, **control_plane_args())
    node = Node(plane, workdir / "node", binaries=node_binaries)
    started = time.monotonic()
    try:
        plane.start()
        node.start()
    except (ComponentError, TimeoutError, OSError) as error:
        node.close()
        plane.close()
        unavailable("e2e", f"the cluster did not start: {error}")
    _TIMINGS["cluster start"] = time.monotonic() - started
    for component, seconds in {**plane.startup_seconds, **node.startup_seconds}.items():
        _TIMINGS[f"  {component}"] = seconds
    try:
        yield Cluster(plane.kubeconfig, workdir, node=node)
    finally:
        node.close()
        plane.close()


def _kind_cluster(workdir: Path) -> Iterator[Cluster]:
    started = time.monotonic()
    try:
        kind = KindCluster(f"e2e-{secrets.token_hex(3)}", workdir / "kind")
        kind.start()
    except (ComponentError, ToolsUnavailableError) as error:
        unavailable("e2e", f"the kind cluster did not start: {error}")
    _TIMINGS["cluster start"] = time.monotonic() - started
    for step, seconds in kind.startup_seconds.items():
        _TIMINGS[f"  {step}"] = seconds
    try:
        yield Cluster(kind.kubeconfig, workdir, kind_cluster=kind.name)
    finally:
        kind.delete()


@pytest.fixture(scope="session")
def kube(cluster: Cluster) -> Iterator[Kube]:
    with Kube(cluster.kubeconfig) as client:
        yield client


@pytest.fixture(scope="session")
def test_images(cluster: Cluster) -> dict[str, str]:
    """The images built here (testbox, FerretDB), loaded into the cluster: ref -> ref."""
    try:
        static_dir = e2e_static_dir()
    except NodeToolsUnavailableError as error:
        unavailable("e2e", str(error))
    archives = build_test_images(cluster.workdir / "images", static_dir)
    for reference, archive in archives.items():
        cluster.load_archive(reference, archive)
    return {reference: reference for reference in archives}


@pytest.fixture(scope="session")
def operator_image(cluster: Cluster) -> str:
    """The operator image (``make image``), loaded into the cluster."""
    archive_env = os.environ.get("E2E_OPERATOR_IMAGE_ARCHIVE")
    if archive_env:
        archive = Path(archive_env)
    else:
        try:
            archive = save_image(OPERATOR_IMAGE, cluster.workdir / "operator-image.tar")
        except ComponentError as error:
            unavailable("e2e", f"{error} (run `make image`)")
    started = time.monotonic()
    cluster.load_archive(OPERATOR_IMAGE, archive)
    _TIMINGS["operator image import"] = time.monotonic() - started
    return OPERATOR_IMAGE


# --------------------------------------------------------------------------- per test


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"e2e-{slug}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(cluster: Cluster, kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing Pod Security ``restricted``; dumped if the test fails."""
    name = _namespace_name(request.node.name)
    kube.create(
        resource_path("v1", "namespaces"),
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        },
    )
    wait_for(
        lambda: kube.get_or_none(resource_path("v1", "serviceaccounts", name, "default")),
        60,
        f"the default ServiceAccount in {name}",
    )
    yield name
    if failed_report(request.node) is not None:
        text = dump(cluster, kube, name)
        dumps = cluster.workdir / "dumps"
        dumps.mkdir(exist_ok=True)
        (dumps / f"{name}.txt").write_text(text)
        request.node.add_report_section("teardown", f"namespace {name}", text)
    kube.delete(resource_path("v1", "namespaces", name=name))


def dump(cluster: Cluster, kube: Kube, namespace: str) -> str:
    """Objects, events and container logs of a namespace, for a failure report."""
    parts = []
    for args in (
        ("get", "all,pvc,backups,events", "-n", namespace, "-o", "wide"),
        ("get", "databasebackups,filesbackups", "-n", namespace, "-o", "yaml"),
    ):
        try:
            parts.append(cluster.kubectl(*args))
        except AssertionError as error:
            parts.append(str(error))
    pods = [(namespace, pod) for pod in kube.items(resource_path("v1", "pods", namespace))] + [
        (OPERATOR_NAMESPACE, pod)
        for pod in kube.items(resource_path("v1", "pods", OPERATOR_NAMESPACE))
    ]
    for pod_namespace, pod in pods:
        for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            logs = cluster.pod_logs(pod_namespace, pod["metadata"]["name"], container["name"])
            parts.append(
                f"--- logs {pod_namespace}/{pod['metadata']['name']}/{container['name']}\n"
                f"{logs[-4000:]}"
            )
    return "\n".join(parts)


@pytest.fixture
def volumes(cluster: Cluster, kube: Kube, namespace: str) -> Iterator[Callable[[str], str]]:
    """``volumes(claim)`` creates a PersistentVolumeClaim (1Gi, RWO) and returns its name.

    Here: a hostPath PersistentVolume bound to it (a directory writable by any uid, as a
    local-path provisioner makes them); elsewhere the default StorageClass provisions it.
    """
    created: list[str] = []

    def make(claim: str) -> str:
        spec: dict[str, object] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        }
        if cluster.local:
            pv_name = f"{namespace}-{claim}"[:63]
            directory = cluster.workdir / "volumes" / pv_name
            directory.mkdir(parents=True)
            directory.chmod(0o777)
            kube.create(
                resource_path("v1", "persistentvolumes"),
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": pv_name},
                    "spec": {
                        "capacity": {"storage": "1Gi"},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "storageClassName": "e2e-hostpath",
                        "hostPath": {"path": str(directory), "type": "Directory"},
                        "claimRef": {"namespace": namespace, "name": claim},
                    },
                },
            )
            created.append(pv_name)
            spec["storageClassName"] = "e2e-hostpath"
            spec["volumeName"] = pv_name
        kube.create(
            resource_path("v1", "persistentvolumeclaims", namespace),
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim},
                "spec": spec,
            },
        )
        return claim

    yield make
    for pv_name in created:
        kube.delete(resource_path("v1", "persistentvolumes", name=pv_name))
