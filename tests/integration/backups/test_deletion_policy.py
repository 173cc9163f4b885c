"""deletionPolicy: Delete removes the artifact (by a cleanup Job) before the backup goes."""

from __future__ import annotations

from tests.support.backups import backup_path, create, files_backup, wait_for_phase
from tests.support.kube import Kube, resource_path
from tests.support.operator import OperatorProcess
from tests.support.podplayer import PodPlayer
from tests.support.waiting import wait_for


def cleanup_jobs(kube: Kube, namespace: str) -> list[dict[str, object]]:
    return kube.items(
        resource_path("batch/v1", "jobs", namespace),
        labelSelector="backup.operator.dev/type=cleanup",
    )


def test_delete_policy_runs_a_cleanup_job_first(
    kube: Kube, namespace: str, operator: OperatorProcess, pod_player: PodPlayer
) -> None:
    create(kube, files_backup(namespace, "temporary", deletionPolicy="Delete"))
    done = wait_for_phase(kube, "FilesBackup", namespace, "temporary", ("Succeeded",))
    kube.delete(backup_path("FilesBackup", namespace, "temporary"))
    jobs = wait_for(lambda: cleanup_jobs(kube, namespace), 60, "the cleanup Job")
    args = jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"]  # type: ignore[index]
    assert args[-2:] == ["--path", done["status"]["artifact"]["path"]]
    wait_for(
        lambda: kube.get_or_none(backup_path("FilesBackup", namespace, "temporary")) is None,
        60,
        "the backup to go once its artifact is deleted",
    )
    assert any(r.job_name == jobs[0]["metadata"]["name"] for r in pod_player.runs)  # type: ignore[index]


def test_retain_policy_keeps_the_artifact(
    kube: Kube, namespace: str, operator: OperatorProcess, pod_player: PodPlayer
) -> None:
    create(kube, files_backup(namespace, "kept"))
    wait_for_phase(kube, "FilesBackup", namespace, "kept", ("Succeeded",))
    kube.delete(backup_path("FilesBackup", namespace, "kept"))
    wait_for(
        lambda: kube.get_or_none(backup_path("FilesBackup", namespace, "kept")) is None,
        60,
        "the backup to be deleted",
    )
    assert cleanup_jobs(kube, namespace) == []
