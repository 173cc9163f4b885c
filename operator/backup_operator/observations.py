"""Pure translation of what the API server returned into the views ``decide()`` takes.

A Job and its pods become a ``JobView`` (the runner's result is read from the container's
termination message); a Lease plus the queue becomes a ``LockView``. Keeping this apart
from ``k8s`` means the parsing of every Job and pod shape is unit-tested without a cluster.
"""

from __future__ import annotations

from typing import Any, cast

from backup_operator.api.v1alpha1 import Artifact, Compression
from backup_operator.decisions import JobView, LockView
from backup_operator.locking import Holder, HolderState, LeaseView
from backup_operator.runner.result import RunnerResult, parse_termination_message

Manifest = dict[str, Any]
RUNNER_CONTAINER = "runner"


def job_view(job: Manifest, pods: list[Manifest]) -> JobView:
    """The Job's outcome, with the runner's result from its last ended pod."""
    status = job.get("status") or {}
    outcome, reason, message = _terminal_condition(status)
    attempts = int(status.get("succeeded") or 0) + int(status.get("failed") or 0)
    view = JobView(
        name=job["metadata"]["name"],
        active=int(status.get("active") or 0),
        outcome=outcome,
        reason=reason,
        message=message,
        attempts=attempts,
    )
    if outcome is None:
        return view
    result = _last_result(pods, want_success=outcome == "Complete")
    if result is None:
        return view
    if result.ok:
        return _with_artifact(view, result)
    return JobView(
        **{
            **view.__dict__,
            "error_reason": result.reason or "",
            "error_message": result.error or "",
        }
    )


def _terminal_condition(status: Manifest) -> tuple[Any, str, str]:
    """(Complete|Failed|None, reason, message) from the Job's conditions."""
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return condition["type"], condition.get("reason", ""), condition.get("message", "")
    return None, "", ""


def _last_result(pods: list[Manifest], *, want_success: bool) -> RunnerResult | None:
    """The termination message of the newest pod that ended the way the Job did."""
    wanted = "Succeeded" if want_success else "Failed"
    ended = [p for p in pods if (p.get("status") or {}).get("phase") == wanted]
    ended.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""))
    for pod in reversed(ended):
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            if container.get("name") == RUNNER_CONTAINER and terminated.get("message"):
                return parse_termination_message(terminated["message"])
    return None


def _with_artifact(view: JobView, result: RunnerResult) -> JobView:
    if not (result.path and result.sha256 and result.size_bytes is not None):
        return view
    artifact = Artifact(
        path=result.path,
        size_bytes=result.size_bytes,
        sha256=result.sha256,
        compression=cast(Compression, result.compression or "none"),
    )
    return JobView(**{**view.__dict__, "artifact": artifact})


def holder_state(holder_backup: Manifest | None, holder_job: Manifest | None) -> HolderState:
    """What the lock rules need to know about the backup holding a lock."""
    job_status = (holder_job or {}).get("status") or {}
    finished_job = _terminal_condition(job_status)[0] is not None
    phase = ((holder_backup or {}).get("status") or {}).get("phase")
    return HolderState(
        backup_exists=holder_backup is not None,
        backup_finished=phase in ("Succeeded", "Failed"),
        job_active=holder_job is not None and not finished_job,
        job_finished=finished_job,
    )


def lock_view(uid: str, lease: LeaseView | None, position: int, may_take: bool) -> LockView:
    """The backup's standing: holder, free (or may be taken over), place in line."""
    holder: Holder | None = lease.holder if lease else None
    if holder is None:
        return LockView(mine=False, free=True, holder="", position=position)
    if holder.uid == uid:
        return LockView(mine=True, free=False, holder="", position=0)
    return LockView(mine=False, free=may_take, holder=holder.ref, position=position)
