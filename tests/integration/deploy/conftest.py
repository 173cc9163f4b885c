"""Fixtures for the deployment tests: manifests/ rendered for a test namespace, and
kubeconfigs of ServiceAccounts.

Why it exists: the install must be proven on the real API server as users apply it, with
the operator running under its own ServiceAccount's token rather than as admin. Overlays
are rendered the way README.md tells users to change the namespace (an overlay of their
own with `namespace:`), so that path is tested too.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube, resource_path

ROOT = Path(__file__).resolve().parents[3]
MANIFESTS = ROOT / "manifests"
SAMPLES = MANIFESTS / "samples"
OPERATOR_NAMESPACE = "backup-operator"
SERVICE_ACCOUNT = "backup-operator"

Manifest = dict[str, Any]


def kubectl(*args: str, stdin: str | None = None) -> str:
    """Run kubectl with the harness's KUBECONFIG (admin); raise with its stderr on failure."""
    done = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, env=os.environ, timeout=120
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}{done.stdout}")
    return done.stdout


def render(
    overlay: str, namespace: str, workdir: Path, components: tuple[str, ...] = ()
) -> list[Manifest]:
    """``manifests/overlays/<overlay>`` moved to ``namespace`` by a user's own overlay,
    with the optional ``manifests/components/<name>`` given.

    As README.md says: ``namespace:`` and a patch deleting the base's Namespace object (the
    test namespace exists already). Only a relative path may point at the overlay.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(MANIFESTS / "overlays" / overlay, workdir)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [target],
        "components": [
            os.path.relpath(MANIFESTS / "components" / name, workdir) for name in components
        ],
        "namespace": namespace,
        "patches": [
            {
                "patch": yaml.safe_dump(
                    {
                        "$patch": "delete",
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": OPERATOR_NAMESPACE},
                    }
                )
            }
        ],
    }
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(workdir))) if doc]


def pick(objects: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    """The rendered objects of ``kind`` (and ``name``)."""
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def create(kube: Kube, obj: Manifest) -> Manifest:
    """Create one rendered object with the admin client (any kind this module needs)."""
    api_version = obj["apiVersion"]
    plural = {
        "ServiceAccount": "serviceaccounts",
        "Role": "roles",
        "RoleBinding": "rolebindings",
        "ClusterRole": "clusterroles",
        "ClusterRoleBinding": "clusterrolebindings",
        "Secret": "secrets",
        "PersistentVolumeClaim": "persistentvolumeclaims",
        "DatabaseBackup": "databasebackups",
        "FilesBackup": "filesbackups",
    }[obj["kind"]]
    namespace = obj["metadata"].get("namespace")
    return kube.create(resource_path(api_version, plural, namespace), obj)


def service_account_kubeconfig(
    control_plane: ControlPlane, kube: Kube, namespace: str, name: str, path: Path
) -> Path:
    """A kubeconfig with a bound token of ServiceAccount ``namespace/name`` (TokenRequest)."""
    review = kube.create(
        resource_path("v1", "serviceaccounts", namespace, name) + "/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 3600},
        },
    )
    token = review["status"]["token"]
    ca = base64.b64encode(control_plane.ca_cert.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": control_plane.server,
                                         "certificate-authority-data": ca}}
        ],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [
            {"name": "sa", "context": {"cluster": "test", "user": name, "namespace": namespace}}
        ],
        "current-context": "sa",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def install_rbac(kube: Kube, objects: list[Manifest], suffix: str) -> None:
    """Create the operator's ServiceAccount, Roles, ClusterRoles and bindings for real.

    Cluster-scoped objects get ``suffix`` in their names, so tests never share one.
    """
    kinds = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    for obj in objects:
        if obj["kind"] not in kinds:
            continue
        if obj["kind"] == "ClusterRole" and obj["metadata"]["name"] != SERVICE_ACCOUNT:
            continue  # the user roles (backup-admin/-viewer) are not the operator's
        obj = yaml.safe_load(yaml.safe_dump(obj))
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            obj["metadata"]["name"] += f"-{suffix}"
        if obj["kind"] == "ClusterRoleBinding":
            obj["roleRef"]["name"] += f"-{suffix}"
        create(kube, obj)


def delete_cluster_rbac(kube: Kube, suffix: str) -> None:
    """Delete what ``install_rbac`` made cluster-wide."""
    for plural in ("clusterrolebindings", "clusterroles"):
        path = resource_path("rbac.authorization.k8s.io/v1", plural)
        kube.delete(f"{path}/{SERVICE_ACCOUNT}-{suffix}")


def samples() -> list[Manifest]:
    """The objects of ``manifests/samples/*.yaml``."""
    docs: list[Manifest] = []
    for path in sorted(SAMPLES.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs
