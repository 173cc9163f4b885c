"""Checksums of artifacts, checked before a restore touches anything."""

import hashlib
from pathlib import Path
from typing import BinaryIO

from backup_operator.runner.errors import RunnerError

READ_SIZE = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in bounded chunks."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def check_archive_path(path: Path) -> None:
    """``SourceNotFound`` unless ``path`` is a readable regular file."""
    if not path.is_file():
        raise RunnerError("SourceNotFound", f"archive {path} does not exist")


def check_sha256(actual: str, expected: str, path: Path) -> None:
    """``ChecksumMismatch`` unless the digests agree (case-insensitive)."""
    if actual.lower() != expected.strip().lower():
        raise RunnerError(
            "ChecksumMismatch", f"sha256 of {path.name} is {actual}, expected {expected.strip()}"
        )


class HashingReader:
    """A read-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Read (and hash) the rest of the file."""
        while self.read(READ_SIZE):
            pass
