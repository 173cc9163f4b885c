"""The Job builders: deterministic names, ownership, limits, and a restricted, secret-safe pod."""

from __future__ import annotations

import json

import pytest

from backup_operator.api.kinds import DATABASE
from backup_operator.jobs import (
    JobSettings,
    build_cleanup_job,
    build_job,
    job_name,
    job_name_for,
)
from tests.unit.factories import UID, database_backup, files_backup

SETTINGS = JobSettings(image="registry.local/backup-operator:1.0")


def test_job_name_is_deterministic_and_short() -> None:
    backup = database_backup()
    assert job_name(backup) == "dbbackup-shop-2026-12-04-3f2a9c1e"
    long = job_name_for(DATABASE, "x" * 253, UID)
    assert len(long) <= 63 and long.endswith("-3f2a9c1e")
    assert job_name_for(DATABASE, "a" * 44 + "-" + "b" * 20, UID).count("--") == 0


def test_database_job_spec() -> None:
    backup = database_backup(deadlineSeconds=600, backoffLimit=2, compression="zstd")
    job = build_job(backup, SETTINGS)
    spec = job["spec"]
    assert (spec["activeDeadlineSeconds"], spec["backoffLimit"]) == (600, 2)
    assert spec["ttlSecondsAfterFinished"] == 3600
    assert spec["podReplacementPolicy"] == "Failed"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("DatabaseBackup", UID, True)
    labels = job["metadata"]["labels"]
    assert labels["backup.operator.dev/type"] == "database"
    assert labels["backup.operator.dev/backup-uid"] == UID
    container = spec["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["database", "--uri-file", "/var/run/backup/source/uri"]
    assert container["args"][container["args"].index("--prefix") + 1] == "shop/shop-2026-12-04"
    assert container["args"][container["args"].index("--database") + 1] == "shop"
    assert container["args"][container["args"].index("--compression") + 1] == "zstd"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_uri_comes_from_a_secret_file_only() -> None:
    job = build_job(database_backup(), SETTINGS)
    pod = job["spec"]["template"]["spec"]
    secret = next(v for v in pod["volumes"] if "secret" in v)["secret"]
    assert secret == {
        "secretName": "shop-mongo",
        "items": [{"key": "uri", "path": "uri"}],
        "defaultMode": 0o400,
    }
    text = json.dumps(pod["containers"][0]["env"] + pod["containers"][0]["args"])
    assert "secretKeyRef" not in text and "mongodb://" not in text
    assert pod["automountServiceAccountToken"] is False


def test_pod_is_restricted() -> None:
    pod = build_job(files_backup(), SETTINGS)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = pod["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert pod["restartPolicy"] == "Never"


@pytest.mark.parametrize(
    ("spec", "flags"),
    [
        ({}, []),
        (
            {"include": ["*.jpg"], "exclude": ["tmp/*"], "allowPartial": True},
            ["--include", "*.jpg", "--exclude", "tmp/*", "--allow-partial"],
        ),
    ],
)
def test_files_job_mounts_source_read_only(spec: dict[str, object], flags: list[str]) -> None:
    backup = files_backup(**spec, storage={"pvc": {"claimName": "backups", "subPath": "nightly"}})
    pod = build_job(backup, SETTINGS)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:3] == ["files", "--source", "/source"]
    assert container["args"][-len(flags) or len(container["args"]) :] == (flags or [])
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["source"]["readOnly"] is True
    assert mounts["storage"] == {
        "name": "storage",
        "mountPath": "/backup",
        "readOnly": False,
        "subPath": "nightly",
    }
    claims = {v["name"]: v.get("persistentVolumeClaim") for v in pod["volumes"]}
    assert claims["source"] == {"claimName": "uploads", "readOnly": True}


def test_cleanup_job_outlives_its_backup() -> None:
    backup = database_backup(deletionPolicy="Delete")
    path = "shop/shop-2026-12-04/mongodb_backup_20261204_020000.archive.gz"
    job = build_cleanup_job(backup, path, SETTINGS)
    assert job["metadata"]["name"] == "rm-dbbackup-shop-2026-12-04-3f2a9c1e"
    assert "ownerReferences" not in job["metadata"]
    assert job["metadata"]["labels"]["backup.operator.dev/type"] == "cleanup"
    pod = job["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args == ["delete-artifact", "--dest-root", "/backup", "--path", path]
    assert [v["name"] for v in pod["volumes"]] == ["storage", "tmp"]
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
