"""Units, conditions, settings and the audit document: small pure pieces."""

from __future__ import annotations

import pytest

from backup_operator.api.v1alpha1 import PendingAudit
from backup_operator.audit import audit_document, requested_groups
from backup_operator.conditions import set_condition
from backup_operator.settings import SettingsError, from_env
from backup_operator.units import human_duration, human_size
from tests.unit.factories import UID, at, database_backup, with_status


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (512, "512 B"), (1536, "1.5 KiB"), (1048576, "1.0 MiB"), (5 * 1024**4, "5.0 TiB")],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (12.4, "12s"), (75, "1m15s"), (3725, "1h2m5s")]
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_condition_transition_time_moves_only_with_status() -> None:
    first = set_condition([], "Succeeded", "Unknown", "Queued", "", at(0), 1)
    same = set_condition(first, "Succeeded", "Unknown", "JobRunning", "running", at(5), 1)
    done = set_condition(same, "Succeeded", "True", "JobSucceeded", "", at(9), 1)
    assert same[0].last_transition_time == at(0) and same[0].reason == "JobRunning"
    assert done[0].last_transition_time == at(9)
    assert len(done) == 1


def test_settings_defaults_and_errors() -> None:
    settings = from_env({})
    assert (settings.lock_scope, settings.reconcile_seconds) == ("Namespace", 10.0)
    assert from_env({"BACKUP_LOCK_SCOPE": "Cluster"}).lock_scope == "Cluster"
    with pytest.raises(SettingsError, match="BACKUP_LOCK_SCOPE"):
        from_env({"BACKUP_LOCK_SCOPE": "Galaxy"})
    with pytest.raises(SettingsError, match="BACKUP_RECONCILE_SECONDS"):
        from_env({"BACKUP_RECONCILE_SECONDS": "soon"})


def test_audit_document() -> None:
    backup = database_backup()
    backup = with_status(backup, backup.status.model_copy(update={"requested_by": "alice"}))
    record = PendingAudit(
        id=f"{UID}:started:1",
        action="database_backup_started",
        time=at(0),
        details={"jobName": "dbbackup-x"},
    )
    document = audit_document(backup, record)
    assert document["_id"] == f"{UID}:started:1"
    assert document["user"] == {"username": "alice", "groups": []}
    assert document["resource"]["kind"] == "DatabaseBackup"
    assert document["resource"]["uid"] == UID
    assert document["details"] == {"jobName": "dbbackup-x"}


def test_audit_document_names_the_groups_of_who_asked() -> None:
    backup = database_backup()
    annotations = {
        "backup.operator.dev/requested-by": "alice",
        "backup.operator.dev/requested-by-groups": '["backup-admins","system:authenticated"]',
    }
    meta = backup.metadata.model_copy(update={"annotations": annotations})
    backup = backup.model_copy(update={"metadata": meta})
    backup = with_status(backup, backup.status.model_copy(update={"requested_by": "alice"}))
    record = PendingAudit(id=f"{UID}:requested:1", action="database_backup_requested",
                          time=at(0), details={"requestedBy": "alice"})  # fmt: skip
    document = audit_document(backup, record)
    assert document["user"] == {
        "username": "alice",
        "groups": ["backup-admins", "system:authenticated"],
    }


@pytest.mark.parametrize("value", ["not json", '{"a": 1}', "[1, 2]"])
def test_audit_groups_ignore_a_malformed_annotation(value: str) -> None:
    annotations = {"backup.operator.dev/requested-by-groups": value}
    assert requested_groups(annotations) == []
