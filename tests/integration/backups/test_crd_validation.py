"""The CRDs on a real API server: they apply, and bad objects are refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.backups import backup_path, create, database_backup, files_backup
from tests.support.kube import ApiException, Kube


def refused(kube: Kube, manifest: dict[str, Any]) -> str:
    """Create ``manifest`` expecting a 422; return the API server's message."""
    with pytest.raises(ApiException) as caught:
        create(kube, manifest)
    assert caught.value.status == 422, caught.value.body
    return str(caught.value.body)


@pytest.mark.usefixtures("crds")
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"compression": "brotli"}, "spec.compression"),
        ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy"),
        ({"deadlineSeconds": 5}, "spec.deadlineSeconds"),
        ({"backoffLimit": 99}, "spec.backoffLimit"),
        ({"storage": {"pvc": {"claimName": "Not_A_Name"}}}, "spec.storage.pvc.claimName"),
        ({"storage": {"pvc": {"claimName": "b", "subPath": "/etc"}}}, "spec.storage.pvc.subPath"),
        ({"source": {"database": "shop"}}, "spec.source.uriSecretRef"),
    ],
)
def test_invalid_database_backup_is_refused(
    kube: Kube, namespace: str, change: dict[str, Any], field: str
) -> None:
    manifest = database_backup(namespace, "bad")
    manifest["spec"].update(change)
    assert field in refused(kube, manifest)


@pytest.mark.usefixtures("crds")
def test_missing_source_is_refused(kube: Kube, namespace: str) -> None:
    manifest = files_backup(namespace, "bad")
    del manifest["spec"]["source"]
    assert "spec.source" in refused(kube, manifest)


@pytest.mark.usefixtures("crds")
def test_spec_is_immutable_and_defaults_apply(kube: Kube, namespace: str) -> None:
    stored = create(kube, files_backup(namespace, "keep"))
    assert stored["spec"]["compression"] == "gzip"
    assert stored["spec"]["concurrencyPolicy"] == "Queue"
    assert stored["spec"]["deadlineSeconds"] == 3600
    with pytest.raises(ApiException) as caught:
        kube.patch(
            backup_path("FilesBackup", namespace, "keep"),
            {"spec": {"compression": "zstd"}},
            content_type="application/merge-patch+json",
        )
    assert caught.value.status == 422
    assert "spec is immutable" in str(caught.value.body)


@pytest.mark.usefixtures("crds")
def test_backups_category_lists_both_kinds(kube: Kube, namespace: str) -> None:
    create(kube, files_backup(namespace, "f1"))
    create(kube, database_backup(namespace, "d1"))
    resources = kube.get("/apis/backup.operator.dev/v1alpha1")["resources"]
    categories = {r["name"]: r.get("categories", []) for r in resources if "/" not in r["name"]}
    assert categories == {"databasebackups": ["backups"], "filesbackups": ["backups"]}
