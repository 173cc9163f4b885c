"""The ``backup-operator runner`` command group: what a backup Job's container runs.

Thin click wrappers over :mod:`backup_operator.runner.commands`. The MongoDB URI is read
from ``--uri-file`` only (never argv or the environment). Every command ends by printing
one JSON result as the last stdout line and writing it to ``--termination-log``; a failure
exits with code 1.
"""

import sys
from collections.abc import Callable
from pathlib import Path

import click

from backup_operator.runner import commands, restore_db
from backup_operator.runner.errors import Reason, RunnerError
from backup_operator.runner.naming import COMPRESSIONS, Compression
from backup_operator.runner.output import DEFAULT_TERMINATION_LOG, emit
from backup_operator.runner.redact import secrets_of
from backup_operator.runner.result import RunnerResult
from backup_operator.runner.selection import Selection

_compression = click.option(
    "--compression", type=click.Choice(COMPRESSIONS), required=True, help="Artifact compression."
)
_dest_root = click.option(
    "--dest-root", type=click.Path(path_type=Path), required=True, help="Storage mount point."
)
_prefix = click.option("--prefix", required=True, help="NS/NAME under the storage root.")
_termination_log = click.option(
    "--termination-log",
    default=DEFAULT_TERMINATION_LOG,
    show_default=True,
    help="Where the result JSON is written (skipped when not writable).",
)
_uri_file = click.option(
    "--uri-file",
    type=click.Path(path_type=Path),
    required=True,
    help="File holding the MongoDB URI.",
)


def _finish(result: RunnerResult, termination_log: str | None) -> None:
    emit(result, termination_log)
    if not result.ok:
        sys.exit(1)


def _with_uri(uri_file: Path, fallback: Reason, run: Callable[[str], RunnerResult]) -> RunnerResult:
    """Read the URI and run, redacting its secrets from any failure."""
    try:
        uri = commands.read_uri(uri_file)
    except RunnerError as exc:
        return RunnerResult.failure(exc.reason, exc.message)
    return commands.guarded(fallback, secrets_of(uri), lambda: run(uri))


@click.group()
def runner() -> None:
    """Commands that run inside a backup Job."""


@runner.command("database")
@_uri_file
@click.option("--database", default=None, help="Dump only this database (default: all).")
@_dest_root
@_prefix
@_compression
@click.option(
    "--dumper",
    type=click.Choice(["auto", "mongodump", "builtin"]),
    default="auto",
    show_default=True,
    help="auto: mongodump when on PATH, else the builtin dumper.",
)
@_termination_log
def database_command(
    uri_file: Path,
    database: str | None,
    dest_root: Path,
    prefix: str,
    compression: Compression,
    dumper: str,
    termination_log: str,
) -> None:
    """Dump MongoDB as a mongodump archive into the storage."""
    result = _with_uri(
        uri_file,
        "DumpFailed",
        lambda uri: commands.backup_database(
            uri,
            database,
            dest_root,
            prefix,
            compression,
            dumper,  # type: ignore[arg-type]
        ),
    )
    _finish(result, termination_log)


@runner.command("files")
@click.option("--source", type=click.Path(path_type=Path), required=True, help="Directory.")
@click.option("--include", multiple=True, help="Glob of relative paths to take (repeatable).")
@click.option("--exclude", multiple=True, help="Glob of relative paths to skip (repeatable).")
@click.option("--allow-partial", is_flag=True, help="Unreadable files are warnings only.")
@_dest_root
@_prefix
@_compression
@_termination_log
def files_command(
    source: Path,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    allow_partial: bool,
    dest_root: Path,
    prefix: str,
    compression: Compression,
    termination_log: str,
) -> None:
    """Archive a directory tree as a tar stream into the storage."""
    selection = Selection.of(include, exclude)
    result = commands.guarded(
        "DumpFailed",
        (),
        lambda: commands.backup_files(
            source, selection, allow_partial, dest_root, prefix, compression
        ),
    )
    _finish(result, termination_log)


@runner.command("restore-database")
@_uri_file
@click.option("--archive", type=click.Path(path_type=Path), required=True)
@click.option("--sha256", required=True, help="Expected SHA-256 of the archive file.")
@click.option("--database", default=None, help="Restore only this database.")
@click.option("--to-database", default=None, help="Restore the (single) database as NAME.")
@click.option("--drop", is_flag=True, help="Drop each collection before restoring it.")
@click.option(
    "--restorer",
    type=click.Choice(["auto", "mongorestore", "builtin"]),
    default="auto",
    show_default=True,
)
@_termination_log
def restore_database_command(
    uri_file: Path,
    archive: Path,
    sha256: str,
    database: str | None,
    to_database: str | None,
    drop: bool,
    restorer: str,
    termination_log: str,
) -> None:
    """Restore a database archive (checksum verified first)."""
    target = restore_db.Target(database, to_database, drop)
    result = _with_uri(
        uri_file,
        "RestoreFailed",
        lambda uri: commands.restore_database(
            uri,
            archive,
            sha256,
            target,
            restorer,  # type: ignore[arg-type]
        ),
    )
    _finish(result, termination_log)


@runner.command("restore-files")
@click.option("--archive", type=click.Path(path_type=Path), required=True)
@click.option("--sha256", required=True, help="Expected SHA-256 of the archive file.")
@click.option("--target", type=click.Path(path_type=Path), required=True, help="Directory.")
@_termination_log
def restore_files_command(archive: Path, sha256: str, target: Path, termination_log: str) -> None:
    """Restore a files archive (checksum and member safety verified first)."""
    result = commands.guarded(
        "RestoreFailed", (), lambda: commands.restore_files(archive, sha256, target)
    )
    _finish(result, termination_log)


@runner.command("delete-artifact")
@_dest_root
@click.option("--path", required=True, help="Artifact path under the storage root (NS/NAME/FILE).")
@_termination_log
def delete_artifact_command(dest_root: Path, path: str, termination_log: str) -> None:
    """Delete one artifact (a backup with deletionPolicy: Delete was deleted)."""
    result = commands.guarded("DeleteFailed", (), lambda: commands.delete_artifact(dest_root, path))
    _finish(result, termination_log)
