"""Archive a directory tree as a tar stream, in one pass and bounded memory.

Our own small tar writer (headers from :class:`tarfile.TarInfo`, PAX format for long and
non-ASCII names and large sizes) instead of ``TarFile.add``, because a file that shrinks
while it is read must not corrupt the stream: the declared size is padded with zeros and a
warning is recorded. Symlinks are stored as links and never followed; modes, owners,
mtimes (whole seconds) and empty directories are kept; sockets and devices are skipped.
Files that cannot be read are collected and fail the run unless partial backups are allowed.
"""

import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backup_operator.runner.errors import RunnerError
from backup_operator.runner.selection import Selection

BLOCK = 512
RECORD = BLOCK * 20
READ_SIZE = 1 << 20
_O_NOATIME = getattr(os, "O_NOATIME", 0)

Write = Callable[[bytes | bytearray | memoryview], None]


@dataclass
class TreeStats:
    """What went into the archive, and what did not."""

    files: int = 0
    directories: int = 0
    symlinks: int = 0
    bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "files": self.files,
            "directories": self.directories,
            "symlinks": self.symlinks,
            "bytes": self.bytes,
        }


class TarWriter:
    """Writes tar members to ``write`` and counts the bytes for padding."""

    def __init__(self, write: Write) -> None:
        self._write = write
        self.offset = 0

    def _put(self, data: bytes | bytearray | memoryview) -> None:
        self._write(data)
        self.offset += len(data)

    def header(self, info: tarfile.TarInfo) -> None:
        self._put(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def data(self, chunk: bytes | bytearray | memoryview) -> None:
        self._put(chunk)

    def pad(self) -> None:
        remainder = self.offset % BLOCK
        if remainder:
            self._put(bytes(BLOCK - remainder))

    def close(self) -> None:
        self._put(bytes(2 * BLOCK))
        remainder = self.offset % RECORD
        if remainder:
            self._put(bytes(RECORD - remainder))


def _info(rel: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = int(st.st_mtime)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    return info


class TreeArchiver:
    """Walks ``source`` (never following links) and writes the selected entries."""

    def __init__(self, source: Path, selection: Selection, write: Write) -> None:
        self.source = source
        self.selection = selection
        self.tar = TarWriter(write)
        self.stats = TreeStats()
        self._pending: list[tuple[str, os.stat_result]] = []
        self._buffer = bytearray(READ_SIZE)

    def run(self) -> TreeStats:
        if not self.source.is_dir():
            raise RunnerError("SourceNotFound", f"source directory {self.source} does not exist")
        self._walk(str(self.source), "", parent_included=False)
        self.tar.close()
        return self.stats

    def _walk(self, path: str, rel_dir: str, parent_included: bool) -> None:
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            self.stats.warnings.append(f"vanished while read: {rel_dir or '.'}")
            return
        except OSError as exc:
            self._unreadable(rel_dir or ".", exc)
            return
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if not self.selection.excluded(rel):
                self._entry(entry, rel, self.selection.included(rel, parent_included))

    def _entry(self, entry: os.DirEntry[str], rel: str, included: bool) -> None:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            self.stats.warnings.append(f"vanished while read: {rel}")
            return
        if stat.S_ISDIR(st.st_mode):
            self._directory(entry.path, rel, st, included)
        elif not included:
            return
        elif stat.S_ISLNK(st.st_mode):
            self._symlink(entry.path, rel, st)
        elif stat.S_ISREG(st.st_mode):
            self._file(entry.path, rel)
        else:
            self.stats.warnings.append(f"skipped special file: {rel}")

    def _directory(self, path: str, rel: str, st: os.stat_result, included: bool) -> None:
        self._pending.append((rel, st))
        if included:
            self._flush_pending()
        self._walk(path, rel, included)
        if self._pending and self._pending[-1][0] == rel:
            self._pending.pop()

    def _flush_pending(self) -> None:
        for rel, st in self._pending:
            self.tar.header(_info(rel, st, tarfile.DIRTYPE))
            self.stats.directories += 1
        self._pending.clear()

    def _symlink(self, path: str, rel: str, st: os.stat_result) -> None:
        try:
            target = os.readlink(path)
        except FileNotFoundError:
            self.stats.warnings.append(f"vanished while read: {rel}")
            return
        self._flush_pending()
        info = _info(rel, st, tarfile.SYMTYPE)
        info.linkname = target
        self.tar.header(info)
        self.stats.symlinks += 1

    def _file(self, path: str, rel: str) -> None:
        try:
            fd = _open(path)
        except FileNotFoundError:
            self.stats.warnings.append(f"vanished while read: {rel}")
            return
        except OSError as exc:
            self._unreadable(rel, exc)
            return
        try:
            self._copy(fd, rel)
        finally:
            os.close(fd)

    def _copy(self, fd: int, rel: str) -> None:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            self.stats.warnings.append(f"changed type while read: {rel}")
            return
        self._flush_pending()
        info = _info(rel, before, tarfile.REGTYPE)
        info.size = before.st_size
        self.tar.header(info)
        copied = self._stream(fd, before.st_size, rel)
        if copied < before.st_size:
            self.stats.warnings.append(f"shrank while read (zero-padded): {rel}")
            self._zeros(before.st_size - copied)
        self.tar.pad()
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            self.stats.warnings.append(f"changed while read: {rel}")
        self.stats.files += 1
        self.stats.bytes += before.st_size

    def _stream(self, fd: int, size: int, rel: str) -> int:
        """Copy up to ``size`` bytes of ``fd``; an I/O error is padded like a shrink."""
        view = memoryview(self._buffer)
        copied = 0
        while copied < size:
            try:
                n = os.readv(fd, [view[: min(READ_SIZE, size - copied)]])
            except OSError as exc:
                self._unreadable(rel, exc)
                break
            if n == 0:
                break
            self.tar.data(view[:n])
            copied += n
        return copied

    def _zeros(self, count: int) -> None:
        zero = bytes(min(count, READ_SIZE))
        while count > 0:
            chunk = min(count, len(zero))
            self.tar.data(zero[:chunk])
            count -= chunk

    def _unreadable(self, rel: str, exc: OSError) -> None:
        self.stats.unreadable.append(f"{rel}: {exc.strerror or exc}")


def _open(path: str) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags | _O_NOATIME)
    except PermissionError:
        if not _O_NOATIME:
            raise
        return os.open(path, flags)  # O_NOATIME needs ownership; retry without it


def archive_tree(
    source: Path, selection: Selection, write: Write, allow_partial: bool
) -> TreeStats:
    """Archive ``source`` into ``write``; ``UnreadableFiles`` unless ``allow_partial``."""
    stats = TreeArchiver(source, selection, write).run()
    if stats.unreadable and not allow_partial:
        count = len(stats.unreadable)
        raise RunnerError(
            "UnreadableFiles",
            f"{count} file(s) could not be read, first: {stats.unreadable[0]}",
            details=stats.unreadable,
        )
    stats.warnings.extend(f"unreadable, not archived: {u}" for u in stats.unreadable)
    return stats
