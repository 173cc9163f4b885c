"""A MongoDB outage delays the audit, never a backup, and loses or doubles nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.support.backups import backup_path, create, database_backup
from tests.support.ferretdb import FerretDB
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.podplayer import PodPlayer
from tests.support.waiting import wait_for

COUNT = 10
ACTIONS = ["database_backup_requested", "database_backup_started", "database_backup_created"]


def test_backups_run_through_an_audit_outage_and_the_audit_catches_up(
    kube: Kube,
    namespace: str,
    mongo: FerretDB,
    audited_operator: OperatorProcess,
    pod_player: PodPlayer,
    audit_documents: Any,
) -> None:
    names = [f"nightly-{i:02d}" for i in range(COUNT)]
    mongo.stop()
    try:
        uids = [create(kube, database_backup(namespace, name))["metadata"]["uid"] for name in names]

        def all_succeeded() -> list[dict[str, Any]] | None:
            backups = kube.items(backup_path("DatabaseBackup", namespace))
            done = [b for b in backups if (b.get("status") or {}).get("phase") == "Succeeded"]
            return backups if len(done) == COUNT else None

        # Every backup finishes while MongoDB is down: nothing waits on the audit store.
        backups = wait_for(all_succeeded, 300, f"{COUNT} backups Succeeded with MongoDB down")
        assert not mongo.running
        for backup in backups:
            pending = [r["action"] for r in backup["status"]["auditPending"]]
            assert pending == ACTIONS, backup["metadata"]["name"]
    finally:
        mongo.start()

    def all_written() -> list[dict[str, Any]] | None:
        documents = audit_documents(namespace)
        return documents if len(documents) >= COUNT * len(ACTIONS) else None

    documents = wait_for(all_written, 120, "the audit to catch up after MongoDB came back")

    def pending_flushed() -> bool:
        backups = kube.items(backup_path("DatabaseBackup", namespace))
        return all(not b["status"].get("auditPending") for b in backups)

    wait_for(pending_flushed, 60, "status.auditPending to empty")
    documents = audit_documents(namespace)  # again: nothing written twice meanwhile
    assert len(documents) == COUNT * len(ACTIONS)
    counts = Counter((d["resource"]["uid"], d["action"]) for d in documents)
    assert set(counts.values()) == {1}
    assert set(counts) == {(uid, action) for uid in uids for action in ACTIONS}
    for uid in uids:
        own = [d for d in documents if d["resource"]["uid"] == uid]
        assert [d["action"] for d in own] == ACTIONS  # sorted by timestamp
        assert all(d["_id"] == f"{uid}:{d['action'].rsplit('_', 1)[1]}:1" for d in own)
        assert own[-1]["details"]["sha256"] == "0" * 64
