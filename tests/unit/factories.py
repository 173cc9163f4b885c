"""Builders of backups and observations for the unit tests (plain data, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backup_operator.api.v1alpha1 import Backup, DatabaseBackup, FilesBackup

T0 = datetime(2026, 12, 4, 2, 0, 0, tzinfo=UTC)
UID = "3f2a9c1e-0000-4000-8000-000000000001"


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def database_backup(status: dict[str, Any] | None = None, **spec: Any) -> DatabaseBackup:
    """A DatabaseBackup ``shop/shop-2026-12-04`` with the given spec overrides."""
    body: dict[str, Any] = {
        "kind": "DatabaseBackup",
        "metadata": _meta("shop-2026-12-04"),
        "spec": {
            "source": {"uriSecretRef": {"name": "shop-mongo", "key": "uri"}, "database": "shop"},
            "storage": {"pvc": {"claimName": "backups"}},
            **spec,
        },
        "status": status or {},
    }
    return DatabaseBackup.model_validate(body)


def files_backup(status: dict[str, Any] | None = None, **spec: Any) -> FilesBackup:
    """A FilesBackup ``shop/uploads`` of PVC ``uploads`` into PVC ``backups``."""
    body: dict[str, Any] = {
        "kind": "FilesBackup",
        "metadata": _meta("uploads"),
        "spec": {
            "source": {"pvc": {"claimName": "uploads"}},
            "storage": {"pvc": {"claimName": "backups"}},
            **spec,
        },
        "status": status or {},
    }
    return FilesBackup.model_validate(body)


def with_status(backup: Backup, status: Any) -> Backup:
    """The same backup with another status (as the API server would return it)."""
    return backup.model_copy(update={"status": status})


def _meta(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "shop",
        "uid": UID,
        "generation": 1,
        "creationTimestamp": T0.isoformat(),
        "resourceVersion": "100",
    }
