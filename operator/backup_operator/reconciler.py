"""One level-based reconcile pass of one backup: read what exists, ``decide()``, act.

Every trigger (created, resumed after a restart, timer tick, its Job changed, the lock
handed over) runs the same pass, which re-derives the state from the API server. A missed
event, an operator crash between two steps, or two replicas working at once therefore
never leaves a backup stuck or a Job doubled:

- the lock is taken by compare-and-swap, so of two replicas only one gets it;
- the Job name is deterministic, so a second create is a 409;
- status writes carry the resourceVersion read, so a stale pass cannot overwrite a newer
  one: it gets a ``Conflict`` and reads again.

Order of effects: take the lock, create the Job, write status, hand the lock on, post
Events, write audit. A crash after any of them is repaired by the next pass.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from backup_operator import conditions as cond
from backup_operator.api.kinds import BY_KIND, KindInfo
from backup_operator.api.v1alpha1 import ANNOTATION_REQUESTED_BY, Backup, BackupStatus
from backup_operator.audit import AuditSink, audit_document
from backup_operator.decisions import (
    Decision,
    JobView,
    LockView,
    decide,
    fail_now,
    is_finished,
)
from backup_operator.jobs import (
    LABEL_TYPE,
    LABEL_UID,
    build_cleanup_job,
    build_job,
    cleanup_job_name,
    job_name,
    job_name_for,
)
from backup_operator.k8s import Conflict, Kube, Rejected
from backup_operator.locking import (
    Holder,
    LeaseView,
    Waiter,
    lease_manifest,
    lease_name,
    lease_namespace,
    may_take_over,
    needs_renewal,
    parse_lease,
    queue_position,
)
from backup_operator.observations import holder_state, job_view, lock_view
from backup_operator.settings import Settings

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]
MAX_PASSES = 3

# The queue of one lock: the waiting backups an in-memory index (fed by the watch) holds.
QueueSource = Callable[[KindInfo, str], Iterable[Waiter]]


def queue_key(lock_type: str, lease_ns: str) -> str:
    """Index key of one lock's queue."""
    return f"{lock_type}/{lease_ns}"


def waiter_of(body: Manifest) -> Waiter | None:
    """The queue entry of a backup that still waits for its Job, else None."""
    status = body.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed") or status.get("jobName"):
        return None
    meta = body["metadata"]
    if meta.get("deletionTimestamp"):
        return None
    created = datetime.fromisoformat(meta["creationTimestamp"].replace("Z", "+00:00"))
    return Waiter(created=created, namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])


@dataclass
class Reconciler:
    """The operator's runtime: clients, settings and per-backup serialisation."""

    kube: Kube
    audit: AuditSink
    settings: Settings
    queue: QueueSource
    _guards: weakref.WeakValueDictionary[str, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary
    )
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def lease_namespace(self, namespace: str) -> str:
        """Where the lock of a backup in ``namespace`` lives."""
        return lease_namespace(self.settings.lock_scope, namespace, self.settings.namespace)

    async def reconcile(
        self, info: KindInfo, namespace: str, name: str, uid: str | None = None
    ) -> None:
        """Bring one backup a step closer to done; safe to call any time, any number of times.

        ``uid``, when the caller knows it, lets the pass read the backup, its Job and its
        lock at once (one round trip instead of three).
        """
        key = f"{info.kind}/{namespace}/{name}"
        guard = self._guards.setdefault(key, asyncio.Lock())
        async with guard:
            for _ in range(MAX_PASSES):
                try:
                    await self._pass(info, namespace, name, uid)
                    return
                except Conflict:
                    logger.debug("Conflict on %s, reading again", key)
            logger.info("Gave up on %s after %d conflicts; the timer retries", key, MAX_PASSES)

    def spawn(self, info: KindInfo, namespace: str, name: str) -> None:
        """Reconcile another backup soon, without waiting for it (the next in line)."""
        task = asyncio.get_running_loop().create_task(self.reconcile(info, namespace, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ one pass

    async def _pass(self, info: KindInfo, namespace: str, name: str, uid: str | None) -> None:
        guessed_job = job_name_for(info, name, uid) if uid else None
        raw, lease_raw, job_raw = await asyncio.gather(
            self.kube.get_backup(info, namespace, name),
            self.kube.get_lease(self.lease_namespace(namespace), lease_name(info.lock_type)),
            self.kube.get_job(namespace, guessed_job) if guessed_job else _nothing(),
        )
        if raw is None:
            return
        try:
            backup: Backup = info.model.model_validate(raw)
        except ValidationError as error:
            await self._refuse_unreadable(info, raw, error)
            return
        now = datetime.now(UTC)
        lease = parse_lease(lease_raw) if lease_raw else None
        job = None if is_finished(backup) else await self._observe_job(backup, job_raw, guessed_job)
        lock = await self._observe_lock(info, backup, lease, now)
        requested_by = raw["metadata"].get("annotations", {}).get(ANNOTATION_REQUESTED_BY)
        decision = decide(backup, job, lock, now, requested_by)
        if decision.start_job:
            decision = await self._start(info, backup, lease, lock, now, decision, requested_by)
        elif lock.mine and job is not None and job.outcome is None:
            await self._renew(lease, now)
        raw = await self._write_status(info, backup, raw, decision)
        if decision.release_lock and lock.mine and lease is not None:
            await self._release(info, backup.metadata.uid, lease, now)
        await self._post_events(info, raw, decision)
        await self._flush_audit(info, raw)

    async def _observe_job(
        self, backup: Backup, job: Manifest | None, guessed_name: str | None
    ) -> JobView | None:
        """The backup's Job with its pods' results; reuses ``job`` when its name was right."""
        name = job_name(backup)
        if name != guessed_name:
            job = await self.kube.get_job(backup.metadata.namespace, name)
        if job is None:
            return None
        pods: list[Manifest] = []
        if any(
            c.get("status") == "True" for c in (job.get("status") or {}).get("conditions") or []
        ):
            pods = await self.kube.list_pods(backup.metadata.namespace, f"job-name={name}")
        return job_view(job, pods)

    async def _observe_lock(
        self, info: KindInfo, backup: Backup, lease: LeaseView | None, now: datetime
    ) -> LockView:
        uid = backup.metadata.uid
        holder = lease.holder if lease else None
        waiters = [
            w
            for w in self.queue(info, self.lease_namespace(backup.metadata.namespace))
            if holder is None or w.uid != holder.uid
        ]
        position = queue_position(uid, waiters)
        may_take = False
        if lease and holder and holder.uid != uid and position == 0 and not is_finished(backup):
            may_take = may_take_over(lease, await self._holder_state(holder), now)
        return lock_view(uid, lease, position, may_take)

    async def _holder_state(self, holder: Holder) -> Any:
        info = BY_KIND.get(holder.kind)
        backup = await self.kube.get_backup(info, holder.namespace, holder.name) if info else None
        if backup is not None and backup["metadata"]["uid"] != holder.uid:
            backup = None  # same name, new object: the holder is gone
        job = (
            await self.kube.get_job(holder.namespace, holder.job_name) if holder.job_name else None
        )
        return holder_state(backup, job)

    # ------------------------------------------------------------------ lock and Job

    async def _start(
        self,
        info: KindInfo,
        backup: Backup,
        lease: LeaseView | None,
        lock: LockView,
        now: datetime,
        decision: Decision,
        requested_by: str | None,
    ) -> Decision:
        """Take the lock, check no other Job of the type runs, create ours."""
        me = _holder(info, backup.metadata.namespace, backup.metadata.name, backup.metadata.uid)
        lease_ns = self.lease_namespace(backup.metadata.namespace)
        if not lock.mine:
            manifest = lease_manifest(lease_ns, lease_name(info.lock_type), me, now, lease)
            try:
                if lease is None:
                    await self.kube.create_lease(manifest)
                else:
                    await self.kube.replace_lease(manifest)
            except Conflict:
                lost = LockView(free=False, holder="another backup", position=lock.position)
                return decide(backup, None, lost, now, requested_by)
        other = await self._other_active_job(info, backup)
        if other:
            busy = LockView(free=False, holder=other, position=lock.position)
            return decide(backup, None, busy, now, requested_by)
        try:
            await self.kube.create_job(build_job(backup, self.settings.job))
        except Rejected as error:
            message = f"the API server refused the backup Job: {error}"
            return fail_now(backup, "JobRejected", message, now, requested_by)
        return decision

    async def _other_active_job(self, info: KindInfo, backup: Backup) -> str:
        """The backup (namespace/name) of another unfinished Job of this type, if any."""
        scope_ns = None if self.settings.lock_scope == "Cluster" else backup.metadata.namespace
        for job in await self.kube.list_jobs(scope_ns, f"{LABEL_TYPE}={info.lock_type}"):
            labels = job["metadata"].get("labels") or {}
            done = any(
                c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                for c in (job.get("status") or {}).get("conditions") or []
            )
            if labels.get(LABEL_UID) != backup.metadata.uid and not done:
                return f"{job['metadata']['namespace']}/{job['metadata']['name']}"
        return ""

    async def _renew(self, lease: LeaseView | None, now: datetime) -> None:
        if lease is None or lease.holder is None or not needs_renewal(lease, now):
            return
        manifest = lease_manifest(lease.namespace, lease.name, lease.holder, now, lease)
        try:
            await self.kube.replace_lease(manifest)
        except Conflict:
            logger.debug("Lease %s/%s changed while renewing", lease.namespace, lease.name)

    async def delete_artifact(self, info: KindInfo, body: Manifest) -> str | None:
        """``deletionPolicy: Delete``: remove the artifact with a cleanup Job.

        Returns None once the artifact is gone (or there never was one), ``"waiting"``
        while the cleanup Job runs, or the reason it failed.
        """
        backup: Backup = info.model.model_validate(body)
        artifact = backup.status.artifact
        if backup.spec.deletion_policy != "Delete" or artifact is None:
            return None
        namespace = backup.metadata.namespace
        job = await self.kube.get_job(namespace, cleanup_job_name(backup))
        if job is None:
            await self.kube.create_job(build_cleanup_job(backup, artifact.path, self.settings.job))
            return "waiting"
        view = job_view(job, [])
        if view.outcome is None:
            return "waiting"
        if view.outcome == "Failed":
            return f"the cleanup Job {view.name} failed: {view.message or view.reason}"
        return None

    async def forget(self, info: KindInfo, namespace: str, name: str, uid: str) -> None:
        """A backup is being deleted: if it holds its lock, hand the lock on now."""
        lease_raw = await self.kube.get_lease(
            self.lease_namespace(namespace), lease_name(info.lock_type)
        )
        lease = parse_lease(lease_raw) if lease_raw else None
        if lease is not None and lease.holder is not None and lease.holder.uid == uid:
            await self._release(info, uid, lease, datetime.now(UTC))

    async def _release(self, info: KindInfo, uid: str, lease: LeaseView, now: datetime) -> None:
        """Hand the lock to the next in line (or free it), then wake that backup."""
        waiters = sorted(w for w in self.queue(info, lease.namespace) if w.uid != uid)
        nxt = waiters[0] if waiters else None
        holder = _holder(info, nxt.namespace, nxt.name, nxt.uid) if nxt else None
        try:
            await self.kube.replace_lease(
                lease_manifest(lease.namespace, lease.name, holder, now, lease)
            )
        except Conflict:
            logger.debug("Lease %s/%s changed while releasing", lease.namespace, lease.name)
            return
        if nxt is not None:
            self.spawn(info, nxt.namespace, nxt.name)

    # ------------------------------------------------------------------ status, Events, audit

    async def _write_status(
        self, info: KindInfo, backup: Backup, raw: Manifest, decision: Decision
    ) -> Manifest:
        if decision.status == backup.status:
            return raw
        meta = backup.metadata
        return await self.kube.patch_backup_status(
            info, meta.namespace, meta.name, _status_body(decision.status), meta.resource_version
        )

    async def _post_events(self, info: KindInfo, raw: Manifest, decision: Decision) -> None:
        for event in decision.events:
            try:
                await self.kube.post_event(info, raw, event)
            except Exception as error:  # an Event is best effort: never fail a backup on it
                logger.warning("Could not post Event %s: %s", event.reason, type(error).__name__)

    async def _flush_audit(self, info: KindInfo, raw: Manifest) -> None:
        """Write pending audit records; remove them from status once stored."""
        backup: Backup = info.model.model_validate(raw)
        pending = backup.status.audit_pending
        if not pending:
            return
        if not await self.audit.write([audit_document(backup, r) for r in pending]):
            return
        meta = backup.metadata
        try:
            await self.kube.patch_backup_status(
                info, meta.namespace, meta.name, {"auditPending": []}, meta.resource_version
            )
        except Conflict:
            logger.debug("Status changed while flushing audit; the next pass retries")

    async def _refuse_unreadable(
        self, info: KindInfo, raw: Manifest, error: ValidationError
    ) -> None:
        """An object the models cannot read (e.g. written under an older schema): Failed."""
        if (raw.get("status") or {}).get("phase") == "Failed":
            return
        now = datetime.now(UTC)
        first = error.errors()[0]
        field_path = ".".join(str(p) for p in first["loc"])
        message = f"Backup failed: cannot read {field_path}: {first['msg']}"
        generation = int(raw["metadata"].get("generation", 1))
        conditions = cond.set_condition(
            [], cond.SUCCEEDED, "False", "InvalidSpec", message, now, generation
        )
        status = BackupStatus(phase="Failed", message=message, conditions=conditions)
        meta = raw["metadata"]
        await self.kube.patch_backup_status(
            info, meta["namespace"], meta["name"], _status_body(status), meta["resourceVersion"]
        )


async def _nothing() -> None:
    return None


def _holder(info: KindInfo, namespace: str, name: str, uid: str) -> Holder:
    return Holder(
        uid=uid,
        kind=info.kind,
        namespace=namespace,
        name=name,
        job_name=job_name_for(info, name, uid),
    )


def _status_body(status: BackupStatus) -> Manifest:
    """The whole status as a merge patch: fields that are None are removed."""
    body: Manifest = status.model_dump(by_alias=True, mode="json")
    return body
