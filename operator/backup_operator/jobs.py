"""Pure builders of the backup Jobs: a backup in, a ``batch/v1`` Job manifest (a dict) out.

The Job name is derived from the backup (kind prefix, name, uid prefix), so creating it
twice is a 409 from the API server, never a second backup. The pod satisfies the
``restricted`` Pod Security Standard, needs no Kubernetes permissions (no token is
mounted), and reads the MongoDB URI from a secret file: it is never in argv or env.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backup_operator.api.kinds import BY_KIND, KindInfo
from backup_operator.api.v1alpha1 import (
    API_VERSION,
    Backup,
    DatabaseBackup,
    FilesBackup,
    PvcRef,
)

Manifest = dict[str, Any]

LABEL_PREFIX = "backup.operator.dev"
MANAGED_BY = {"app.kubernetes.io/managed-by": "backup-operator"}
LABEL_TYPE = f"{LABEL_PREFIX}/type"
LABEL_KIND = f"{LABEL_PREFIX}/kind"
LABEL_UID = f"{LABEL_PREFIX}/backup-uid"
LABEL_NAME = f"{LABEL_PREFIX}/backup-name"

DEST_ROOT = "/backup"
SOURCE_ROOT = "/source"
SECRET_DIR = "/var/run/backup/source"  # noqa: S105 - a mount path, not a secret
URI_FILE = f"{SECRET_DIR}/uri"
RUNNER_UID = 65532
TMP_DIR = "/tmp"  # noqa: S108 - a private emptyDir in the pod, the only writable path

_MAX_NAME = 63


@dataclass(frozen=True)
class JobSettings:
    """Operator-wide choices for every Job; from the operator's configuration."""

    image: str = "backup-operator:dev"
    image_pull_policy: str = "IfNotPresent"
    ttl_seconds_after_finished: int = 3600
    requests: dict[str, str] = field(default_factory=lambda: {"cpu": "100m", "memory": "128Mi"})
    limits: dict[str, str] = field(default_factory=lambda: {"memory": "1Gi"})


def info_of(backup: Backup) -> KindInfo:
    """The kind table entry of a backup."""
    return BY_KIND[backup.kind]


def job_name(backup: Backup) -> str:
    """The Job of ``backup``; see ``job_name_for``."""
    return job_name_for(info_of(backup), backup.metadata.name, backup.metadata.uid)


def job_name_for(info: KindInfo, name: str, uid: str) -> str:
    """``<prefix>-<name>-<uid8>``, cut to 63 characters (a valid label value too)."""
    uid8 = uid.replace("-", "")[:8]
    room = _MAX_NAME - len(info.job_prefix) - len(uid8) - 2
    middle = name[:room].rstrip("-.")
    return f"{info.job_prefix}-{middle}-{uid8}"


def job_labels(backup: Backup) -> dict[str, str]:
    """Labels that let the operator find and select its Jobs without listing others."""
    return {
        **MANAGED_BY,
        LABEL_TYPE: info_of(backup).lock_type,
        LABEL_KIND: backup.kind,
        LABEL_UID: backup.metadata.uid,
        LABEL_NAME: backup.metadata.name[:_MAX_NAME].rstrip("-."),
    }


def artifact_prefix(backup: Backup) -> str:
    """Artifacts live under ``<namespace>/<name>/`` in the storage."""
    return f"{backup.metadata.namespace}/{backup.metadata.name}"


def build_job(backup: Backup, settings: JobSettings) -> Manifest:
    """The complete Job manifest for one backup."""
    args, volumes, mounts = _workload(backup)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(backup),
            "namespace": backup.metadata.namespace,
            "labels": job_labels(backup),
            "ownerReferences": [_owner_reference(backup)],
        },
        "spec": {
            "backoffLimit": backup.spec.backoff_limit,
            "activeDeadlineSeconds": backup.spec.deadline_seconds,
            "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
            "completions": 1,
            "parallelism": 1,
            # A retry starts only once the failed pod is gone: never two pods at once.
            "podReplacementPolicy": "Failed",
            "template": {
                "metadata": {"labels": job_labels(backup)},
                "spec": _pod_spec(args, volumes, mounts, settings),
            },
        },
    }


def cleanup_job_name(backup: Backup) -> str:
    """The Job that deletes a backup's artifact: the backup Job's name, prefixed."""
    return f"rm-{job_name(backup)}"[:_MAX_NAME].rstrip("-.")


def build_cleanup_job(backup: Backup, artifact_path: str, settings: JobSettings) -> Manifest:
    """The Job that deletes ``artifact_path`` from the storage (``deletionPolicy: Delete``).

    It has no ownerReference: it must outlive the backup it cleans up after, and it removes
    itself (ttlSecondsAfterFinished).
    """
    pvc = backup.spec.storage.pvc
    args = ["delete-artifact", "--dest-root", DEST_ROOT, "--path", artifact_path]
    volumes = [_pvc_volume("storage", pvc, read_only=False)]
    mounts = [_mount("storage", DEST_ROOT, pvc, read_only=False)]
    labels = {**job_labels(backup), LABEL_TYPE: "cleanup"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": cleanup_job_name(backup),
            "namespace": backup.metadata.namespace,
            "labels": labels,
        },
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 600,
            "ttlSecondsAfterFinished": 300,
            "podReplacementPolicy": "Failed",
            "template": {
                "metadata": {"labels": labels},
                "spec": _pod_spec(args, volumes, mounts, settings),
            },
        },
    }


def _owner_reference(backup: Backup) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": backup.kind,
        "name": backup.metadata.name,
        "uid": backup.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _workload(backup: Backup) -> tuple[list[str], list[Manifest], list[Manifest]]:
    """Runner arguments, volumes and mounts for the kind of ``backup``."""
    spec = backup.spec
    args = [
        "--dest-root",
        DEST_ROOT,
        "--prefix",
        artifact_prefix(backup),
        "--compression",
        spec.compression,
    ]
    volumes = [_pvc_volume("storage", spec.storage.pvc, read_only=False)]
    mounts = [_mount("storage", DEST_ROOT, spec.storage.pvc, read_only=False)]
    if isinstance(backup, DatabaseBackup):
        source = backup.spec.source
        args = ["database", "--uri-file", URI_FILE, *args]
        if source.database:
            args += ["--database", source.database]
        volumes.append(
            {
                "name": "source-uri",
                "secret": {
                    "secretName": source.uri_secret_ref.name,
                    "items": [{"key": source.uri_secret_ref.key, "path": "uri"}],
                    "defaultMode": 0o400,
                },
            }
        )
        mounts.append({"name": "source-uri", "mountPath": SECRET_DIR, "readOnly": True})
    else:
        args = ["files", "--source", SOURCE_ROOT, *args, *_file_filters(backup)]
        volumes.append(_pvc_volume("source", backup.spec.source.pvc, read_only=True))
        mounts.append(_mount("source", SOURCE_ROOT, backup.spec.source.pvc, read_only=True))
    return args, volumes, mounts


def _file_filters(backup: FilesBackup) -> list[str]:
    flags: list[str] = []
    for pattern in backup.spec.include:
        flags += ["--include", pattern]
    for pattern in backup.spec.exclude:
        flags += ["--exclude", pattern]
    if backup.spec.allow_partial:
        flags.append("--allow-partial")
    return flags


def _pvc_volume(name: str, pvc: PvcRef, *, read_only: bool) -> Manifest:
    return {
        "name": name,
        "persistentVolumeClaim": {"claimName": pvc.claim_name, "readOnly": read_only},
    }


def _mount(name: str, path: str, pvc: PvcRef, *, read_only: bool) -> Manifest:
    mount: Manifest = {"name": name, "mountPath": path, "readOnly": read_only}
    if pvc.sub_path:
        mount["subPath"] = pvc.sub_path
    return mount


def _pod_spec(
    args: list[str], volumes: list[Manifest], mounts: list[Manifest], settings: JobSettings
) -> Manifest:
    """A pod that passes the ``restricted`` Pod Security Standard and holds no token."""
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_UID,
            "runAsGroup": RUNNER_UID,
            "fsGroup": RUNNER_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "runner",
                "image": settings.image,
                "imagePullPolicy": settings.image_pull_policy,
                "command": ["backup-operator", "runner"],
                "args": args,
                "env": [{"name": "TMPDIR", "value": TMP_DIR}, {"name": "HOME", "value": TMP_DIR}],
                "resources": {"requests": dict(settings.requests), "limits": dict(settings.limits)},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "volumeMounts": [*mounts, {"name": "tmp", "mountPath": TMP_DIR}],
            }
        ],
        "volumes": [*volumes, {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
