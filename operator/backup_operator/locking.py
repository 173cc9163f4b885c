"""The one-backup-at-a-time rules: a Lease per backup type and scope, and a fair queue.

The lock is a ``coordination.k8s.io/v1`` Lease held by a *backup* (its uid), not by an
operator pod: a Job keeps running when the pod that started it dies. Everything here is
pure; ``k8s`` performs the compare-and-swap (an update carrying the resourceVersion read),
so two operator replicas can race and exactly one wins.

Takeover rule: the lock may be taken from its holder only when the holder's Job has
finished, or the holder has no active Job and is gone, finished, or let the Lease expire.
An active Job of the holder always keeps the lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from backup_operator.jobs import LABEL_PREFIX, MANAGED_BY

Manifest = dict[str, Any]
Scope = Literal["Namespace", "Cluster"]

LEASE_DURATION_SECONDS = 300
ANNOTATION_HOLDER = f"{LABEL_PREFIX}/holder"
ANNOTATION_HOLDER_JOB = f"{LABEL_PREFIX}/holder-job"


@dataclass(frozen=True)
class Holder:
    """The backup that holds (or asks for) a lock."""

    uid: str
    kind: str
    namespace: str
    name: str
    job_name: str

    @property
    def ref(self) -> str:
        """``namespace/name``, as shown to users in ``status.queue.blockedBy``."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class LeaseView:
    """What the operator read of a lock Lease."""

    namespace: str
    name: str
    resource_version: str
    holder: Holder | None
    renew_time: datetime | None
    duration_seconds: int
    transitions: int


@dataclass(frozen=True)
class HolderState:
    """What the operator observed about the current holder of a lock."""

    backup_exists: bool
    backup_finished: bool
    job_active: bool
    job_finished: bool


@dataclass(frozen=True, order=True)
class Waiter:
    """A backup waiting for its lock; ordering is queue order (oldest first, then name)."""

    created: datetime
    namespace: str
    name: str
    uid: str


def lease_name(lock_type: str) -> str:
    """``backup-lock-database`` / ``backup-lock-files``."""
    return f"backup-lock-{lock_type}"


def lease_namespace(scope: Scope, backup_namespace: str, operator_namespace: str) -> str:
    """Namespace scope: the lock lives beside the backup. Cluster scope: beside the operator."""
    return backup_namespace if scope == "Namespace" else operator_namespace


def is_expired(lease: LeaseView, now: datetime) -> bool:
    """True when the holder has not renewed within the lease duration."""
    if lease.renew_time is None:
        return True
    return now > lease.renew_time + timedelta(seconds=lease.duration_seconds)


def may_take_over(lease: LeaseView, holder: HolderState, now: datetime) -> bool:
    """The takeover rule of this module's docstring."""
    if lease.holder is None or holder.job_finished:
        return True
    if holder.job_active:
        return False
    if not holder.backup_exists or holder.backup_finished:
        return True
    return is_expired(lease, now)


def needs_renewal(lease: LeaseView, now: datetime) -> bool:
    """Renew once a third of the duration has passed, so a live holder never looks expired."""
    if lease.renew_time is None:
        return True
    return now > lease.renew_time + timedelta(seconds=lease.duration_seconds / 3)


def queue_position(uid: str, waiters: Iterable[Waiter]) -> int:
    """How many waiters stand before ``uid`` (0 when it is next or not waiting)."""
    ordered = sorted(waiters)
    for index, waiter in enumerate(ordered):
        if waiter.uid == uid:
            return index
    return len(ordered)


def parse_lease(obj: Manifest) -> LeaseView:
    """A Lease from the API server as a ``LeaseView``."""
    meta = obj.get("metadata", {})
    spec = obj.get("spec") or {}
    annotations = meta.get("annotations") or {}
    identity = spec.get("holderIdentity") or ""
    holder = None
    if identity:
        kind, _, rest = annotations.get(ANNOTATION_HOLDER, "//").partition("/")
        namespace, _, name = rest.partition("/")
        holder = Holder(
            uid=identity,
            kind=kind,
            namespace=namespace,
            name=name,
            job_name=annotations.get(ANNOTATION_HOLDER_JOB, ""),
        )
    renew = spec.get("renewTime")
    return LeaseView(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        resource_version=meta.get("resourceVersion", ""),
        holder=holder,
        renew_time=_parse_time(renew) if renew else None,
        duration_seconds=int(spec.get("leaseDurationSeconds") or LEASE_DURATION_SECONDS),
        transitions=int(spec.get("leaseTransitions") or 0),
    )


def lease_manifest(
    namespace: str,
    name: str,
    holder: Holder | None,
    now: datetime,
    previous: LeaseView | None = None,
) -> Manifest:
    """The Lease to write: a create when ``previous`` is None, else a CAS update of it.

    ``holder=None`` releases the lock. Keeping the holder renews it.
    """
    same_holder = previous is not None and _uid(previous.holder) == _uid(holder)
    transitions = (previous.transitions if previous else 0) + (0 if same_holder else 1)
    metadata: Manifest = {
        "name": name,
        "namespace": namespace,
        "labels": dict(MANAGED_BY),
        "annotations": {
            ANNOTATION_HOLDER: f"{holder.kind}/{holder.ref}" if holder else "",
            ANNOTATION_HOLDER_JOB: holder.job_name if holder else "",
        },
    }
    if previous is not None:
        metadata["resourceVersion"] = previous.resource_version
    spec: Manifest = {
        "holderIdentity": holder.uid if holder else "",
        "leaseDurationSeconds": LEASE_DURATION_SECONDS,
        "renewTime": _micro_time(now),
        "leaseTransitions": transitions,
    }
    if holder is not None:
        spec["acquireTime"] = _micro_time(now)
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


def _uid(holder: Holder | None) -> str:
    return holder.uid if holder else ""


def _micro_time(when: datetime) -> str:
    """Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
