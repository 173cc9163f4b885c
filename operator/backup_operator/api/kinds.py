"""The table of backup kinds: every per-kind name lives here, not in generic code."""

from __future__ import annotations

from dataclasses import dataclass

from backup_operator.api.v1alpha1 import (
    BackupSpecBase,
    DatabaseBackup,
    DatabaseBackupSpec,
    FilesBackup,
    FilesBackupSpec,
    Kind,
)


@dataclass(frozen=True)
class KindInfo:
    """Names and models of one backup kind."""

    kind: Kind
    plural: str
    singular: str
    short_names: tuple[str, ...]
    lock_type: str  # the backup type the one-at-a-time lock is per
    audit_prefix: str  # database_backup_created, files_backup_failed, ...
    job_prefix: str  # prefix of the Job name
    model: type[DatabaseBackup] | type[FilesBackup]
    spec_model: type[BackupSpecBase]


DATABASE = KindInfo(
    kind="DatabaseBackup",
    plural="databasebackups",
    singular="databasebackup",
    short_names=("dbbackup", "dbb"),
    lock_type="database",
    audit_prefix="database_backup",
    job_prefix="dbbackup",
    model=DatabaseBackup,
    spec_model=DatabaseBackupSpec,
)

FILES = KindInfo(
    kind="FilesBackup",
    plural="filesbackups",
    singular="filesbackup",
    short_names=("fbackup", "fb"),
    lock_type="files",
    audit_prefix="files_backup",
    job_prefix="filesbackup",
    model=FilesBackup,
    spec_model=FilesBackupSpec,
)

KINDS: tuple[KindInfo, ...] = (DATABASE, FILES)
BY_KIND: dict[str, KindInfo] = {k.kind: k for k in KINDS}
BY_PLURAL: dict[str, KindInfo] = {k.plural: k for k in KINDS}
CATEGORY = "backups"
