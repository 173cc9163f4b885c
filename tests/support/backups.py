"""Backup custom resources for integration tests: build, create, and wait on them.

Why it exists: every feature test creates backups and waits for a phase; doing it one way
keeps the tests short and their failure messages uniform (the object is in the message).
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.kube import Kube, resource_path
from tests.support.waiting import wait_for

GROUP_VERSION = "backup.operator.dev/v1alpha1"
PLURAL = {"DatabaseBackup": "databasebackups", "FilesBackup": "filesbackups"}
TERMINAL = ("Succeeded", "Failed")


def database_backup(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    """A DatabaseBackup manifest (secret ``mongo``/``uri``, PVC ``backups``)."""
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "DatabaseBackup",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": {"uriSecretRef": {"name": "mongo", "key": "uri"}},
            "storage": {"pvc": {"claimName": "backups"}},
            **spec,
        },
    }


def files_backup(namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    """A FilesBackup manifest (PVC ``data`` into PVC ``backups``)."""
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "FilesBackup",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "source": {"pvc": {"claimName": "data"}},
            "storage": {"pvc": {"claimName": "backups"}},
            **spec,
        },
    }


def backup_path(kind: str, namespace: str, name: str | None = None) -> str:
    """API path of a backup (or of the kind's collection in ``namespace``)."""
    return resource_path(GROUP_VERSION, PLURAL[kind], namespace, name)


def create(kube: Kube, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create a backup and return it as stored."""
    meta = manifest["metadata"]
    return kube.create(backup_path(manifest["kind"], meta["namespace"]), manifest)


def wait_for_phase(
    kube: Kube, kind: str, namespace: str, name: str, phases: tuple[str, ...], timeout: float = 60
) -> dict[str, Any]:
    """Wait until the backup's phase is one of ``phases``; return the object."""
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal last
        last = kube.get(backup_path(kind, namespace, name))
        return last if (last.get("status") or {}).get("phase") in phases else None

    try:
        return wait_for(reached, timeout, f"{kind} {namespace}/{name} to be {'/'.join(phases)}")
    except TimeoutError as error:
        raise TimeoutError(f"{error}; last seen:\n{json.dumps(last, indent=1)}") from None


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition of ``type_`` on a backup (an empty dict when absent)."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def jobs_of(kube: Kube, namespace: str, uid: str) -> list[dict[str, Any]]:
    """The Jobs the operator created for the backup with ``uid``."""
    return kube.items(
        resource_path("batch/v1", "jobs", namespace),
        labelSelector=f"backup.operator.dev/backup-uid={uid}",
    )
