"""The four runner commands, from parsed arguments to a :class:`RunnerResult`.

Each backup names its artifact from the UTC start time, streams the data through
:class:`ArtifactWriter` and reports path, size, checksum, duration and counts. Any
:class:`RunnerError` becomes a failure result; anything unexpected becomes one too (with
the reason of the command and a redacted message) so the Job always leaves a result.
"""

import contextlib
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from backup_operator.runner import database, extract, restore_db
from backup_operator.runner.compression import detect_file
from backup_operator.runner.errors import Reason, RunnerError
from backup_operator.runner.files import archive_tree
from backup_operator.runner.integrity import check_archive_path, check_sha256, sha256_file
from backup_operator.runner.naming import (
    Compression,
    checked_prefix,
    database_artifact_name,
    files_artifact_name,
)
from backup_operator.runner.redact import one_line, redact
from backup_operator.runner.result import RunnerResult
from backup_operator.runner.selection import Selection
from backup_operator.runner.sink import ArtifactWriter, no_space


def guarded(
    fallback: Reason, secrets: tuple[str, ...], run: Callable[[], RunnerResult]
) -> RunnerResult:
    """Run a command; every exception becomes a redacted failure result."""
    try:
        return run()
    except RunnerError as exc:
        message = one_line(redact(exc.message, secrets))
        details = [redact(d, secrets) for d in exc.details]
        return RunnerResult.failure(exc.reason, message, details)
    except Exception as exc:
        reason: Reason = "NoSpaceLeft" if no_space(exc) else fallback
        message = one_line(redact(f"{exc.__class__.__name__}: {exc}", secrets))
        sys.stderr.write(redact(traceback.format_exc(), secrets))
        return RunnerResult.failure(reason, message)


def read_uri(path: Path) -> str:
    """The URI in ``path``, stripped; ``InvalidArguments`` when missing or empty."""
    try:
        uri = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RunnerError(
            "InvalidArguments", f"cannot read --uri-file {path}: {exc.strerror}"
        ) from exc
    if not uri:
        raise RunnerError("InvalidArguments", f"--uri-file {path} is empty")
    return uri


def _artifact_path(dest_root: Path, prefix: str, name: str) -> tuple[Path, str]:
    rel = checked_prefix(prefix) / name
    return dest_root / rel, str(rel)


def backup_database(
    uri: str,
    db: str | None,
    dest_root: Path,
    prefix: str,
    compression: Compression,
    dumper: database.Dumper,
) -> RunnerResult:
    """``runner database``."""
    started = time.monotonic()
    final, rel = _artifact_path(
        dest_root, prefix, database_artifact_name(datetime.now(UTC), compression)
    )
    with ArtifactWriter(final, compression) as writer:
        stats = database.dump(uri, db, dumper, writer.write)
        info = writer.finish()
    return RunnerResult(
        ok=True,
        path=rel,
        size_bytes=info.size_bytes,
        sha256=info.sha256,
        compression=compression,
        duration_seconds=round(time.monotonic() - started, 3),
        counts=stats.counts,
        warnings=stats.warnings,
    )


def backup_files(
    source: Path,
    selection: Selection,
    allow_partial: bool,
    dest_root: Path,
    prefix: str,
    compression: Compression,
) -> RunnerResult:
    """``runner files``."""
    started = time.monotonic()
    final, rel = _artifact_path(
        dest_root, prefix, files_artifact_name(datetime.now(UTC), compression)
    )
    if not source.is_dir():
        raise RunnerError("SourceNotFound", f"source directory {source} does not exist")
    with ArtifactWriter(final, compression) as writer:
        stats = archive_tree(source, selection, writer.write, allow_partial)
        info = writer.finish()
    return RunnerResult(
        ok=True,
        path=rel,
        size_bytes=info.size_bytes,
        sha256=info.sha256,
        compression=compression,
        duration_seconds=round(time.monotonic() - started, 3),
        counts=stats.counts(),
        warnings=stats.warnings,
    )


def restore_database(
    uri: str, archive: Path, sha256: str, target: restore_db.Target, restorer: restore_db.Restorer
) -> RunnerResult:
    """``runner restore-database``: checksum first, then restore."""
    started = time.monotonic()
    check_archive_path(archive)
    digest = sha256_file(archive)
    check_sha256(digest, sha256, archive)
    kind = detect_file(archive)
    stats = restore_db.restore(uri, archive, target, restorer)
    return RunnerResult(
        ok=True,
        path=str(archive),
        size_bytes=archive.stat().st_size,
        sha256=digest,
        compression=kind,
        duration_seconds=round(time.monotonic() - started, 3),
        counts=stats.counts,
        warnings=stats.warnings,
    )


def restore_files(archive: Path, sha256: str, target: Path) -> RunnerResult:
    """``runner restore-files``: checksum and safety first, then extract."""
    started = time.monotonic()
    check_archive_path(archive)
    stats, kind = extract.restore_tree(archive, sha256, target)
    return RunnerResult(
        ok=True,
        path=str(archive),
        size_bytes=archive.stat().st_size,
        sha256=sha256.strip().lower(),
        compression=kind,
        duration_seconds=round(time.monotonic() - started, 3),
        counts=stats.counts(),
    )


def delete_artifact(dest_root: Path, path: str) -> RunnerResult:
    """Remove an artifact (``deletionPolicy: Delete``); a missing file is already deleted.

    The now empty ``<namespace>/<name>/`` folders above it go too; nothing outside the
    storage root can be named (``path`` is checked like a prefix).
    """
    rel = checked_prefix(path)
    target = dest_root / rel
    existed = target.is_file()
    target.unlink(missing_ok=True)
    for parent in list(rel.parents)[:-1]:
        with contextlib.suppress(OSError):  # not empty, or already gone
            (dest_root / parent).rmdir()
    return RunnerResult(ok=True, path=str(rel), counts={"deleted": int(existed)})
