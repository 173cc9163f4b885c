"""Restore a files artifact: verify first, then extract safely.

Pass one reads the artifact once, hashing the compressed bytes and walking the tar headers:
a wrong checksum (``ChecksumMismatch``) or a member that could escape the target or is not
a plain file, directory or link (``UnsafeArchive``) is refused before anything is written.
Pass two extracts, re-checking each member and also the real path of its parent (so a
chain of in-tree symlinks cannot redirect a write outside). Files are written without
following links, runs of zeros become holes again, and modes and mtimes are restored
(directories last, deepest first).
"""

import os
import posixpath
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO, cast

from backup_operator.runner.compression import Compression, decompressing_reader, detect_file
from backup_operator.runner.errors import RunnerError
from backup_operator.runner.integrity import HashingReader, check_sha256

READ_SIZE = 1 << 20
_ZEROS = bytes(READ_SIZE)
MAX_PROBLEMS = 50


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` is unsafe to extract, or None when it is fine."""
    name = member.name
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or not parts:
        return f"absolute or empty path: {name!r}"
    if ".." in parts:
        return f"path with '..': {name!r}"
    if member.isreg() or member.isdir():
        return None
    if member.issym():
        return _link_problem(name, member.linkname, relative_to_member=True)
    if member.islnk():
        return _link_problem(name, member.linkname, relative_to_member=False)
    return f"device, fifo or unknown member type {member.type!r}: {name!r}"


def _link_problem(name: str, linkname: str, relative_to_member: bool) -> str | None:
    if not linkname or linkname.startswith("/"):
        return f"link {name!r} points to absolute path {linkname!r}"
    base = posixpath.dirname(name) if relative_to_member else ""
    resolved = posixpath.normpath(posixpath.join(base, linkname))
    if resolved == ".." or resolved.startswith("../"):
        return f"link {name!r} points outside the target: {linkname!r}"
    return None


@dataclass
class ExtractStats:
    """What a restore wrote."""

    files: int = 0
    directories: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    bytes: int = 0
    dirs_meta: list[tuple[Path, int, int]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "files": self.files,
            "directories": self.directories,
            "symlinks": self.symlinks,
            "hardlinks": self.hardlinks,
            "bytes": self.bytes,
        }


@contextmanager
def open_tar(archive: Path) -> Iterator[tuple[tarfile.TarFile, HashingReader, Compression]]:
    """A streaming tar reader over the (auto-detected) decompressed artifact."""
    with archive.open("rb", buffering=READ_SIZE) as raw:
        kind = detect_file(archive)
        hashing = HashingReader(raw)
        plain = decompressing_reader(kind, cast(BinaryIO, hashing))
        with tarfile.open(fileobj=plain, mode="r|", bufsize=READ_SIZE) as tar:
            yield tar, hashing, kind


def verify(archive: Path, expected_sha256: str) -> Compression:
    """Pass one: checksum and member safety, before anything is written."""
    problems: list[str] = []
    broken: str | None = None
    with archive.open("rb", buffering=READ_SIZE) as raw:
        kind = detect_file(archive)
        hashing = HashingReader(raw)
        try:
            plain = decompressing_reader(kind, cast(BinaryIO, hashing))
            with tarfile.open(fileobj=plain, mode="r|", bufsize=READ_SIZE) as tar:
                for member in tar:
                    if (problem := member_problem(member)) and len(problems) < MAX_PROBLEMS:
                        problems.append(problem)
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
            broken = f"{exc.__class__.__name__}: {exc}"
        hashing.drain()
    check_sha256(hashing.sha.hexdigest(), expected_sha256, archive)
    if broken:
        raise RunnerError("RestoreFailed", f"archive is not a readable tar stream: {broken}")
    if problems:
        raise RunnerError("UnsafeArchive", f"refused: {problems[0]}", details=problems)
    return kind


class Extractor:
    """Pass two: writes members under ``target`` with the safety checks of pass one."""

    def __init__(self, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        self.root = Path(os.path.realpath(target))
        self.stats = ExtractStats()
        self._as_root = os.geteuid() == 0

    def extract(self, tar: tarfile.TarFile) -> ExtractStats:
        for member in tar:
            if problem := member_problem(member):
                raise RunnerError("UnsafeArchive", f"refused: {problem}")
            self._member(tar, member)
        for path, mode, mtime in reversed(self.stats.dirs_meta):
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))
        return self.stats

    def _dest(self, name: str) -> Path:
        dest = self.root / name.rstrip("/")
        parent = Path(os.path.realpath(dest.parent))
        if parent != self.root and self.root not in parent.parents:
            raise RunnerError("UnsafeArchive", f"refused: {name!r} would be written outside")
        return parent / dest.name

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self._make_parents(member.name)
        dest = self._dest(member.name)
        if member.isdir():
            self._directory(dest, member)
            return
        _remove_existing(dest)
        if member.issym():
            self._symlink(dest, member)
        elif member.islnk():
            self._hardlink(dest, member)
        else:
            self._file(tar, dest, member)
        self._owner(dest, member)

    def _make_parents(self, name: str) -> None:
        parts = [p for p in name.rstrip("/").split("/") if p not in ("", ".")][:-1]
        for depth in range(1, len(parts) + 1):
            path = self._dest("/".join(parts[:depth]))
            if not path.is_dir() or path.is_symlink():
                _remove_existing(path)
                path.mkdir(mode=0o755)

    def _directory(self, dest: Path, member: tarfile.TarInfo) -> None:
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            _remove_existing(dest)
        dest.mkdir(mode=0o700, exist_ok=True)
        self._owner(dest, member)
        self.stats.dirs_meta.append((dest, member.mode, int(member.mtime)))
        self.stats.directories += 1

    def _symlink(self, dest: Path, member: tarfile.TarInfo) -> None:
        resolved = Path(os.path.realpath(dest.parent / member.linkname))
        if resolved != self.root and self.root not in resolved.parents:
            raise RunnerError("UnsafeArchive", f"refused: link {member.name!r} leaves the target")
        os.symlink(member.linkname, dest)
        os.utime(dest, (member.mtime, member.mtime), follow_symlinks=False)
        self.stats.symlinks += 1

    def _hardlink(self, dest: Path, member: tarfile.TarInfo) -> None:
        source = self._dest(member.linkname)
        if source.is_symlink() or not source.is_file():
            raise RunnerError("UnsafeArchive", f"refused: hard link {member.name!r} to non-file")
        os.link(source, dest, follow_symlinks=False)
        self.stats.hardlinks += 1

    def _file(self, tar: tarfile.TarFile, dest: Path, member: tarfile.TarInfo) -> None:
        source = tar.extractfile(member)
        assert source is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(dest, flags, 0o600), "wb", buffering=READ_SIZE) as out:
            written = _copy_sparse(source, out)
            out.truncate(written)
        os.chmod(dest, member.mode)
        os.utime(dest, (member.mtime, member.mtime))
        self.stats.files += 1
        self.stats.bytes += written

    def _owner(self, dest: Path, member: tarfile.TarInfo) -> None:
        if self._as_root:
            os.lchown(dest, member.uid, member.gid)


def _copy_sparse(source: IO[bytes], out: IO[bytes]) -> int:
    """Copy, seeking over whole zero chunks so sparse files stay sparse."""
    written = 0
    while chunk := source.read(READ_SIZE):
        if len(chunk) == READ_SIZE and chunk == _ZEROS:
            out.seek(len(chunk), os.SEEK_CUR)
        else:
            out.write(chunk)
        written += len(chunk)
    return written


def _remove_existing(path: Path) -> None:
    """Make room for a new member: unlink files and links (never follow), keep directories."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        raise RunnerError("RestoreFailed", f"{path} exists and is a directory")


def restore_tree(archive: Path, expected_sha256: str, target: Path) -> tuple[ExtractStats, str]:
    """Verify then extract ``archive`` into ``target``; returns stats and compression."""
    kind = verify(archive, expected_sha256)
    with open_tar(archive) as (tar, _, _):
        stats = Extractor(target).extract(tar)
    return stats, kind
