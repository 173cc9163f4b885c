"""The tar writer of ``runner files`` on small trees: format, and files changing underfoot."""

import io
import os
import tarfile
from pathlib import Path

from backup_operator.runner.files import TreeArchiver
from backup_operator.runner.selection import Selection

MIB = 1 << 20


def _archive(source: Path, on_write: object = None) -> tuple[bytes, TreeArchiver]:
    out = io.BytesIO()

    def write(data: bytes | bytearray | memoryview) -> None:
        out.write(data)
        if callable(on_write):
            on_write()

    archiver = TreeArchiver(source, Selection(), write)
    archiver.run()
    return out.getvalue(), archiver


def test_output_is_a_standard_tar_stream(tmp_path: Path) -> None:
    (tmp_path / "d" / "empty").mkdir(parents=True)
    (tmp_path / "d" / "f.txt").write_text("hello")
    (tmp_path / "ln").symlink_to("d/f.txt")
    data, archiver = _archive(tmp_path)
    assert len(data) % (512 * 20) == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["d", "d/empty", "d/f.txt", "ln"]
        assert members["ln"].linkname == "d/f.txt"
        extracted = tar.extractfile("d/f.txt")
        assert extracted is not None
        assert extracted.read() == b"hello"
    assert archiver.stats.counts() == {"files": 1, "directories": 2, "symlinks": 1, "bytes": 5}


def test_file_shrinking_while_read_is_padded_and_warned(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (3 * MIB))
    calls = {"n": 0}

    def shrink_after_first_chunk() -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # header written, then one data chunk
            os.truncate(big, MIB + 10)

    data, archiver = _archive(tmp_path, shrink_after_first_chunk)
    assert any("shrank while read" in w for w in archiver.stats.warnings)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember("big.bin")
        assert member.size == 3 * MIB
        extracted = tar.extractfile(member)
        assert extracted is not None
        content = extracted.read()
    assert content[: MIB + 10] == b"x" * (MIB + 10)
    assert content[MIB + 10 :] == bytes(2 * MIB - 10)


def test_file_vanishing_before_it_is_read_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "b.txt").write_text("second")

    def remove_b() -> None:
        (tmp_path / "b.txt").unlink(missing_ok=True)

    data, archiver = _archive(tmp_path, remove_b)
    assert archiver.stats.warnings == ["vanished while read: b.txt"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["a.txt"]
