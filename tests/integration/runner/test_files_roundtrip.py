"""``runner files`` -> ``runner restore-files`` through the real CLI, on a real tree.

The tree has binary and empty files, unicode names, deep directories, symlinks, a 1 GiB
sparse file and empty directories; the restore must give back the same content, modes,
mtimes and links. Also: corrupted artifacts, escaping symlinks, unreadable files, a full
disk and include/exclude selection.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.runner.runner_cli import Run, run_runner

GIB = 1 << 30
OLD = 1_500_000_000  # a fixed mtime in the past


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def make_tree(root: Path) -> None:
    """A tree with every kind of entry the runner must keep."""
    _write(root / "bin" / "random.bin", os.urandom(3 * 1024 * 1024 + 17))
    _write(root / "bin" / "run.sh", b"#!/bin/sh\necho hi\n", 0o755)
    _write(root / "empty-file", b"")
    _write(root / "private.key", b"k" * 100, 0o600)
    _write(root / "héllo wörld ✓.txt", "ünïcödé\n".encode() * 1000)
    _write(root / "日本語" / "ファイル.txt", b"nihongo")
    deep = root.joinpath(*(f"level{i}" for i in range(40)))
    _write(deep / "bottom.txt", b"deep")
    (root / "empty-dir" / "nested-empty").mkdir(parents=True)
    (root / "bin" / "link-to-random").symlink_to("random.bin")
    (root / "link-to-deep").symlink_to("level0/level1")
    (root / "dangling").symlink_to("does-not-exist")
    with (root / "sparse.img").open("wb") as handle:
        handle.truncate(GIB)
        handle.seek(GIB // 2)
        handle.write(b"middle")
        handle.seek(GIB - 4)
        handle.write(b"tail")
    for index, path in enumerate(sorted(root.rglob("*"), reverse=True)):
        os.utime(path, (OLD + index, OLD + index), follow_symlinks=False)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Relative path -> (type, mode, mtime, size or link target, content digest)."""
    entries: dict[str, tuple[object, ...]] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = path.relative_to(root).as_posix()
        if stat.S_ISLNK(st.st_mode):
            entries[rel] = ("link", int(st.st_mtime), os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            entries[rel] = ("dir", stat.S_IMODE(st.st_mode), int(st.st_mtime))
        else:
            mode, mtime = stat.S_IMODE(st.st_mode), int(st.st_mtime)
            entries[rel] = ("file", mode, mtime, st.st_size, _digest(path))
    return entries


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree") / "source"
    make_tree(root)
    return root


def backup(source: Path, dest: Path, compression: str, *extra: str) -> Run:
    return run_runner(
        "files",
        "--source",
        source,
        "--dest-root",
        dest,
        "--prefix",
        "shop/nightly",
        "--compression",
        compression,
        "--termination-log",
        dest / "termination-log",
        *extra,
    )


def restore(artifact: Path, sha256: str, target: Path) -> Run:
    return run_runner(
        "restore-files", "--archive", artifact, "--sha256", sha256, "--target", target
    )


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_round_trip_keeps_content_and_metadata(
    tree: Path, tmp_path: Path, compression: str
) -> None:
    done = backup(tree, tmp_path / "storage", compression)
    assert done.code == 0, done.stdout + done.stderr
    result = done.result
    assert result["ok"] is True
    artifact = tmp_path / "storage" / result["path"]
    assert result["path"].startswith("shop/nightly/files_backup_")
    assert result["sizeBytes"] == artifact.stat().st_size
    assert result["sha256"] == _digest(artifact)
    assert result["counts"]["symlinks"] == 3
    assert result["counts"]["bytes"] >= GIB
    assert (tmp_path / "storage" / "termination-log").read_text().strip() == done.stdout.strip()
    assert list(artifact.parent.glob("*.partial")) == []

    restored = restore(artifact, result["sha256"], tmp_path / "restored")
    assert restored.code == 0, restored.stdout + restored.stderr
    assert snapshot(tmp_path / "restored") == snapshot(tree)
    sparse = (tmp_path / "restored" / "sparse.img").stat()
    assert sparse.st_blocks * 512 < 64 * 1024 * 1024, "the sparse file was restored dense"


def test_corrupted_artifact_is_refused_before_writing(tree: Path, tmp_path: Path) -> None:
    done = backup(tree, tmp_path / "storage", "zstd")
    artifact = tmp_path / "storage" / done.result["path"]
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    refused = restore(artifact, done.result["sha256"], tmp_path / "restored")
    assert refused.code == 1
    assert refused.result["reason"] == "ChecksumMismatch"
    assert not (tmp_path / "restored").exists()


def test_symlink_pointing_outside_is_stored_not_followed_and_refused_on_restore(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "outside" / "secret.txt", b"TOP-SECRET-CONTENT")
    source = tmp_path / "source"
    _write(source / "ok.txt", b"fine")
    (source / "escape").symlink_to("../outside/secret.txt")
    (source / "absolute").symlink_to(tmp_path / "outside" / "secret.txt")
    done = backup(source, tmp_path / "storage", "none")
    assert done.code == 0, done.stdout + done.stderr
    artifact = tmp_path / "storage" / done.result["path"]
    with tarfile.open(artifact) as tar:
        kinds = {m.name: (m.type, m.linkname) for m in tar.getmembers()}
    assert kinds["escape"] == (tarfile.SYMTYPE, "../outside/secret.txt")
    assert b"TOP-SECRET-CONTENT" not in artifact.read_bytes()

    refused = restore(artifact, done.result["sha256"], tmp_path / "restored")
    assert refused.code == 1
    assert refused.result["reason"] == "UnsafeArchive"
    assert "escape" in refused.result["error"] or "absolute" in refused.result["error"]
    assert not (tmp_path / "restored").exists()


def _without_dac_override() -> list[str]:
    """A command prefix that runs as root without the power to ignore file modes."""
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", "--"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop capabilities")
def test_unreadable_files_fail_the_run_unless_partial_is_allowed(tmp_path: Path) -> None:
    source = tmp_path / "source"
    _write(source / "readable.txt", b"yes")
    _write(source / "locked.txt", b"no", 0o000)
    run = run_runner(
        "files",
        "--source",
        source,
        "--dest-root",
        tmp_path / "storage",
        "--prefix",
        "a/b",
        "--compression",
        "gzip",
        prefix=_without_dac_override(),
    )
    assert run.code == 1
    assert run.result["reason"] == "UnreadableFiles"
    assert run.result["details"] == ["locked.txt: Permission denied"]
    assert list((tmp_path / "storage" / "a" / "b").iterdir()) == []

    partial = run_runner(
        "files",
        "--source",
        source,
        "--dest-root",
        tmp_path / "storage",
        "--prefix",
        "a/b",
        "--compression",
        "gzip",
        "--allow-partial",
        prefix=_without_dac_override(),
    )
    assert partial.code == 0
    assert partial.result["counts"]["files"] == 1
    assert partial.result["warnings"] == ["unreadable, not archived: locked.txt: Permission denied"]


def test_include_and_exclude_select_paths(tmp_path: Path) -> None:
    source = tmp_path / "source"
    for name in ("data/a.txt", "data/cache/tmp.bin", "data/x.log", "other/b.txt", "top.log"):
        _write(source / name, name.encode())
    done = backup(
        source,
        tmp_path / "storage",
        "zstd",
        "--include",
        "data",
        "--exclude",
        "*.log",
        "--exclude",
        "data/cache/",
    )
    assert done.code == 0, done.stdout + done.stderr
    artifact = tmp_path / "storage" / done.result["path"]
    restored = restore(artifact, done.result["sha256"], tmp_path / "restored")
    assert restored.code == 0
    assert sorted(
        p.relative_to(tmp_path / "restored").as_posix() for p in (tmp_path / "restored").rglob("*")
    ) == ["data", "data/a.txt"]


def test_missing_source_is_source_not_found(tmp_path: Path) -> None:
    run = backup(tmp_path / "nope", tmp_path / "storage", "gzip")
    assert run.code == 1
    assert run.result["reason"] == "SourceNotFound"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tiny"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_ends_in_no_space_left(tmp_path: Path, tiny_disk: Path) -> None:
    source = tmp_path / "source"
    _write(source / "noise.bin", os.urandom(4 * 1024 * 1024))
    run = backup(source, tiny_disk, "zstd")
    assert run.code == 1
    assert run.result["reason"] == "NoSpaceLeft"
    assert "no space left" in run.result["error"].lower()
    leftovers = [p for p in tiny_disk.rglob("*") if p.is_file()]
    assert leftovers == [p for p in leftovers if p.name == "termination-log"]
