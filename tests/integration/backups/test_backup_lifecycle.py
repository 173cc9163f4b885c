"""A backup's life on the real control plane: Job created, result read, Failed, deleted."""

from __future__ import annotations

import json

from tests.support.backups import (
    backup_path,
    condition,
    create,
    database_backup,
    files_backup,
    jobs_of,
    wait_for_phase,
)
from tests.support.kube import Kube, resource_path
from tests.support.operator import OperatorProcess
from tests.support.podplayer import PodOutcome, PodPlayer
from tests.support.waiting import wait_for

RESULT = {
    "ok": True,
    "sizeBytes": 1048576,
    "sha256": "ab" * 32,
    "compression": "zstd",
    "durationSeconds": 2.5,
    "counts": {"files": 3},
}


def test_database_backup_becomes_one_job_and_succeeds(
    kube: Kube, namespace: str, operator: OperatorProcess, pod_player: PodPlayer
) -> None:
    path = f"{namespace}/nightly/mongodb_backup_20261204_020000.archive.zst"
    pod_player.outcome = lambda pod: PodOutcome(0, json.dumps({**RESULT, "path": path}))
    stored = create(
        kube,
        database_backup(
            namespace,
            "nightly",
            compression="zstd",
            backoffLimit=0,
            source={"uriSecretRef": {"name": "mongo", "key": "uri"}, "database": "shop"},
        ),
    )
    done = wait_for_phase(kube, "DatabaseBackup", namespace, "nightly", ("Succeeded",))
    jobs = jobs_of(kube, namespace, stored["metadata"]["uid"])
    assert len(jobs) == 1
    job = jobs[0]
    assert job["metadata"]["ownerReferences"][0]["uid"] == stored["metadata"]["uid"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:3] == ["database", "--uri-file", "/var/run/backup/source/uri"]
    assert "shop" in container["args"]
    status = done["status"]
    assert status["artifact"] == {
        "path": path,
        "sizeBytes": 1048576,
        "size": "1.0 MiB",
        "sha256": "ab" * 32,
        "compression": "zstd",
    }
    assert status["jobName"] == job["metadata"]["name"]
    assert status["message"].startswith("Backup completed: 1.0 MiB in ")
    assert condition(done, "Succeeded")["status"] == "True"
    assert status["requestedBy"] == "unknown"


def test_files_backup_failure_keeps_the_runner_reason(
    kube: Kube, namespace: str, operator: OperatorProcess, pod_player: PodPlayer
) -> None:
    failure = {"ok": False, "reason": "UnreadableFiles", "error": "2 files could not be read"}
    pod_player.outcome = lambda pod: PodOutcome(1, json.dumps(failure))
    stored = create(kube, files_backup(namespace, "photos", backoffLimit=1))
    done = wait_for_phase(kube, "FilesBackup", namespace, "photos", ("Failed",))
    assert condition(done, "Succeeded")["reason"] == "UnreadableFiles"
    assert "2 files could not be read" in done["status"]["message"]
    assert done["status"]["attempts"] == 2  # backoffLimit 1: two pods ran
    assert len(jobs_of(kube, namespace, stored["metadata"]["uid"])) == 1
    wait_for(
        lambda: (
            ("Warning", "UnreadableFiles")
            in {
                (e["type"], e["reason"])
                for e in kube.items(
                    resource_path("v1", "events", namespace),
                    fieldSelector=f"involvedObject.uid={stored['metadata']['uid']}",
                )
            }
        ),
        30,
        "a Warning Event with the runner's reason",
    )


def test_deadline_exceeded(
    kube: Kube, namespace: str, operator: OperatorProcess, pod_player: PodPlayer
) -> None:
    pod_player.outcome = lambda pod: PodOutcome(0, "", delay_seconds=600)
    create(kube, files_backup(namespace, "slow", deadlineSeconds=30, backoffLimit=0))
    done = wait_for_phase(kube, "FilesBackup", namespace, "slow", ("Failed",), timeout=120)
    assert condition(done, "Succeeded")["reason"] == "DeadlineExceeded"


def test_refused_spec_fails_without_a_job(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    inside = {"pvc": {"claimName": "data", "subPath": "backups"}}
    stored = create(kube, files_backup(namespace, "loop", storage=inside))
    done = wait_for_phase(kube, "FilesBackup", namespace, "loop", ("Failed",))
    assert condition(done, "Succeeded")["reason"] == "InvalidSpec"
    assert "would contain itself" in done["status"]["message"]
    assert jobs_of(kube, namespace, stored["metadata"]["uid"]) == []


def test_deleting_the_backup_deletes_its_job(
    kube: Kube, namespace: str, operator: OperatorProcess, pod_player: PodPlayer
) -> None:
    pod_player.outcome = lambda pod: PodOutcome(0, "", delay_seconds=600)
    stored = create(kube, database_backup(namespace, "doomed"))
    wait_for_phase(kube, "DatabaseBackup", namespace, "doomed", ("Running",))
    uid = stored["metadata"]["uid"]
    assert len(jobs_of(kube, namespace, uid)) == 1
    kube.delete(backup_path("DatabaseBackup", namespace, "doomed"))
    wait_for(
        lambda: not jobs_of(kube, namespace, uid), 60, "the garbage collector to delete the Job"
    )
    wait_for(
        lambda: kube.get_or_none(backup_path("DatabaseBackup", namespace, "doomed")) is None,
        30,
        "the backup to be gone (finalizer released)",
    )
