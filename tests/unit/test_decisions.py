"""Table tests of ``decide()``: every phase, every failure, and what each transition records."""

from __future__ import annotations

from typing import Any

import pytest

from backup_operator.api.v1alpha1 import Artifact, Backup, BackupStatus
from backup_operator.conditions import find
from backup_operator.decisions import (
    Decision,
    JobView,
    LockView,
    decide,
    fail_now,
    spec_problem,
)
from backup_operator.jobs import job_name
from tests.unit.factories import UID, at, database_backup, files_backup, with_status

FREE = LockView(free=True, position=0)
MINE = LockView(mine=True, free=False)
BUSY = LockView(free=False, holder="shop/nightly", position=0)
ARTIFACT = Artifact(
    path="shop/shop-2026-12-04/mongodb_backup_20261204_020000.archive.gz",
    size_bytes=1048576,
    sha256="ab" * 32,
    compression="gzip",
)


def running(backup: Backup) -> Backup:
    """The backup as it is after its Job was created at T0."""
    return with_status(backup, decide(backup, None, FREE, at(0), "alice").status)


def job(backup: Backup, **fields: Any) -> JobView:
    return JobView(name=job_name(backup), **fields)


def condition(decision: Decision, type_: str) -> tuple[str, str]:
    found = find(decision.status.conditions, type_)
    assert found is not None, f"no {type_} condition"
    return found.status, found.reason


def audit_actions(decision: Decision) -> list[str]:
    return [r.action for r in decision.status.audit_pending]


# --------------------------------------------------------------------------- new backups


@pytest.mark.parametrize(
    ("lock", "policy", "phase", "start", "reason"),
    [
        (FREE, "Queue", "Running", True, "JobRunning"),
        (FREE, "Forbid", "Running", True, "JobRunning"),
        (MINE, "Queue", "Running", True, "JobRunning"),
        (BUSY, "Queue", "Queued", False, "Queued"),
        (LockView(free=True, position=2), "Queue", "Queued", False, "Queued"),
        (BUSY, "Forbid", "Failed", False, "ConcurrencyForbidden"),
        (LockView(free=True, position=1), "Forbid", "Failed", False, "ConcurrencyForbidden"),
    ],
)
def test_new_backup(lock: LockView, policy: str, phase: str, start: bool, reason: str) -> None:
    backup = database_backup(concurrencyPolicy=policy)
    decision = decide(backup, None, lock, at(0), "alice")
    assert decision.status.phase == phase
    assert decision.start_job is start
    assert condition(decision, "Succeeded")[1] == reason
    assert decision.status.requested_by == "alice"
    assert audit_actions(decision)[0] == "database_backup_requested"


def test_start_records_job_and_audit() -> None:
    backup = database_backup()
    decision = decide(backup, None, FREE, at(0), "alice")
    assert decision.status.job_name == job_name(backup)
    assert decision.status.start_time == at(0)
    assert decision.status.attempts == 1
    assert condition(decision, "Running") == ("True", "JobRunning")
    assert condition(decision, "Queued") == ("False", "LockAcquired")
    assert audit_actions(decision) == ["database_backup_requested", "database_backup_started"]
    assert [e.reason for e in decision.events] == ["Started"]


def test_queued_shows_position_and_holder() -> None:
    decision = decide(
        files_backup(), None, LockView(free=False, holder="shop/a", position=3), at(0)
    )
    assert decision.status.queue is not None
    assert (decision.status.queue.position, decision.status.queue.blocked_by) == (3, "shop/a")
    assert condition(decision, "Queued") == ("True", "WaitingForLock")
    assert "position 3" in decision.status.message and "shop/a" in decision.status.message
    assert decision.status.requested_by == "unknown"
    assert audit_actions(decision) == ["files_backup_requested"]


def test_queue_moves_without_new_event_or_audit() -> None:
    backup = files_backup()
    first = decide(backup, None, LockView(free=False, holder="shop/a", position=3), at(0))
    later = decide(with_status(backup, first.status), None, BUSY, at(10))
    assert later.status.queue is not None and later.status.queue.position == 0
    assert later.events == ()
    assert len(later.status.audit_pending) == len(first.status.audit_pending)
    queued = find(later.status.conditions, "Queued")
    assert queued is not None and queued.last_transition_time == at(0)


def test_handover_starts_a_queued_backup() -> None:
    backup = files_backup()
    queued = with_status(backup, decide(backup, None, BUSY, at(0)).status)
    decision = decide(queued, None, MINE, at(30))
    assert decision.start_job and decision.status.phase == "Running"
    assert decision.status.queue is None
    assert condition(decision, "Queued") == ("False", "LockAcquired")


# --------------------------------------------------------------------------- running Jobs


def test_active_job_changes_nothing() -> None:
    backup = running(database_backup())
    decision = decide(backup, job(backup, active=1), MINE, at(5))
    assert decision.status == backup.status
    assert not decision.start_job and not decision.release_lock


def test_retry_is_counted() -> None:
    backup = running(database_backup())
    decision = decide(backup, job(backup, active=1, attempts=1), MINE, at(5))
    assert decision.status.attempts == 2
    assert "attempt 2" in decision.status.message


def test_job_found_after_crash_before_status_write() -> None:
    backup = database_backup()
    decision = decide(backup, job(backup, active=1), MINE, at(3))
    assert decision.status.phase == "Running" and not decision.start_job


def test_succeeded() -> None:
    backup = running(database_backup())
    decision = decide(
        backup, job(backup, outcome="Complete", attempts=1, artifact=ARTIFACT), MINE, at(12)
    )
    assert decision.status.phase == "Succeeded"
    assert decision.release_lock
    assert decision.status.artifact is not None
    assert decision.status.artifact.size == "1.0 MiB"
    assert decision.status.message == "Backup completed: 1.0 MiB in 12s"
    assert decision.status.duration == "12s"
    assert decision.status.completion_time == at(12)
    assert condition(decision, "Succeeded") == ("True", "JobSucceeded")
    assert condition(decision, "Running") == ("False", "JobSucceeded")
    created = decision.status.audit_pending[-1]
    assert created.action == "database_backup_created"
    assert created.details["sha256"] == ARTIFACT.sha256
    assert created.id == f"{UID}:created:1"


@pytest.mark.parametrize(
    ("view", "reason", "in_message"),
    [
        (
            {"reason": "DeadlineExceeded", "message": "Job was active longer than specified"},
            "DeadlineExceeded",
            "deadline",
        ),
        (
            {
                "reason": "BackoffLimitExceeded",
                "error_reason": "SourceUnreachable",
                "error_message": "cannot reach mongo.shop:27017",
            },
            "SourceUnreachable",
            "mongo.shop",
        ),
        (
            {
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            },
            "BackoffLimitExceeded",
            "backoff limit",
        ),
        ({}, "JobFailed", "failed"),
    ],
)
def test_failed_job(view: dict[str, Any], reason: str, in_message: str) -> None:
    backup = running(database_backup())
    decision = decide(backup, job(backup, outcome="Failed", attempts=2, **view), MINE, at(40))
    assert decision.status.phase == "Failed"
    assert decision.release_lock
    assert condition(decision, "Succeeded") == ("False", reason)
    assert in_message in decision.status.message
    assert decision.status.attempts == 2
    assert [e.type for e in decision.events] == ["Warning"]
    assert decision.status.audit_pending[-1].details["reason"] == reason


def test_complete_job_without_result_fails() -> None:
    backup = running(database_backup())
    decision = decide(backup, job(backup, outcome="Complete", attempts=1), MINE, at(9))
    assert condition(decision, "Succeeded") == ("False", "InvalidResult")


def test_vanished_job_fails() -> None:
    backup = running(database_backup())
    decision = decide(backup, None, MINE, at(60))
    assert condition(decision, "Succeeded") == ("False", "JobLost")
    assert decision.release_lock
    assert backup.status.job_name is not None and backup.status.job_name in decision.status.message


# --------------------------------------------------------------------------- finished and refused


@pytest.mark.parametrize("lock", [MINE, BUSY])
def test_finished_backup_is_left_alone(lock: LockView) -> None:
    backup = running(database_backup())
    done = decide(backup, job(backup, outcome="Failed"), MINE, at(5)).status
    decision = decide(with_status(backup, done), None, lock, at(99))
    assert decision.status == done
    assert decision.release_lock is lock.mine
    assert not decision.start_job


@pytest.mark.parametrize(
    ("backup", "problem"),
    [
        (
            files_backup(storage={"pvc": {"claimName": "uploads", "subPath": "backups"}}),
            "inside spec.source.pvc",
        ),
        (
            files_backup(
                source={"pvc": {"claimName": "data", "subPath": "a"}},
                storage={"pvc": {"claimName": "data", "subPath": "a/b"}},
            ),
            "inside spec.source.pvc",
        ),
        (
            database_backup(storage={"pvc": {"claimName": "b", "subPath": "x/../../etc"}}),
            "must not contain '..'",
        ),
    ],
)
def test_refused_spec(backup: Backup, problem: str) -> None:
    decision = decide(backup, None, FREE, at(0))
    assert condition(decision, "Succeeded") == ("False", "InvalidSpec")
    assert problem in decision.status.message
    assert not decision.start_job


def test_sibling_folders_of_one_volume_are_fine() -> None:
    backup = files_backup(
        source={"pvc": {"claimName": "data", "subPath": "app"}},
        storage={"pvc": {"claimName": "data", "subPath": "app-backups"}},
    )
    assert spec_problem(backup) is None


def test_fail_now_records_first_visit_too() -> None:
    decision = fail_now(database_backup(), "JobRejected", "quota exceeded", at(1), "bob")
    assert decision.status.phase == "Failed"
    assert decision.status.requested_by == "bob"
    assert audit_actions(decision) == ["database_backup_requested", "database_backup_failed"]


def test_status_round_trips_through_json() -> None:
    decision = decide(database_backup(), None, FREE, at(0), "alice")
    wire = decision.status.model_dump(by_alias=True, mode="json")
    assert wire["jobName"] == decision.status.job_name
    assert BackupStatus.model_validate(wire) == decision.status
