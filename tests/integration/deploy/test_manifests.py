"""manifests/ as users apply it: both overlays and the samples pass the real API server's
validation (server-side dry run), and the operator's pod passes the `restricted` level."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.integration.deploy.conftest import (
    MANIFESTS,
    SAMPLES,
    install_rbac,
    kubectl,
    pick,
    render,
)
from tests.support.kube import Kube, resource_path


@pytest.mark.parametrize("overlay", ["namespaced", "cluster"])
def test_overlay_applies_with_server_dry_run(namespace: str, overlay: str, tmp_path: Path) -> None:
    objects = render(overlay, namespace, tmp_path)
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "ServiceAccount", "Deployment", "Service"} <= kinds
    assert {"backup-admin", "backup-viewer"} <= {o["metadata"]["name"] for o in
                                                 pick(objects, "ClusterRole")}  # fmt: skip
    out = kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(objects))
    assert "(server dry run)" in out
    assert len(out.strip().splitlines()) == len(objects)


def test_optional_components_apply_with_server_dry_run(namespace: str, tmp_path: Path) -> None:
    objects = render("cluster", namespace, tmp_path, ("audit", "who-asked"))
    env = {
        e["name"]: e.get("value")
        for e in pick(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["BACKUP_WEBHOOK"] == "service:backup-operator/backup-operator-webhook"
    assert env["BACKUP_AUDIT_URI_FILE"] == "/var/run/backup-operator/audit/uri"
    rules = pick(objects, "ClusterRole", "backup-operator-admission")[0]["rules"]
    assert all("*" not in r["verbs"] and "*" not in r["resources"] for r in rules)
    out = kubectl("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(objects))
    assert len(out.strip().splitlines()) == len(objects)


def test_overlays_render_unchanged_as_shipped() -> None:
    """`kubectl apply -k manifests/overlays/...` as written: namespace backup-operator."""
    for overlay in ("namespaced", "cluster"):
        text = kubectl("kustomize", str(MANIFESTS / "overlays" / overlay))
        objects = [o for o in yaml.safe_load_all(text) if o]
        namespaces = {o["metadata"].get("namespace") for o in objects} - {None}
        assert namespaces == {"backup-operator"}, overlay
        assert pick(objects, "Namespace", "backup-operator")


def test_the_operator_pod_is_admitted_as_restricted(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    """PodSecurity only warns on a Deployment: try its pod template as a real Pod."""
    objects = render("namespaced", namespace, tmp_path)
    install_rbac(kube, objects, "unused")  # the pod's ServiceAccount must exist
    deployment = pick(objects, "Deployment")[0]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator-pod", "namespace": namespace},
        "spec": deployment["spec"]["template"]["spec"],
    }
    admitted = kube.request("POST", resource_path("v1", "pods", namespace), pod,
                            query={"dryRun": "All"})  # fmt: skip
    container = admitted["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    names = {e["name"] for e in container["env"]}
    assert {"POD_NAME", "BACKUP_OPERATOR_NAMESPACE", "BACKUP_LOCK_SCOPE"} <= names


def test_samples_apply_with_server_dry_run(namespace: str, crds: None) -> None:
    out = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(SAMPLES))
    kinds = {line.split("/")[0] for line in out.splitlines()}
    assert {
        "secret",
        "persistentvolumeclaim",
        "databasebackup.backup.operator.dev",
        "filesbackup.backup.operator.dev",
    } <= kinds


def test_base_installs_the_generated_crds(tmp_path: Path) -> None:
    """The base uses crds/ itself (its generated Kustomization), never copies of it."""
    rendered = render("namespaced", "x", tmp_path)
    names = {m["metadata"]["name"] for m in rendered if m["kind"] == "CustomResourceDefinition"}
    assert names == {"databasebackups.backup.operator.dev", "filesbackups.backup.operator.dev"}


def test_operator_rules_are_the_same_in_both_overlays(tmp_path: Path) -> None:
    role = pick(render("namespaced", "x", tmp_path / "n"), "Role", "backup-operator")[0]
    cluster_role = pick(render("cluster", "x", tmp_path / "c"), "ClusterRole", "backup-operator")
    assert role["rules"] == cluster_role[0]["rules"]
