"""``decide()``: the whole state machine of a backup, as a pure function.

Given the backup (spec and last status), what the operator observed (its Job, its lock)
and the time, it returns the status to write and the side effects to perform. It never
talks to anything, so every transition is table-tested in ``tests/unit/test_decisions.py``.

Phases and their conditions (the conditions are the source of truth; ``phase`` mirrors
them for ``kubectl get``)::

    (new) -> Queued  -> Running -> Succeeded
          \\-> Running          \\-> Failed
          \\-> Failed (InvalidSpec, ConcurrencyForbidden)

Every transition appends its audit record to ``status.auditPending`` in the same status
write, so the record survives a MongoDB outage and an operator crash alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from posixpath import normpath
from typing import Literal

from backup_operator import conditions as cond
from backup_operator.api.kinds import BY_KIND
from backup_operator.api.v1alpha1 import (
    Artifact,
    AuditAction,
    Backup,
    BackupStatus,
    FilesBackup,
    PendingAudit,
    PvcRef,
    QueueStatus,
)
from backup_operator.jobs import job_name
from backup_operator.units import human_duration, human_size

TERMINAL = ("Succeeded", "Failed")
UNKNOWN_USER = "unknown"


@dataclass(frozen=True)
class JobView:
    """What the operator observed of a backup's Job (and the runner's termination message)."""

    name: str
    active: int = 0
    outcome: Literal["Complete", "Failed"] | None = None
    reason: str = ""  # reason of the Job's Failed condition, e.g. DeadlineExceeded
    message: str = ""
    attempts: int = 0  # pods that ran to an end
    artifact: Artifact | None = None  # from a successful runner result
    error_reason: str = ""  # from a failed runner result
    error_message: str = ""


@dataclass(frozen=True)
class LockView:
    """The backup's standing with respect to its type's lock and queue."""

    mine: bool = False  # this backup holds the lock
    free: bool = True  # nobody holds it, or its holder may be taken over
    holder: str = ""  # namespace/name of the holder, when not mine
    position: int = 0  # waiters ahead of this backup


@dataclass(frozen=True)
class EventSpec:
    """A Kubernetes Event to post on the backup."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    """The status to write and the side effects to perform, in this order."""

    status: BackupStatus
    start_job: bool = False  # take the lock (if not mine), then create the Job
    release_lock: bool = False
    events: tuple[EventSpec, ...] = field(default=())


def is_finished(backup: Backup) -> bool:
    """True once the backup reached Succeeded or Failed."""
    return backup.status.phase in TERMINAL


def decide(
    backup: Backup,
    job: JobView | None,
    lock: LockView,
    now: datetime,
    requested_by: str | None = None,
) -> Decision:
    """The next step of ``backup``; see the module docstring."""
    if is_finished(backup):
        return Decision(status=backup.status, release_lock=lock.mine)
    step = _Step(backup, now)
    if backup.status.phase is None:
        step.first_visit(requested_by or UNKNOWN_USER)
    problem = spec_problem(backup)
    if problem is not None:
        return step.fail("InvalidSpec", problem, release_lock=lock.mine)
    if job is not None:
        return _follow_job(step, job, lock)
    if backup.status.job_name:
        message = f"Job {backup.status.job_name} disappeared before its result was recorded"
        return step.fail("JobLost", message, release_lock=lock.mine)
    return _wait_or_start(step, lock)


def fail_now(
    backup: Backup, reason: str, message: str, now: datetime, requested_by: str | None = None
) -> Decision:
    """Fail a backup for a cause only the reconciler sees, e.g. the API server refused its Job."""
    step = _Step(backup, now)
    if backup.status.phase is None:
        step.first_visit(requested_by or UNKNOWN_USER)
    return step.fail(reason, message, release_lock=True)


def _follow_job(step: _Step, job: JobView, lock: LockView) -> Decision:
    """The Job exists: mirror it, and finish when it has."""
    if job.outcome == "Complete":
        if job.artifact is None:
            reason, message = "InvalidResult", "the Job succeeded but left no readable result"
            return step.fail(reason, message, job=job, release_lock=True)
        return step.succeed(job, job.artifact)
    if job.outcome == "Failed":
        reason, message = _failure_cause(job)
        return step.fail(reason, message, job=job, release_lock=True)
    return step.run(job.name, job.attempts + 1)


def _failure_cause(job: JobView) -> tuple[str, str]:
    """The most specific reason: the deadline, else the runner's own, else the Job's."""
    if job.reason == "DeadlineExceeded":
        return "DeadlineExceeded", f"the backup did not finish within its deadline ({job.message})"
    if job.error_reason:
        return job.error_reason, job.error_message or job.message
    return job.reason or "JobFailed", job.message or f"Job {job.name} failed"


def _wait_or_start(step: _Step, lock: LockView) -> Decision:
    """No Job yet: start it if the lock is (or can be) ours and we are next, else wait."""
    if lock.mine or (lock.free and lock.position == 0):
        return step.run(job_name(step.backup), 1, start_job=True)
    if step.backup.spec.concurrency_policy == "Forbid":
        busy = f"backup {lock.holder} is running" if lock.holder else "other backups are queued"
        message = f"concurrencyPolicy is Forbid and {busy}"
        return step.fail("ConcurrencyForbidden", message)
    return step.queue(lock.position, lock.holder)


def spec_problem(backup: Backup) -> str | None:
    """What the API server's schema cannot judge but the operator must refuse."""
    pvcs = [("spec.storage.pvc.subPath", backup.spec.storage.pvc)]
    if isinstance(backup, FilesBackup):
        pvcs.append(("spec.source.pvc.subPath", backup.spec.source.pvc))
    for field_path, pvc in pvcs:
        if ".." in pvc.sub_path.split("/"):
            return f"{field_path} must not contain '..'"
    if isinstance(backup, FilesBackup) and _inside(backup.spec.storage.pvc, backup.spec.source.pvc):
        return "spec.storage.pvc is inside spec.source.pvc: the archive would contain itself"
    return None


def _inside(inner: PvcRef, outer: PvcRef) -> bool:
    if inner.claim_name != outer.claim_name:
        return False
    outer_path = normpath("/" + outer.sub_path)
    inner_path = normpath("/" + inner.sub_path)
    return outer_path == "/" or inner_path == outer_path or inner_path.startswith(outer_path + "/")


class _Step:
    """Builds the next status of one backup; each method is one named transition."""

    def __init__(self, backup: Backup, now: datetime) -> None:
        self.backup = backup
        self.now = now
        self.status = backup.status
        self.events: list[EventSpec] = []
        self.prefix = BY_KIND[backup.kind].audit_prefix

    def _update(self, **changes: object) -> None:
        self.status = self.status.model_copy(update=changes)

    def _condition(
        self, type_: str, status: Literal["True", "False", "Unknown"], reason: str, message: str
    ) -> None:
        generation = self.backup.metadata.generation
        new = cond.set_condition(
            self.status.conditions, type_, status, reason, message, self.now, generation
        )
        self._update(conditions=new)

    def _audit(self, action: AuditAction, details: dict[str, str]) -> None:
        record = PendingAudit(
            id=f"{self.backup.metadata.uid}:{action}:{max(self.status.attempts, 1)}",
            action=f"{self.prefix}_{action}",
            time=self.now,
            details=details,
        )
        self._update(audit_pending=[*self.status.audit_pending, record])

    def _done(self, **effects: bool) -> Decision:
        self._update(observed_generation=self.backup.metadata.generation)
        return Decision(status=self.status, events=tuple(self.events), **effects)

    def first_visit(self, requested_by: str) -> None:
        """Pending: seen for the first time; records who asked."""
        self._update(phase="Pending", requested_by=requested_by, message="Backup requested")
        self._condition(cond.SUCCEEDED, "Unknown", "Pending", "Backup requested")
        self._audit("requested", {"requestedBy": requested_by})

    def queue(self, position: int, holder: str) -> Decision:
        """Queued: another backup of the type holds the lock, or others are ahead."""
        blocked = f"waiting for {holder}" if holder else "waiting for the lock"
        message = f"Queued at position {position}, {blocked}"
        if self.status.phase != "Queued":
            self.events.append(EventSpec("Normal", "Queued", message))
        self._update(
            phase="Queued", queue=QueueStatus(position=position, blocked_by=holder), message=message
        )
        self._condition(cond.SUCCEEDED, "Unknown", "Queued", message)
        self._condition(cond.QUEUED, "True", "WaitingForLock", message)
        self._condition(cond.RUNNING, "False", "Queued", message)
        return self._done()

    def run(self, name: str, attempts: int, *, start_job: bool = False) -> Decision:
        """Running: the Job exists (or is about to be created, with ``start_job``)."""
        message = f"Backup running in Job {name}" + (
            f" (attempt {attempts})" if attempts > 1 else ""
        )
        if self.status.phase != "Running":
            self._update(job_name=name, start_time=self.now, queue=None, attempts=attempts)
            self._audit("started", {"jobName": name})
            self.events.append(EventSpec("Normal", "Started", f"Created Job {name}"))
        self._update(phase="Running", message=message, attempts=max(attempts, self.status.attempts))
        self._condition(cond.SUCCEEDED, "Unknown", "JobRunning", message)
        self._condition(cond.QUEUED, "False", "LockAcquired", "The backup holds its type's lock")
        self._condition(cond.RUNNING, "True", "JobRunning", message)
        return self._done(start_job=start_job)

    def succeed(self, job: JobView, artifact: Artifact) -> Decision:
        """Succeeded: the runner wrote and checksummed the artifact."""
        duration = self._duration()
        message = f"Backup completed: {human_size(artifact.size_bytes)} in {duration}"
        artifact = artifact.model_copy(update={"size": human_size(artifact.size_bytes)})
        self._finish("Succeeded", message, job)
        self._update(artifact=artifact)
        self._condition(cond.SUCCEEDED, "True", "JobSucceeded", message)
        self._condition(cond.RUNNING, "False", "JobSucceeded", message)
        self._audit(
            "created",
            {
                "jobName": job.name,
                "path": artifact.path,
                "sizeBytes": str(artifact.size_bytes),
                "sha256": artifact.sha256,
                "attempts": str(self.status.attempts),
            },
        )
        self.events.append(EventSpec("Normal", "Succeeded", message))
        return self._done(release_lock=True)

    def fail(
        self, reason: str, message: str, *, job: JobView | None = None, release_lock: bool = False
    ) -> Decision:
        """Failed: with a CamelCase reason and a message saying what to do about it."""
        self._finish("Failed", f"Backup failed: {message}", job)
        self._update(queue=None)
        self._condition(cond.SUCCEEDED, "False", reason, message)
        self._condition(cond.RUNNING, "False", reason, message)
        if cond.find(self.status.conditions, cond.QUEUED) is not None:
            self._condition(cond.QUEUED, "False", reason, message)
        details = {"reason": reason, "error": message}
        if job is not None:
            details["jobName"] = job.name
        self._audit("failed", details)
        self.events.append(EventSpec("Warning", reason, message))
        return self._done(release_lock=release_lock)

    def _finish(
        self, phase: Literal["Succeeded", "Failed"], message: str, job: JobView | None
    ) -> None:
        attempts = max(self.status.attempts, job.attempts if job else 0)
        self._update(phase=phase, completion_time=self.now, message=message, attempts=attempts)
        self._update(duration=self._duration())

    def _duration(self) -> str:
        start = self.status.start_time or self.now
        return human_duration((self.now - start).total_seconds())
