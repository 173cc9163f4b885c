"""Who may ask for backups: backup-admin and backup-viewer, aggregated into the built-in
`edit`/`admin` and `view` roles, on the real API server (its aggregation controller)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.integration.deploy.conftest import kubectl, pick, render, samples
from tests.support.backups import PLURAL
from tests.support.controlplane import ControlPlane
from tests.support.kube import ApiException, Kube, resource_path
from tests.support.waiting import wait_for

GROUP_VERSION = "backup.operator.dev/v1alpha1"


def _apply_user_roles(tmp_path: Path) -> None:
    objects = render("cluster", "unused", tmp_path)
    roles = pick(objects, "ClusterRole", "backup-admin") + pick(objects, "ClusterRole",
                                                                 "backup-viewer")  # fmt: skip
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(roles))


def _bind(kube: Kube, namespace: str, role: str, user: str) -> None:
    kube.create(
        resource_path("rbac.authorization.k8s.io/v1", "rolebindings", namespace),
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": f"{user}-{role}", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
    )  # fmt: skip


def _sample_backup(namespace: str, kind: str) -> dict[str, Any]:
    backup = next(s for s in samples() if s["kind"] == kind)
    backup["metadata"]["namespace"] = namespace
    return backup


def _status(call: Callable[..., object], *args: Any) -> int:
    """HTTP status of the request ``call(*args)`` (200 for any success)."""
    try:
        call(*args)
    except ApiException as error:
        return int(error.status)
    return 200


def test_view_may_list_but_not_create_backups(
    control_plane: ControlPlane, kube: Kube, crds: None, namespace: str, tmp_path: Path
) -> None:
    _apply_user_roles(tmp_path)
    _bind(kube, namespace, "view", "vera")
    with Kube(control_plane.make_user_kubeconfig("vera")) as vera:
        for kind, plural in PLURAL.items():
            path = resource_path(GROUP_VERSION, plural, namespace)
            backup = _sample_backup(namespace, kind)

            def may_list(path: str = path) -> bool:
                return _status(vera.items, path) == 200

            # The aggregation controller adds backup-viewer's rules to `view` shortly.
            wait_for(may_list, 30, f"`view` to include listing {kind} (aggregation)")
            assert _status(vera.create, path, backup) == 403
            assert _status(vera.delete, f"{path}/{backup['metadata']['name']}") == 403


def test_edit_may_create_and_delete_backups(
    control_plane: ControlPlane, kube: Kube, crds: None, namespace: str, tmp_path: Path
) -> None:
    _apply_user_roles(tmp_path)
    _bind(kube, namespace, "edit", "eddie")
    with Kube(control_plane.make_user_kubeconfig("eddie")) as eddie:
        for kind, plural in PLURAL.items():
            path = resource_path(GROUP_VERSION, plural, namespace)
            backup = _sample_backup(namespace, kind)

            def may_create(path: str = path, backup: dict[str, Any] = backup) -> bool:
                return _status(eddie.create, path, backup) == 200

            wait_for(may_create, 30, f"`edit` to include creating {kind} (aggregation)")
            assert eddie.items(path)
            assert _status(eddie.delete, f"{path}/{backup['metadata']['name']}") == 200
