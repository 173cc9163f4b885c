"""kopf registration: thin handlers that route every trigger to ``Reconciler.reconcile``.

Triggers, all level-based (each re-reads the world, so any of them may be missed):

- a backup is created, or seen again after an operator restart (create + resume);
- a timer ticks on every unfinished backup (and on finished ones with audit still pending);
- one of our Jobs changes (an event handler on Jobs labelled as ours);
- a backup is deleted (it hands its lock on, if it held one).

kopf's own bookkeeping lives in annotations under our prefix, with our own finalizer, and
handlers return nothing: our status schema is strict and kopf's would be pruned from it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import kopf

from backup_operator import admission, k8s
from backup_operator.api.kinds import BY_KIND, KINDS, KindInfo
from backup_operator.api.v1alpha1 import GROUP, VERSION
from backup_operator.audit import AuditSink, LogAuditSink, MongoAuditSink
from backup_operator.jobs import LABEL_KIND, LABEL_NAME, LABEL_UID, MANAGED_BY
from backup_operator.locking import Waiter
from backup_operator.reconciler import Reconciler, queue_key, waiter_of
from backup_operator.settings import Settings

logger = logging.getLogger(__name__)

PREFIX = GROUP
FINALIZER = f"{GROUP}/finalizer"
RETRIES = 10
STARTUP_ID = "backup-operator-startup"  # kopf logs "Activity '<id>' succeeded." at INFO


class IndexQueues:
    """The waiting backups of each lock, read from kopf's in-memory indexes (one per kind)."""

    def __init__(self) -> None:
        self.indexes: dict[str, Any] = {}

    def bind(self, kwargs: dict[str, Any]) -> None:
        """kopf hands indexes to handlers as keyword arguments; keep them for the reconciler."""
        for info in KINDS:
            index = kwargs.get(_index_id(info))
            if index is not None:
                self.indexes[info.lock_type] = index

    def __call__(self, info: KindInfo, lease_ns: str) -> Iterable[Waiter]:
        index = self.indexes.get(info.lock_type)
        key = queue_key(info.lock_type, lease_ns)
        if index is None or key not in index:
            return ()
        return list(index[key])


def _index_id(info: KindInfo) -> str:
    return f"queue_{info.lock_type}"


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf settings: our prefix and finalizer, watch timeouts, bounded retries."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = FINALIZER
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    # Our own Events tell each transition once; kopf's would repeat on every retried error.
    settings.posting.enabled = False
    # Handlers are level-based: no need to wait for more events of an object to coalesce.
    settings.batching.batch_window = 0.01
    settings.scanning.disabled = True


class _Runtime:
    """What the handlers share: the reconciler (made at start-up) and the queues."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.queues = IndexQueues()
        self.reconciler: Reconciler | None = None

    def __call__(self, kwargs: dict[str, Any]) -> Reconciler:
        """The reconciler, with the indexes kopf passed to this handler call bound."""
        self.queues.bind(kwargs)
        if self.reconciler is None:
            raise kopf.TemporaryError("operator still starting", delay=1)
        return self.reconciler


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    """Register every handler on ``registry``."""
    runtime = _Runtime(settings)

    @kopf.on.startup(registry=registry, id=STARTUP_ID)
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings)
        kube = k8s.Kube(await k8s.connect())
        audit = _audit_sink(runtime.settings)
        runtime.reconciler = Reconciler(kube, audit, runtime.settings, runtime.queues)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # kopf's own credential readers: in-cluster token first, else the kubeconfig.
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
        return info or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        if runtime.reconciler is not None:
            await runtime.reconciler.audit.close()

    for info in KINDS:
        _register_kind(registry, info, settings, runtime)
    _register_jobs(registry, runtime)
    admission.register(registry, settings)


def _register_kind(
    registry: kopf.OperatorRegistry,
    info: KindInfo,
    settings: Settings,
    reconciler: _Runtime,
) -> None:
    resource = (GROUP, VERSION, info.plural)

    def lock_key(body: kopf.Body) -> str:
        namespace = body["metadata"]["namespace"]
        scope_ns = namespace if settings.lock_scope == "Namespace" else settings.namespace
        return queue_key(info.lock_type, scope_ns)

    def is_waiting(body: kopf.Body, **_: Any) -> bool:
        return waiter_of(dict(body)) is not None

    def queue_entry(body: kopf.Body, **_: Any) -> dict[str, Waiter]:
        waiter = waiter_of(dict(body))
        assert waiter is not None  # guaranteed by the when= filter
        return {lock_key(body): waiter}

    # kopf keeps an index entry when the function returns None; only a filter that stops
    # matching removes it. So "still waiting" is the filter, not a None result.
    kopf.index(*resource, id=_index_id(info), registry=registry, when=is_waiting)(queue_entry)

    async def on_backup(
        name: str, namespace: str | None, uid: str, body: kopf.Body, **kwargs: Any
    ) -> None:
        if not needs_work(body):
            return  # finished and audited: nothing to do, not even a read
        await reconciler(kwargs).reconcile(info, str(namespace), name, uid)

    async def on_delete(name: str, namespace: str | None, uid: str, **kwargs: Any) -> None:
        await reconciler(kwargs).forget(info, str(namespace), name, uid)

    def needs_work(body: kopf.Body, **_: Any) -> bool:
        status = body.get("status") or {}
        return status.get("phase") not in ("Succeeded", "Failed") or bool(
            status.get("auditPending")
        )

    kopf.on.resume(*resource, id="resume", registry=registry, retries=RETRIES, backoff=5)(on_backup)
    kopf.on.create(*resource, id="create", registry=registry, retries=RETRIES, backoff=5)(on_backup)
    kopf.timer(
        *resource,
        id="tick",
        registry=registry,
        interval=settings.reconcile_seconds,
        when=needs_work,
        backoff=settings.reconcile_seconds,
    )(on_backup)
    kopf.on.delete(*resource, id="delete", registry=registry, optional=True, retries=3)(on_delete)

    async def on_delete_artifact(body: kopf.Body, **kwargs: Any) -> None:
        outcome = await reconciler(kwargs).delete_artifact(info, dict(body))
        if outcome == "waiting":
            raise kopf.TemporaryError("waiting for the artifact cleanup Job", delay=2)
        if outcome is not None:
            raise kopf.PermanentError(outcome)

    def deletes_artifact(spec: kopf.Spec, **_: Any) -> bool:
        return spec.get("deletionPolicy") == "Delete"

    # Not optional: kopf keeps its finalizer on these backups until the artifact is gone.
    kopf.on.delete(
        *resource,
        id="delete-artifact",
        registry=registry,
        when=deletes_artifact,
        retries=300,
        timeout=900,
    )(on_delete_artifact)


def _register_jobs(registry: kopf.OperatorRegistry, reconciler: _Runtime) -> None:
    async def on_job(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
        labels = body["metadata"].get("labels") or {}
        info = BY_KIND.get(labels.get(LABEL_KIND, ""))
        owner = _owner_name(body)
        if info is None or owner is None or type == "DELETED":
            return
        uid = labels.get(LABEL_UID)
        await reconciler(kwargs).reconcile(info, body["metadata"]["namespace"], owner, uid)

    kopf.on.event("batch", "v1", "jobs", id="job", registry=registry, labels=dict(MANAGED_BY))(
        on_job
    )


def _owner_name(job: kopf.Body) -> str | None:
    """The backup that owns a Job (its controller ownerReference, else its label)."""
    for ref in job["metadata"].get("ownerReferences") or []:
        if ref.get("controller") and ref.get("apiVersion", "").startswith(f"{GROUP}/"):
            return str(ref["name"])
    label = (job["metadata"].get("labels") or {}).get(LABEL_NAME)
    return str(label) if label else None


def _audit_sink(settings: Settings) -> AuditSink:
    if settings.audit_uri_file:
        return MongoAuditSink.from_file(
            settings.audit_uri_file, settings.audit_database, settings.audit_collection
        )
    logger.info("No audit MongoDB configured (BACKUP_AUDIT_URI_FILE): auditing to the log")
    return LogAuditSink()
