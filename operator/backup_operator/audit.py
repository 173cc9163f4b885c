"""The only module that talks to MongoDB: the audit trail of every backup transition.

Each transition of a backup becomes one document in ``audit_logs`` (the collection of the
service this operator replaces, with the same action names). Writes are idempotent: the
``_id`` is deterministic (backup uid, action, attempt) and written with an upsert that
never overwrites, so a retry after a crash or by a second replica is a no-op. When MongoDB
is unreachable the sink says so at once (short timeouts, then a pause before the next
try); the records stay in the backup's ``status.auditPending`` until a later write works.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, UpdateOne
from pymongo.errors import PyMongoError

from backup_operator.api.v1alpha1 import (
    ANNOTATION_REQUESTED_BY_GROUPS,
    API_VERSION,
    Backup,
    PendingAudit,
)

logger = logging.getLogger(__name__)

Document = dict[str, Any]
#: Set with ``backup.operator.dev/requested-by`` by the admission webhook: a JSON list.

INDEXES: tuple[tuple[str, list[tuple[str, int]]], ...] = (
    ("by_resource", [("resource.uid", ASCENDING), ("timestamp", ASCENDING)]),
    ("by_name", [("resource.namespace", ASCENDING), ("resource.name", ASCENDING)]),
    ("by_user", [("user.username", ASCENDING), ("timestamp", DESCENDING)]),
    ("by_time", [("timestamp", DESCENDING)]),
    ("by_action", [("action", ASCENDING), ("timestamp", DESCENDING)]),
)


def audit_document(backup: Backup, record: PendingAudit) -> Document:
    """The audit document of one transition: who, what, when, how it ended."""
    meta = backup.metadata
    return {
        "_id": record.id,
        "action": record.action,
        "timestamp": record.time,
        "user": {
            "username": backup.status.requested_by or "unknown",
            "groups": requested_groups(meta.annotations),
        },
        "resource": {
            "apiVersion": API_VERSION,
            "kind": backup.kind,
            "namespace": meta.namespace,
            "name": meta.name,
            "uid": meta.uid,
        },
        "details": dict(record.details),
    }


def requested_groups(annotations: dict[str, str]) -> list[str]:
    """The groups of who asked, from the webhook's annotation (empty when absent or bad)."""
    try:
        groups = json.loads(annotations.get(ANNOTATION_REQUESTED_BY_GROUPS, "[]"))
    except ValueError:
        return []
    if not isinstance(groups, list):
        return []
    return [g for g in groups if isinstance(g, str)]


class AuditSink(Protocol):
    """Where audit documents go; ``write`` is True once every document is stored."""

    async def write(self, documents: Sequence[Document]) -> bool: ...

    async def close(self) -> None: ...


class LogAuditSink:
    """Audit to the operator's JSON log when no MongoDB is configured."""

    async def write(self, documents: Sequence[Document]) -> bool:
        for document in documents:
            logger.info("Audit %s", json.dumps(document, default=str, sort_keys=True))
        return True

    async def close(self) -> None:
        return None


class MongoAuditSink:
    """Audit documents in a MongoDB collection, idempotent, never blocking for long."""

    def __init__(
        self, uri: str, database: str, collection: str, pause_seconds: float = 5.0
    ) -> None:
        self._client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=1500,
            connectTimeoutMS=1500,
            socketTimeoutMS=5000,
            appname="backup-operator",
        )
        self._collection = self._client[database][collection]
        self._pause_seconds = pause_seconds
        self._down_until = 0.0
        self._indexed = False

    @classmethod
    def from_file(cls, uri_file: str, database: str, collection: str) -> MongoAuditSink:
        """The URI comes from a mounted Secret file, never from argv or an env value."""
        return cls(Path(uri_file).read_text().strip(), database, collection)

    async def write(self, documents: Sequence[Document]) -> bool:
        """Upsert the documents in order; False (and a pause) when MongoDB is unreachable."""
        if not documents:
            return True
        if time.monotonic() < self._down_until:
            return False
        requests = [
            UpdateOne({"_id": d["_id"]}, {"$setOnInsert": _without_id(d)}, upsert=True)
            for d in documents
        ]
        try:
            await self._ensure_indexes()
            await self._collection.bulk_write(requests, ordered=True)
        except PyMongoError as error:
            self._down_until = time.monotonic() + self._pause_seconds
            logger.warning("Audit store unreachable, will retry: %s", type(error).__name__)
            return False
        return True

    async def _ensure_indexes(self) -> None:
        if self._indexed:
            return
        for name, keys in INDEXES:
            await self._collection.create_index(keys, name=name)
        self._indexed = True

    async def close(self) -> None:
        await self._client.close()


def _without_id(document: Document) -> Document:
    return {k: v for k, v in document.items() if k != "_id"}
