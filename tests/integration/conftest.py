"""Fixtures of the integration tests: a real control plane, FerretDB, namespaces, PodPlayer.

Why it exists: every integration test runs against real components started once per
session (``control_plane``, ``mongo``), in a fresh namespace that enforces the
``restricted`` Pod Security Standard (``namespace``), with ``pod_player`` standing in for
the kubelet. When a test fails, the namespace's objects are dumped into its report.

When the binaries cannot be built or a component does not start, the tests are skipped
with the reason, except under ``CI=true`` where they fail: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controlplane import ControlPlane
from tests.support.dump import dump_namespace
from tests.support.ferretdb import FerretDB
from tests.support.harness import failed_report, unavailable
from tests.support.kube import ApiException, Kube, resource_path
from tests.support.operator import apply_crds
from tests.support.podplayer import PodPlayer
from tests.support.processes import ComponentError
from tests.support.tools import ToolsUnavailableError, tools
from tests.support.waiting import wait_for

_HERE = Path(__file__).parent
#: Startup time of each component, printed in the terminal summary.
_STARTUP_SECONDS: dict[str, float] = {}


# --------------------------------------------------------------------------- hooks


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration with ``integration``."""
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _STARTUP_SECONDS:
        figures = ", ".join(f"{name} {secs:.2f}s" for name, secs in _STARTUP_SECONDS.items())
        terminalreporter.write_line(f"integration harness startup: {figures}")


# --------------------------------------------------------------------------- session


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager for the session; sets KUBECONFIG."""
    try:
        binaries = tools()
    except ToolsUnavailableError as error:
        unavailable("integration", str(error))
    plane = ControlPlane(tmp_path_factory.mktemp("controlplane"), binaries=binaries)
    try:
        plane.start()
    except (ComponentError, TimeoutError, OSError) as error:
        unavailable("integration", f"the control plane did not start: {error}")
    _STARTUP_SECONDS.update(plane.startup_seconds)
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(plane.kubeconfig)
    try:
        yield plane
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        plane.close()


@pytest.fixture(scope="session")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDB]:
    """FerretDB (SQLite backend) for the session.

    A test that calls ``mongo.stop()`` must call ``mongo.start()`` again (in a
    ``finally``): other tests share the server.
    """
    try:
        binary = tools().ferretdb
    except ToolsUnavailableError as error:
        unavailable("integration", str(error))
    server = FerretDB(tmp_path_factory.mktemp("ferretdb"), binary=binary)
    try:
        server.start()
    except (ComponentError, TimeoutError, OSError) as error:
        unavailable("integration", f"FerretDB did not start: {error}")
    if server.startup_seconds is not None:
        _STARTUP_SECONDS["ferretdb"] = server.startup_seconds
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------- per test


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{slug}-{secrets.token_hex(3)}"


def create_namespace(kube: Kube, name: str) -> None:
    """A namespace enforcing Pod Security ``restricted``, ready for pods (its ServiceAccount)."""
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
                    "backup.operator.dev/test-namespace": "true",
                },
            },
        },
    )
    # Pods (and so Jobs) cannot be created before the "default" ServiceAccount exists.
    wait_for(
        lambda: kube.get_or_none(resource_path("v1", "serviceaccounts", name, "default")),
        30,
        f"the default ServiceAccount in namespace {name}",
    )


def delete_namespace(kube: Kube, name: str) -> None:
    """Delete a test namespace without waiting.

    Running pods are bound to PodPlayer's fake node, which will not confirm their graceful
    deletion: they are deleted at once so the namespace can go away.
    """
    try:
        kube.request(
            "DELETE",
            resource_path("v1", "pods", name),
            {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0},
        )
    except ApiException as error:
        if error.status != 404:
            raise
    kube.delete(resource_path("v1", "namespaces", name=name))


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace enforcing Pod Security ``restricted``; dumped if the test fails."""
    name = _namespace_name(request.node.name)
    with Kube(control_plane.kubeconfig) as kube:
        create_namespace(kube, name)
        yield name
        failed = failed_report(request.node)
        if failed is not None:
            _report_namespace(control_plane, name, request.node, failed)
        delete_namespace(kube, name)


def _report_namespace(
    control_plane: ControlPlane, name: str, item: pytest.Item, report: pytest.TestReport
) -> None:
    """Attach the namespace dump to the failed report, so pytest prints it in the failure
    summary, and keep it as a file (``<control plane workdir>/dumps/``) for CI artifacts."""
    try:
        text = dump_namespace(control_plane.kubeconfig, name)
    except Exception as error:  # never hide the test's own failure
        text = f"(namespace dump failed: {type(error).__name__}: {error})"
    logs = "\n".join(f"  {component}: {path}" for component, path in control_plane.logs.items())
    text = f"{text}\n# component logs:\n{logs}\n"
    dumps = control_plane.workdir / "dumps"
    dumps.mkdir(exist_ok=True)
    (dumps / f"{name}.yaml").write_text(text)
    report.sections.append((f"namespace {name}", text))


@pytest.fixture
def pod_player(control_plane: ControlPlane, namespace: str) -> Iterator[PodPlayer]:
    """PodPlayer for the test's namespace (set ``pod_player.outcome`` to steer pods)."""
    player = PodPlayer(control_plane.kubeconfig, [namespace])
    player.start()
    try:
        yield player
    finally:
        player.stop()
    if player.errors:
        pytest.fail("PodPlayer errors:\n" + "\n".join(player.errors), pytrace=False)


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Iterator[Kube]:
    """A JSON client with the admin kubeconfig."""
    with Kube(control_plane.kubeconfig) as client:
        yield client


@pytest.fixture(scope="session")
def crds(kube: Kube) -> None:
    """Our CRDs, applied once per session from ``crds/``."""
    apply_crds(kube)
