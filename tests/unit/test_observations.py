"""Job, pod and Lease shapes from the API server, read into the views decide() takes."""

from __future__ import annotations

import json
from typing import Any

from backup_operator.locking import Holder, LeaseView
from backup_operator.observations import holder_state, job_view, lock_view

RESULT = {
    "ok": True,
    "path": "shop/b/files_backup_20261204_020000.tar.zst",
    "sizeBytes": 2048,
    "sha256": "cd" * 32,
    "compression": "zstd",
    "durationSeconds": 1.5,
}


def a_job(
    *conditions: tuple[str, str], active: int = 0, failed: int = 0, succeeded: int = 0
) -> dict[str, Any]:
    return {
        "metadata": {"name": "filesbackup-b-1"},
        "status": {
            "active": active,
            "failed": failed,
            "succeeded": succeeded,
            "conditions": [
                {"type": t, "status": "True", "reason": r, "message": f"{r} happened"}
                for t, r in conditions
            ],
        },
    }


def a_pod(phase: str, message: str, created: str = "2026-12-04T02:00:00Z") -> dict[str, Any]:
    return {
        "metadata": {"creationTimestamp": created},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": "runner", "state": {"terminated": {"exitCode": 0, "message": message}}}
            ],
        },
    }


def test_running_job() -> None:
    view = job_view(a_job(active=1, failed=1), [])
    assert (view.outcome, view.active, view.attempts) == (None, 1, 1)


def test_complete_job_reads_the_artifact() -> None:
    job = a_job(
        ("SuccessCriteriaMet", "CompletionsReached"),
        ("Complete", "CompletionsReached"),
        succeeded=1,
    )
    view = job_view(job, [a_pod("Succeeded", json.dumps(RESULT))])
    assert view.outcome == "Complete"
    assert view.artifact is not None
    assert (view.artifact.size_bytes, view.artifact.compression) == (2048, "zstd")


def test_failed_job_reads_the_newest_failure() -> None:
    old = a_pod(
        "Failed",
        json.dumps({"ok": False, "reason": "DumpFailed", "error": "first"}),
        "2026-12-04T02:00:00Z",
    )
    new = a_pod(
        "Failed",
        json.dumps({"ok": False, "reason": "SourceUnreachable", "error": "2nd"}),
        "2026-12-04T02:01:00Z",
    )
    view = job_view(a_job(("Failed", "BackoffLimitExceeded"), failed=2), [new, old])
    assert (view.outcome, view.reason, view.attempts) == ("Failed", "BackoffLimitExceeded", 2)
    assert (view.error_reason, view.error_message) == ("SourceUnreachable", "2nd")


def test_garbage_termination_message_is_a_reason_not_a_crash() -> None:
    view = job_view(
        a_job(("Failed", "BackoffLimitExceeded"), failed=1),
        [a_pod("Failed", "Traceback (most recent call last): boom")],
    )
    assert view.error_reason == "InvalidTerminationMessage"
    assert "Traceback" in view.error_message


def test_complete_job_without_message_has_no_artifact() -> None:
    view = job_view(a_job(("Complete", "CompletionsReached"), succeeded=1), [])
    assert view.outcome == "Complete" and view.artifact is None


def test_holder_state() -> None:
    done = a_job(("Complete", "CompletionsReached"))
    assert holder_state({"status": {"phase": "Running"}}, done).job_finished
    running = holder_state({"status": {"phase": "Running"}}, a_job(active=1))
    assert running.job_active and running.backup_exists and not running.backup_finished
    gone = holder_state(None, None)
    assert not gone.backup_exists and not gone.job_active


def test_lock_view() -> None:
    holder = Holder("u-1", "FilesBackup", "shop", "a", "filesbackup-a-1")
    lease = LeaseView("shop", "backup-lock-files", "1", holder, None, 300, 1)
    assert lock_view("u-1", lease, 0, False).mine
    theirs = lock_view("u-2", lease, 2, False)
    assert (theirs.mine, theirs.free, theirs.holder, theirs.position) == (False, False, "shop/a", 2)
    assert lock_view("u-2", None, 0, False).free
