"""Restore a database archive (from mongodump or the builtin dumper).

The checksum is verified before anything is written. The builtin restorer reads the
archive stream, creates each selected collection with its options (dropping it first with
``--drop``), inserts documents in bounded batches of raw BSON (duplicate keys are counted
and skipped, like mongorestore), then recreates the indexes. ``--restorer mongorestore``
pipes the decompressed archive into the real tool instead.
"""

import io
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal, cast

from backup_operator.runner import mongotools
from backup_operator.runner.archive_format import (
    ArchiveFormatError,
    ArchiveReader,
    CollectionMeta,
    Documents,
)
from backup_operator.runner.compression import (
    WRITE_SIZE,
    Compression,
    decompressing_reader,
    detect_file,
)
from backup_operator.runner.errors import RunnerError
from backup_operator.runner.mongo import Mongo

Restorer = Literal["auto", "mongorestore", "builtin"]


@dataclass(frozen=True)
class Target:
    """Which databases to restore, and under which name."""

    database: str | None = None
    to_database: str | None = None
    drop: bool = False

    def name_for(self, db: str) -> str | None:
        """Target database for archive database ``db``; None when not selected."""
        if self.database and db != self.database:
            return None
        return self.to_database or db


@dataclass
class RestoreStats:
    """Counts of a finished restore."""

    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def open_plain(archive: Path) -> tuple[BinaryIO, Compression]:
    """The decompressed archive as a buffered stream, and its compression."""
    kind = detect_file(archive)
    raw = archive.open("rb", buffering=WRITE_SIZE)
    plain = decompressing_reader(kind, raw)
    if kind == "zstd":
        plain = cast(BinaryIO, io.BufferedReader(cast(io.RawIOBase, plain), WRITE_SIZE))
    return plain, kind


def selected(metas: list[CollectionMeta], target: Target) -> list[CollectionMeta]:
    """The collections to restore; ``InvalidArguments`` for an ambiguous rename."""
    databases = sorted({m.db for m in metas})
    if target.to_database and not target.database and len(databases) > 1:
        raise RunnerError(
            "InvalidArguments",
            f"--to-database needs --database: the archive holds {len(databases)} databases",
        )
    chosen = [m for m in metas if target.name_for(m.db) is not None]
    if target.database and not chosen:
        raise RunnerError("SourceNotFound", f"database {target.database!r} is not in the archive")
    return chosen


def restore_builtin(uri: str, archive: Path, target: Target) -> RestoreStats:
    """Restore with pymongo from the archive stream."""
    plain, _ = open_plain(archive)
    mongo = Mongo(uri, "RestoreFailed")
    try:
        mongo.server_version()
        reader = ArchiveReader(plain)
        metas = selected(reader.read_prelude(), target)
        return _apply(mongo, reader, metas, target)
    except ArchiveFormatError as exc:
        raise RunnerError("RestoreFailed", f"archive is corrupt: {exc}") from exc
    finally:
        mongo.close()
        plain.close()


def _apply(
    mongo: Mongo, reader: ArchiveReader, metas: list[CollectionMeta], target: Target
) -> RestoreStats:
    wanted = {m.namespace for m in metas}
    for meta in metas:
        mongo.prepare_collection(meta, str(target.name_for(meta.db)), target.drop)
    documents = duplicates = 0
    for event in reader.events():
        if isinstance(event, Documents) and f"{event.db}.{event.collection}" in wanted:
            db = str(target.name_for(event.db))
            duplicates += mongo.insert(db, event.collection, event.documents)
            documents += len(event.documents)
    indexes = sum(mongo.create_indexes(m, str(target.name_for(m.db))) for m in metas)
    warnings = [f"{duplicates} document(s) skipped: duplicate key"] if duplicates else []
    counts = {
        "collections": len(metas),
        "documents": documents - duplicates,
        "indexes": indexes,
        "duplicatesSkipped": duplicates,
    }
    return RestoreStats(counts, warnings)


def restore_with_mongorestore(binary: str, uri: str, archive: Path, target: Target) -> RestoreStats:
    """Pipe the decompressed archive into ``mongorestore --archive``."""
    plain, _ = open_plain(archive)
    argv_args = {"database": target.database, "to_database": target.to_database}
    with mongotools.uri_config(uri) as config, plain:
        argv = mongotools.mongorestore_argv(binary, config, drop=target.drop, **argv_args)
        proc = mongotools.start(argv, restore=True)
        assert proc.stdin is not None
        assert proc.stderr is not None
        tail = mongotools.StderrTail(proc.stderr)
        try:
            while chunk := plain.read(WRITE_SIZE):
                proc.stdin.write(chunk)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the tool ended early; its exit code and stderr tell why
        except BaseException:
            proc.send_signal(signal.SIGKILL)
            raise
        finally:
            code = proc.wait()
            tail.join()
    if code != 0:
        raise mongotools.failure_from_stderr(list(tail.lines), uri, "RestoreFailed")
    return RestoreStats({}, [])


def restore(uri: str, archive: Path, target: Target, requested: Restorer) -> RestoreStats:
    """Restore with the requested restorer (``auto``: mongorestore when on PATH)."""
    binary = mongotools.find_tool("mongorestore")
    if requested == "mongorestore" and binary is None:
        raise RunnerError("InvalidArguments", "--restorer mongorestore: not on PATH")
    if requested != "builtin" and binary is not None:
        return restore_with_mongorestore(binary, uri, archive, target)
    return restore_builtin(uri, archive, target)
