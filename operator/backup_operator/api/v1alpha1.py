"""The v1alpha1 API of ``backup.operator.dev``: spec and status of both backup kinds.

These pydantic models are the single source of truth for the API. The CRD YAML in
``crds/`` is generated from them (``backup-operator crds``), and the operator parses every
object it reads into them, so a field is described, bounded and typed in one place only.
Python attributes are snake_case; the wire names (``alias``) are the camelCase ones users
write in YAML.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "backup.operator.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Who asked for a backup: set by the admission webhook from the request's user, and
# protected by a ValidatingAdmissionPolicy (see ``admission``).
ANNOTATION_REQUESTED_BY = f"{GROUP}/requested-by"
ANNOTATION_REQUESTED_BY_GROUPS = f"{GROUP}/requested-by-groups"

Compression = Literal["gzip", "zstd", "none"]
ConcurrencyPolicy = Literal["Queue", "Forbid"]
DeletionPolicy = Literal["Retain", "Delete"]
Phase = Literal["Pending", "Queued", "Running", "Succeeded", "Failed"]
ConditionStatus = Literal["True", "False", "Unknown"]

DnsName = Annotated[
    str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
]
RelativePath = Annotated[
    str,
    Field(
        max_length=1024,
        pattern=r"^$|^[^/].*$",
        description="A path relative to the volume root; absolute paths are refused.",
    ),
]


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, unknown fields ignored on read."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


# ----------------------------------------------------------------------------- spec


class SecretKeyRef(ApiModel):
    """A key of a Secret in the backup's namespace."""

    name: DnsName = Field(description="Name of the Secret, in the same namespace as the backup.")
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key in the Secret whose value is used.",
    )


class PvcRef(ApiModel):
    """A PersistentVolumeClaim in the backup's namespace, optionally a folder inside it."""

    claim_name: DnsName = Field(description="Name of the PersistentVolumeClaim.")
    sub_path: RelativePath = Field(
        default="", description="Folder inside the volume; the root when empty."
    )


class Storage(ApiModel):
    """Where artifacts are written. S3-compatible storage comes in a later version."""

    pvc: PvcRef = Field(
        description="The volume that receives artifacts, under <namespace>/<name>/ of its subPath."
    )


class DatabaseSource(ApiModel):
    """The MongoDB deployment to dump."""

    uri_secret_ref: SecretKeyRef = Field(
        description="Secret key holding the MongoDB URI; the URI itself never appears in the spec."
    )
    database: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[^/\\. \"$]+$",
        description="Database to dump; every database when absent.",
    )


class FilesSource(ApiModel):
    """The volume to archive."""

    pvc: PvcRef = Field(description="The PersistentVolumeClaim (and folder in it) to archive.")


GlobList = Annotated[
    list[
        Annotated[
            str,
            Field(min_length=1, max_length=512, description="A glob, e.g. *.jpg or cache/*."),
        ]
    ],
    Field(max_length=64),
]


class BackupSpecBase(ApiModel):
    """Fields both kinds share. The spec is immutable once created."""

    storage: Storage = Field(description="Where the artifact is written.")
    compression: Compression = Field(default="gzip", description="Compression of the artifact.")
    concurrency_policy: ConcurrencyPolicy = Field(
        default="Queue",
        description=(
            "What to do when a backup of the same type is running or queued: Queue waits "
            "in line (oldest first), Forbid fails at once with reason ConcurrencyForbidden."
        ),
    )
    deadline_seconds: int = Field(
        default=3600,
        ge=30,
        le=7 * 24 * 3600,
        description="Time the backup Job may run before it is stopped (Job activeDeadlineSeconds).",
    )
    backoff_limit: int = Field(
        default=1, ge=0, le=10, description="Retries of a failed backup pod (Job backoffLimit)."
    )
    deletion_policy: DeletionPolicy = Field(
        default="Retain",
        description="Retain keeps the artifact when the backup is deleted; Delete removes it.",
    )


class DatabaseBackupSpec(BackupSpecBase):
    """Desired state of a DatabaseBackup: one mongodump of a MongoDB deployment."""

    source: DatabaseSource = Field(description="The MongoDB deployment to back up.")


class FilesBackupSpec(BackupSpecBase):
    """Desired state of a FilesBackup: one archive of a PersistentVolumeClaim."""

    source: FilesSource = Field(description="The volume to back up.")
    include: GlobList = Field(
        default_factory=list,
        description="Glob patterns (relative to the source folder) to include; all when empty.",
    )
    exclude: GlobList = Field(
        default_factory=list,
        description="Glob patterns (relative to the source folder) to leave out.",
    )
    allow_partial: bool = Field(
        default=False,
        description="Succeed even when some files cannot be read; they are listed in the result.",
    )


# ----------------------------------------------------------------------------- status


class Condition(ApiModel):
    """A standard Kubernetes condition (KEP-1623)."""

    type: str = Field(max_length=316, description="Succeeded, Queued or Running.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(min_length=1, max_length=1024, description="One-word CamelCase cause.")
    message: str = Field(default="", max_length=32768, description="Human-readable detail.")
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: int | None = Field(default=None, description="Generation this reflects.")


class QueueStatus(ApiModel):
    """Where a waiting backup stands in line."""

    position: int = Field(ge=0, description="Backups ahead of this one in the queue.")
    blocked_by: str = Field(default="", description="The backup holding the lock (namespace/name).")


class Artifact(ApiModel):
    """The file a successful backup wrote."""

    path: str = Field(description="Path inside the storage: <namespace>/<name>/<file>.")
    size_bytes: int = Field(ge=0, description="Size of the file in bytes.")
    size: str = Field(default="", description="Size for humans, e.g. 1.0 MiB.")
    sha256: str = Field(description="SHA-256 of the file, hex.")
    compression: Compression = Field(description="Compression of the file.")


AuditAction = Literal["requested", "started", "created", "failed"]


class PendingAudit(ApiModel):
    """An audit record not yet written to MongoDB; it waits here until it is."""

    id: str = Field(description="Deterministic document id: uid, action and attempt.")
    action: str = Field(description="Audit action name, e.g. database_backup_created.")
    time: datetime = Field(description="When the transition happened.")
    details: dict[str, str] = Field(
        default_factory=dict, description="Job name, attempt, artifact or error."
    )


class BackupStatus(ApiModel):
    """Observed state of a backup, written only by the operator."""

    phase: Phase | None = Field(
        default=None, description="Pending, Queued, Running, Succeeded or Failed."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Succeeded, Queued, Running."
    )
    observed_generation: int | None = Field(default=None, description="Generation last acted on.")
    queue: QueueStatus | None = Field(default=None, description="Place in line while Queued.")
    requested_by: str | None = Field(
        default=None, description="The Kubernetes user who created it."
    )
    job_name: str | None = Field(default=None, description="The backup Job.")
    start_time: datetime | None = Field(default=None, description="When the Job was created.")
    completion_time: datetime | None = Field(default=None, description="When the backup ended.")
    duration: str | None = Field(default=None, description="Run time for humans, e.g. 12s.")
    attempts: int = Field(default=0, ge=0, description="Pods the Job ran (1 + retries).")
    artifact: Artifact | None = Field(default=None, description="The file written, when Succeeded.")
    message: str = Field(default="", description="What is happening, or why it failed.")
    audit_pending: list[PendingAudit] = Field(
        default_factory=list, description="Audit records waiting for MongoDB to be reachable."
    )


# ----------------------------------------------------------------------------- kinds

Kind = Literal["DatabaseBackup", "FilesBackup"]


class ObjectMeta(ApiModel):
    """The parts of metadata the operator reads."""

    name: str
    namespace: str
    uid: str
    generation: int = 1
    creation_timestamp: datetime
    resource_version: str = ""
    annotations: dict[str, str] = Field(default_factory=dict)
    deletion_timestamp: datetime | None = None


class DatabaseBackup(ApiModel):
    """A request for one MongoDB backup."""

    kind: Literal["DatabaseBackup"] = "DatabaseBackup"
    metadata: ObjectMeta
    spec: DatabaseBackupSpec
    status: BackupStatus = Field(default_factory=BackupStatus)


class FilesBackup(ApiModel):
    """A request for one archive of a volume."""

    kind: Literal["FilesBackup"] = "FilesBackup"
    metadata: ObjectMeta
    spec: FilesBackupSpec
    status: BackupStatus = Field(default_factory=BackupStatus)


Backup = DatabaseBackup | FilesBackup
