"""Database backups: a mongodump archive from the real tool or from the builtin dumper.

``mongodump`` is used when the image has it (``--dumper auto``); otherwise the builtin
dumper reads every collection in server batches of raw BSON and writes the same archive
format, with collection options and index definitions in the prelude so a restore
recreates them. Either way the archive streams straight into the artifact writer.
"""

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from backup_operator import __version__ as _version
from backup_operator.runner import mongotools
from backup_operator.runner.archive_format import ArchiveWriter, CollectionMeta
from backup_operator.runner.compression import Chunk
from backup_operator.runner.errors import RunnerError
from backup_operator.runner.mongo import Mongo

Dumper = Literal["auto", "mongodump", "builtin"]
TOOL_VERSION = f"backup-operator-runner/{_version}"


@dataclass
class DumpStats:
    """Counts of a finished dump."""

    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    dumper: str = "builtin"


def choose_dumper(requested: Dumper) -> tuple[str, str | None]:
    """(``mongodump``|``builtin``, binary path) for the requested dumper."""
    binary = mongotools.find_tool("mongodump")
    if requested == "mongodump" and binary is None:
        raise RunnerError("InvalidArguments", "--dumper mongodump: mongodump is not on PATH")
    if requested == "builtin" or binary is None:
        return "builtin", None
    return "mongodump", binary


def dump(
    uri: str, database: str | None, requested: Dumper, write: Callable[[Chunk], None]
) -> DumpStats:
    """Dump ``database`` (or all user databases) as an archive into ``write``."""
    kind, binary = choose_dumper(requested)
    if kind == "mongodump" and binary:
        return dump_with_mongodump(binary, uri, database, write)
    return dump_builtin(uri, database, write)


def _plan(mongo: Mongo, database: str | None) -> tuple[list[CollectionMeta], list[str]]:
    metas: list[CollectionMeta] = []
    warnings: list[str] = []
    for db in mongo.databases(database):
        found, skipped = mongo.collections(db)
        metas += found
        warnings += skipped
    if database and not metas:
        raise RunnerError("SourceNotFound", f"database {database!r} has no collections to dump")
    return metas, warnings


def dump_builtin(uri: str, database: str | None, write: Callable[[Chunk], None]) -> DumpStats:
    """Builtin dumper: pymongo raw batches into the mongodump archive format."""
    mongo = Mongo(uri, "DumpFailed")
    try:
        version = mongo.server_version()
        metas, warnings = _plan(mongo, database)
        writer = ArchiveWriter(write)
        writer.prelude(version, TOOL_VERSION, metas)
        documents = size = 0
        for meta in metas:
            docs, nbytes = writer.namespace(
                meta.db, meta.collection, mongo.raw_batches(meta.db, meta.collection)
            )
            documents, size = documents + docs, size + nbytes
    finally:
        mongo.close()
    counts = {
        "databases": len({m.db for m in metas}),
        "collections": len(metas),
        "documents": documents,
        "indexes": sum(len(m.indexes) for m in metas),
        "bytes": size,
    }
    return DumpStats(counts, warnings, "builtin")


def dump_with_mongodump(
    binary: str, uri: str, database: str | None, write: Callable[[Chunk], None]
) -> DumpStats:
    """Run ``mongodump --archive`` and stream its stdout into ``write``."""
    with mongotools.uri_config(uri) as config:
        proc = mongotools.start(mongotools.mongodump_argv(binary, config, database))
        assert proc.stdout is not None
        assert proc.stderr is not None
        tail = mongotools.StderrTail(proc.stderr)
        try:
            while chunk := proc.stdout.read(mongotools.READ_SIZE):
                write(chunk)
        except BaseException:
            proc.send_signal(signal.SIGKILL)
            raise
        finally:
            code = proc.wait()
            tail.join()
    if code != 0:
        raise mongotools.failure_from_stderr(list(tail.lines), uri, "DumpFailed")
    counts = {"collections": len(tail.counts), "documents": sum(tail.counts.values())}
    return DumpStats(counts, [], "mongodump")
