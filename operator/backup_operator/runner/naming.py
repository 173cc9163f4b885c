"""Artifact file names, kept identical to the service this operator replaces."""

from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Literal

from backup_operator.runner.errors import RunnerError

Compression = Literal["gzip", "zstd", "none"]
COMPRESSIONS: tuple[Compression, ...] = ("gzip", "zstd", "none")
_SUFFIX: dict[Compression, str] = {"gzip": ".gz", "zstd": ".zst", "none": ""}


def timestamp(now: datetime) -> str:
    """``YYYYmmdd_HHMMSS`` of ``now`` in UTC."""
    return now.astimezone(UTC).strftime("%Y%m%d_%H%M%S")


def database_artifact_name(now: datetime, compression: Compression) -> str:
    """``mongodb_backup_<ts>.archive`` plus the compression suffix."""
    return f"mongodb_backup_{timestamp(now)}.archive{_SUFFIX[compression]}"


def files_artifact_name(now: datetime, compression: Compression) -> str:
    """``files_backup_<ts>.tar`` plus the compression suffix."""
    return f"files_backup_{timestamp(now)}.tar{_SUFFIX[compression]}"


def checked_prefix(prefix: str) -> PurePosixPath:
    """The storage prefix as a relative path; refuses absolute paths and ``..``."""
    path = PurePosixPath(prefix.strip("/") if not prefix.startswith("/") else prefix)
    if not prefix or path.is_absolute() or ".." in path.parts or str(path) == ".":
        raise RunnerError("InvalidArguments", f"invalid --prefix {prefix!r}: need NS/NAME")
    return path
