"""``delete-artifact``: removes one artifact and its empty folders, never outside the root."""

from __future__ import annotations

from pathlib import Path

import pytest

from backup_operator.runner.commands import delete_artifact
from backup_operator.runner.errors import RunnerError


def test_deletes_the_file_and_empty_folders(tmp_path: Path) -> None:
    artifact = tmp_path / "shop" / "nightly" / "files_backup_20261204_020000.tar.zst"
    artifact.parent.mkdir(parents=True)
    artifact.write_bytes(b"x")
    (tmp_path / "shop" / "other").mkdir()
    result = delete_artifact(tmp_path, "shop/nightly/files_backup_20261204_020000.tar.zst")
    assert result.ok and result.counts == {"deleted": 1}
    assert not (tmp_path / "shop" / "nightly").exists()
    assert (tmp_path / "shop" / "other").is_dir()  # not empty: kept


def test_missing_file_is_already_deleted(tmp_path: Path) -> None:
    result = delete_artifact(tmp_path, "shop/nightly/gone.tar.gz")
    assert result.ok and result.counts == {"deleted": 0}


@pytest.mark.parametrize("path", ["/etc/passwd", "shop/../../etc/passwd", ""])
def test_refuses_paths_outside_the_storage(tmp_path: Path, path: str) -> None:
    with pytest.raises(RunnerError) as caught:
        delete_artifact(tmp_path, path)
    assert caught.value.reason == "InvalidArguments"
