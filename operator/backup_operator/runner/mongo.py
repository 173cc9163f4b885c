"""All MongoDB access of the runner, in one module.

The import contract keeps pymongo out of ``backup_operator.runner`` except here, so the
rest of the runner (archive format, dump and restore orchestration) stays testable without
a server. The runner is a short-lived process of its own, so the synchronous client is used.
Every driver error leaves this module as a :class:`RunnerError` with a redacted message.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    InvalidURI,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from backup_operator.runner.archive_format import CollectionMeta
from backup_operator.runner.errors import Reason, RunnerError
from backup_operator.runner.redact import one_line, redact, secrets_of

SYSTEM_DATABASES = frozenset({"admin", "local", "config"})
TIMEOUT_MS = 5000
DUPLICATE_KEY = 11000
_AUTH_CODES = frozenset({18, 13})  # AuthenticationFailed, Unauthorized


def classify(exc: BaseException, uri: str, fallback: Reason) -> RunnerError:
    """A readable, redacted :class:`RunnerError` for a driver exception."""
    text = one_line(redact(f"{exc}", secrets_of(uri)))
    if isinstance(exc, (InvalidURI, ConfigurationError)):
        return RunnerError("InvalidArguments", f"invalid MongoDB URI: {text}")
    if isinstance(exc, OperationFailure) and (
        exc.code in _AUTH_CODES or "auth" in str(exc).lower()
    ):
        return RunnerError("AuthenticationFailed", f"authentication failed: {text}")
    if isinstance(exc, (ServerSelectionTimeoutError, ConnectionFailure)):
        return RunnerError("SourceUnreachable", f"MongoDB unreachable: {_first_cause(text)}")
    return RunnerError(fallback, text)


def _first_cause(text: str) -> str:
    """The leading part of a server-selection error, before pymongo's topology dump."""
    head = text.split(", Timeout:")[0]
    return head if len(head) <= 300 else head[:297] + "..."


class Mongo:
    """A connection to one deployment, used by the dumper and the restorer."""

    def __init__(self, uri: str, fallback: Reason) -> None:
        self.uri = uri
        self.fallback: Reason = fallback
        try:
            self.client: MongoClient[dict[str, Any]] = MongoClient(
                uri,
                serverSelectionTimeoutMS=TIMEOUT_MS,
                connectTimeoutMS=TIMEOUT_MS,
                appname="backup-operator-runner",
            )
        except PyMongoError as exc:
            raise classify(exc, uri, fallback) from exc

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Translate driver errors raised inside the block."""
        try:
            yield
        except PyMongoError as exc:
            raise classify(exc, self.uri, self.fallback) from exc

    def close(self) -> None:
        self.client.close()

    def server_version(self) -> str:
        """Ping the server (checks reachability and credentials) and return its version."""
        with self.errors():
            self.client.admin.command("ping")
            info = self.client.admin.command("buildInfo")
        return str(info.get("version", ""))

    def databases(self, only: str | None) -> list[str]:
        """The databases to dump: ``only``, or all except admin/local/config."""
        if only:
            return [only]
        with self.errors():
            names = self.client.list_database_names()
        return sorted(n for n in names if n not in SYSTEM_DATABASES)

    def database_exists(self, name: str) -> bool:
        with self.errors():
            return name in self.client.list_database_names()

    def collections(self, db: str) -> tuple[list[CollectionMeta], list[str]]:
        """Metadata of the dumpable collections of ``db``, and warnings for what is skipped."""
        metas: list[CollectionMeta] = []
        skipped: list[str] = []
        with self.errors():
            infos = list(self.client[db].list_collections())
            for info in sorted(infos, key=lambda i: str(i["name"])):
                name = str(info["name"])
                kind = str(info.get("type", "collection"))
                if name.startswith("system.") or kind != "collection":
                    skipped.append(f"skipped {kind} {db}.{name}")
                    continue
                metas.append(self._meta(db, name, info))
        return metas, skipped

    def _meta(self, db: str, name: str, info: Mapping[str, Any]) -> CollectionMeta:
        uuid = info.get("info", {}).get("uuid")
        indexes = [dict(ix) for ix in self.client[db][name].list_indexes()]
        return CollectionMeta(
            db=db,
            collection=name,
            options=dict(info.get("options") or {}),
            indexes=indexes,
            uuid=uuid.hex() if isinstance(uuid, bytes) else "",
        )

    def raw_batches(self, db: str, collection: str) -> Iterator[bytes]:
        """The collection's documents as concatenated BSON, one server batch at a time."""
        with self.errors():
            coll = self.client[db][collection]
            yield from coll.find_raw_batches({}, batch_size=10_000)

    def prepare_collection(self, meta: CollectionMeta, db: str, drop: bool) -> None:
        """Drop (when asked) and create the collection with its options."""
        with self.errors():
            database = self.client[db]
            if drop:
                database.drop_collection(meta.collection)
            if meta.collection not in database.list_collection_names():
                database.command({"create": meta.collection, **meta.options})

    def insert(self, db: str, collection: str, documents: list[bytes]) -> int:
        """Insert raw documents; returns how many were skipped as duplicate keys."""
        raw = [RawBSONDocument(d) for d in documents]
        try:
            self.client[db][collection].insert_many(raw, ordered=False)
        except BulkWriteError as exc:
            return _duplicates_only(exc, self.uri)
        except PyMongoError as exc:
            raise classify(exc, self.uri, self.fallback) from exc
        return 0

    def create_indexes(self, meta: CollectionMeta, db: str) -> int:
        """Recreate the secondary indexes of ``meta`` in ``db``; returns how many."""
        specs = [_index_spec(ix) for ix in meta.indexes if ix.get("name") != "_id_"]
        if not specs:
            return 0
        with self.errors():
            self.client[db].command({"createIndexes": meta.collection, "indexes": specs})
        return len(specs)


def _duplicates_only(exc: BulkWriteError, uri: str) -> int:
    errors = exc.details.get("writeErrors", [])
    if any(e.get("code") != DUPLICATE_KEY for e in errors) or exc.details.get("writeConcernErrors"):
        raise RunnerError("RestoreFailed", one_line(redact(str(exc), secrets_of(uri))))
    return len(errors)


def _index_spec(index: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in index.items() if k not in ("ns", "v", "background")}
