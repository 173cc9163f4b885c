"""Write one artifact durably: compress, count and checksum in the same pass.

Bytes flow producer -> coalescing buffer -> compressor -> hashing file writer. The file is
``<name>.partial`` until it is complete and fsynced; then it is renamed and the directory
fsynced, so a crash never leaves a file that looks finished. Any failure removes the partial
file; ENOSPC becomes ``NoSpaceLeft``.
"""

import contextlib
import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from backup_operator.runner.compression import WRITE_SIZE, Chunk, compressor
from backup_operator.runner.errors import RunnerError
from backup_operator.runner.naming import Compression


@dataclass(frozen=True)
class ArtifactInfo:
    """What the result reports about a finished artifact."""

    size_bytes: int
    sha256: str


class _HashingFile:
    """Buffered file writer that hashes and counts what it writes."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        self.file = os.fdopen(fd, "wb", buffering=WRITE_SIZE)
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: Chunk, /) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.file.write(data)


def no_space(exc: BaseException) -> bool:
    """True when ``exc`` or anything in its chain is ENOSPC/EDQUOT."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class ArtifactWriter:
    """Context manager: ``write()`` plain bytes, ``finish()`` to publish the artifact."""

    def __init__(self, final: Path, kind: Compression, gzip_level: int | None = None) -> None:
        self.final = final
        self.partial = final.with_name(final.name + ".partial")
        self._kind = kind
        self._gzip_level = gzip_level
        self._buffer = bytearray()
        self._out: _HashingFile | None = None

    def __enter__(self) -> "ArtifactWriter":
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self._out = _HashingFile(self.partial)
        level = {} if self._gzip_level is None else {"gzip_level": self._gzip_level}
        self._compressor = compressor(self._kind, self._out, **level)
        return self

    def write(self, data: Chunk) -> None:
        """Queue ``data``; compress once a megabyte has gathered."""
        if not self._buffer and len(data) >= WRITE_SIZE:
            self._compressor.write(data)
            return
        self._buffer += data
        if len(self._buffer) >= WRITE_SIZE:
            self._drain()

    def _drain(self) -> None:
        if self._buffer:
            self._compressor.write(self._buffer)
            self._buffer.clear()

    def finish(self) -> ArtifactInfo:
        """Flush, fsync, rename into place, fsync the directory."""
        assert self._out is not None
        self._drain()
        self._compressor.finish()
        self._out.file.flush()
        os.fsync(self._out.file.fileno())
        self._out.file.close()
        os.replace(self.partial, self.final)
        _fsync_dir(self.final.parent)
        return ArtifactInfo(self._out.size, self._out.sha.hexdigest())

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            return
        self._abort()
        if no_space(exc) and not (isinstance(exc, RunnerError) and exc.reason == "NoSpaceLeft"):
            raise RunnerError(
                "NoSpaceLeft", f"no space left on device writing {self.final}"
            ) from exc

    def _abort(self) -> None:
        if self._out is not None:
            # The buffered tail may not be writable (ENOSPC): it goes with the file.
            with contextlib.suppress(OSError):
                self._out.file.close()
        self.partial.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
