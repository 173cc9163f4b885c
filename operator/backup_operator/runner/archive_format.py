"""The mongodump ``--archive`` format, written and read without the MongoDB tools.

Layout (little-endian): magic ``0x8199e26d``; the header document; one metadata document
per collection; a terminator ``0xffffffff``; then blocks, each a namespace header
document, zero or more BSON documents and a terminator. A namespace ends with a header
whose ``EOF`` is true and whose ``CRC`` is the CRC-64/ECMA of all its documents. Archives
written here restore with ``mongorestore --archive`` and archives from ``mongodump`` restore
with :class:`ArchiveReader`. Pure: bytes in, bytes out; no database access.
"""

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import bson
from bson import json_util
from bson.int64 import Int64

from backup_operator.runner.crc64 import as_signed, crc64

MAGIC = 0x8199E26D
MAGIC_BYTES = struct.pack("<I", MAGIC)
TERMINATOR = b"\xff\xff\xff\xff"
FORMAT_VERSION = "0.1"
MAX_DOCUMENT = 16 * 1024 * 1024 + 16 * 1024
BATCH_DOCS = 1000
BATCH_BYTES = 8 * 1024 * 1024
_LEN = struct.Struct("<i")


class ArchiveFormatError(ValueError):
    """The stream is not a well-formed mongodump archive."""


@dataclass(frozen=True)
class CollectionMeta:
    """One collection announced in the prelude."""

    db: str
    collection: str
    options: dict[str, Any] = field(default_factory=dict)
    indexes: list[dict[str, Any]] = field(default_factory=list)
    uuid: str = ""
    type: str = "collection"
    size: int = 0

    @property
    def namespace(self) -> str:
        return f"{self.db}.{self.collection}"


def metadata_json(meta: CollectionMeta) -> str:
    """The ``metadata`` string mongodump writes: canonical Extended JSON v2."""
    doc: dict[str, Any] = {}
    if meta.options:
        doc["options"] = meta.options
    doc["indexes"] = meta.indexes
    if meta.uuid:
        doc["uuid"] = meta.uuid
    doc["collectionName"] = meta.collection
    doc["type"] = meta.type
    return json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS)


def parse_metadata(db: str, collection: str, text: str, kind: str, size: int) -> CollectionMeta:
    """A :class:`CollectionMeta` from the prelude fields (metadata may be empty)."""
    doc: dict[str, Any] = json_util.loads(text) if text else {}
    return CollectionMeta(
        db=db,
        collection=collection,
        options=dict(doc.get("options") or {}),
        indexes=[dict(ix) for ix in doc.get("indexes") or []],
        uuid=str(doc.get("uuid") or ""),
        type=kind or str(doc.get("type") or "collection"),
        size=size,
    )


def iter_documents(raw: bytes | memoryview) -> Iterator[memoryview]:
    """Split concatenated BSON documents, checking each length and trailing zero."""
    view = memoryview(raw)
    pos = 0
    while pos < len(view):
        if pos + 5 > len(view):
            raise ArchiveFormatError("truncated BSON document")
        (size,) = _LEN.unpack_from(view, pos)
        if size < 5 or pos + size > len(view) or view[pos + size - 1] != 0:
            raise ArchiveFormatError(f"invalid BSON document length {size}")
        yield view[pos : pos + size]
        pos += size


class ArchiveWriter:
    """Writes an archive to ``out``, one namespace at a time."""

    def __init__(self, out: Callable[[bytes], object]) -> None:
        self._out = out

    def prelude(self, server_version: str, tool_version: str, metas: list[CollectionMeta]) -> None:
        """Magic, header, one metadata document per collection, terminator."""
        self._out(MAGIC_BYTES)
        header = {
            "concurrent_collections": 1,
            "version": FORMAT_VERSION,
            "server_version": server_version,
            "tool_version": tool_version,
        }
        self._out(bson.encode(header))
        for meta in metas:
            self._out(bson.encode(_prelude_doc(meta)))
        self._out(TERMINATOR)

    def namespace(self, db: str, collection: str, batches: Iterator[bytes]) -> tuple[int, int]:
        """Write all ``batches`` (concatenated BSON) of one namespace; (documents, bytes)."""
        crc, docs, size = 0, 0, 0
        for batch in batches:
            if not batch:
                continue
            if size == 0:
                self._out(bson.encode(_ns_header(db, collection, eof=False, crc=0)))
            docs += sum(1 for _ in iter_documents(batch))
            crc = crc64(batch, crc)
            size += len(batch)
            self._out(batch)
        if size:
            self._out(TERMINATOR)
        self._out(bson.encode(_ns_header(db, collection, eof=True, crc=as_signed(crc))))
        self._out(TERMINATOR)
        return docs, size


def _prelude_doc(meta: CollectionMeta) -> dict[str, Any]:
    return {
        "db": meta.db,
        "collection": meta.collection,
        "metadata": metadata_json(meta),
        "size": Int64(meta.size),
        "type": meta.type,
    }


def _ns_header(db: str, collection: str, *, eof: bool, crc: int) -> dict[str, Any]:
    return {"db": db, "collection": collection, "EOF": eof, "CRC": Int64(crc)}


@dataclass(frozen=True)
class Header:
    """The archive header document."""

    server_version: str
    tool_version: str
    format_version: str


@dataclass
class Documents:
    """A run of raw BSON documents of one namespace (bounded in count and bytes)."""

    db: str
    collection: str
    documents: list[bytes]


@dataclass(frozen=True)
class NamespaceEnd:
    """A namespace is complete and its CRC matched."""

    db: str
    collection: str
    documents: int


class ArchiveReader:
    """Reads an archive from a binary stream, verifying structure and CRCs."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.header: Header | None = None
        self.collections: list[CollectionMeta] = []

    def read_prelude(self) -> list[CollectionMeta]:
        """Consume magic, header and collection metadata."""
        if self._read_exact(4, allow_eof=True) != MAGIC_BYTES:
            raise ArchiveFormatError("not a mongodump archive (bad magic number)")
        first = self._read_document()
        if first is None:
            raise ArchiveFormatError("archive has no header")
        head = bson.decode(first)
        self.header = Header(
            str(head.get("server_version", "")),
            str(head.get("tool_version", "")),
            str(head.get("version", "")),
        )
        while (raw := self._read_document()) is not None:
            doc = bson.decode(raw)
            self.collections.append(
                parse_metadata(
                    str(doc.get("db", "")),
                    str(doc.get("collection", "")),
                    str(doc.get("metadata", "")),
                    str(doc.get("type", "")),
                    int(doc.get("size", 0) or 0),
                )
            )
        return self.collections

    def events(self) -> Iterator[Documents | NamespaceEnd]:
        """Document runs and namespace ends, in archive order."""
        state: dict[str, tuple[int, int]] = {}
        while (raw := self._read_document(block_start=True)) is not None:
            head = bson.decode(raw)
            db, coll = str(head.get("db", "")), str(head.get("collection", ""))
            if not coll:
                raise ArchiveFormatError("namespace header without a collection")
            ns = f"{db}.{coll}"
            crc, count = state.get(ns, (0, 0))
            if head.get("EOF"):
                yield self._end(db, coll, crc, count, int(head.get("CRC", 0)))
                state.pop(ns, None)
                continue
            for run in self._runs(db, coll):
                crc = crc64(b"".join(run.documents), crc)
                count += len(run.documents)
                yield run
            state[ns] = (crc, count)
        if state:
            raise ArchiveFormatError(f"archive ended inside namespaces {sorted(state)}")

    def _end(self, db: str, coll: str, crc: int, count: int, stored: int) -> NamespaceEnd:
        if self._read_document() is not None:
            raise ArchiveFormatError(f"documents after the EOF header of {db}.{coll}")
        if as_signed(crc) != stored:
            raise ArchiveFormatError(f"CRC mismatch for namespace {db}.{coll}")
        return NamespaceEnd(db, coll, count)

    def _runs(self, db: str, coll: str) -> Iterator[Documents]:
        batch: list[bytes] = []
        size = 0
        while (doc := self._read_document()) is not None:
            batch.append(doc)
            size += len(doc)
            if len(batch) >= BATCH_DOCS or size >= BATCH_BYTES:
                yield Documents(db, coll, batch)
                batch, size = [], 0
        if batch:
            yield Documents(db, coll, batch)

    def _read_document(self, block_start: bool = False) -> bytes | None:
        """The next document; None at a terminator (or at the clean end of the archive)."""
        prefix = self._read_exact(4, allow_eof=block_start)
        if not prefix:
            return None
        if prefix == TERMINATOR:
            if block_start:
                raise ArchiveFormatError("terminator where a namespace header was expected")
            return None
        (size,) = _LEN.unpack(prefix)
        if size < 5 or size > MAX_DOCUMENT:
            raise ArchiveFormatError(f"{size} is neither a BSON length nor a terminator")
        rest = self._read_exact(size - 4)
        if rest[-1] != 0:
            raise ArchiveFormatError("BSON document does not end with a zero byte")
        return prefix + rest

    def _read_exact(self, n: int, allow_eof: bool = False) -> bytes:
        data = self._stream.read(n)
        while len(data) < n:
            more = self._stream.read(n - len(data))
            if not more:
                break
            data += more
        if len(data) == n or (allow_eof and not data):
            return data
        raise ArchiveFormatError("archive is truncated")
