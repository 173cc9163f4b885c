"""ArtifactWriter: one-pass compression + checksum, atomic publish, cleanup on failure."""

import gzip
import hashlib
import os
from pathlib import Path

import pytest
import zstandard

from backup_operator.runner.errors import RunnerError
from backup_operator.runner.sink import ArtifactWriter, no_space

PAYLOAD = b"".join(b"line %d of a compressible payload\n" % i for i in range(200_000))


def _decompress(kind: str, data: bytes) -> bytes:
    if kind == "gzip":
        return gzip.decompress(data)
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(data).read()
    return data


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_artifact_round_trips_and_reports_size_and_sha(tmp_path: Path, kind: str) -> None:
    final = tmp_path / "ns" / "name" / "artifact"
    with ArtifactWriter(final, kind) as writer:  # type: ignore[arg-type]
        for start in range(0, len(PAYLOAD), 70_000):
            writer.write(PAYLOAD[start : start + 70_000])
        info = writer.finish()
    data = final.read_bytes()
    assert info.size_bytes == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert _decompress(kind, data) == PAYLOAD
    assert not (final.parent / "artifact.partial").exists()


def test_failure_removes_the_partial_file(tmp_path: Path) -> None:
    final = tmp_path / "a"
    writer = ArtifactWriter(final, "gzip")

    def produce_then_die() -> None:
        with writer:
            writer.write(PAYLOAD)
            raise RuntimeError("producer died")

    with pytest.raises(RuntimeError):
        produce_then_die()
    assert os.listdir(tmp_path) == []


def test_enospc_becomes_no_space_left(tmp_path: Path) -> None:
    final = tmp_path / "a"
    with pytest.raises(RunnerError) as info, ArtifactWriter(final, "none"):
        raise OSError(28, "No space left on device")
    assert info.value.reason == "NoSpaceLeft"
    assert os.listdir(tmp_path) == []


def test_no_space_looks_through_exception_chains() -> None:
    outer = ValueError("zstd write failed")
    outer.__cause__ = OSError(28, "No space left on device")
    assert no_space(outer)
    assert not no_space(ValueError("other"))
