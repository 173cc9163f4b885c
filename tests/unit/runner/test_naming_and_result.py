"""Artifact naming, the termination-message contract and redaction."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from backup_operator.runner.errors import RunnerError
from backup_operator.runner.naming import (
    checked_prefix,
    database_artifact_name,
    files_artifact_name,
)
from backup_operator.runner.redact import one_line, redact, secrets_of
from backup_operator.runner.result import RunnerResult, parse_termination_message

NOW = datetime(2026, 12, 4, 2, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("compression", "database", "files"),
    [
        (
            "gzip",
            "mongodb_backup_20261204_020005.archive.gz",
            "files_backup_20261204_020005.tar.gz",
        ),
        (
            "zstd",
            "mongodb_backup_20261204_020005.archive.zst",
            "files_backup_20261204_020005.tar.zst",
        ),
        ("none", "mongodb_backup_20261204_020005.archive", "files_backup_20261204_020005.tar"),
    ],
)
def test_artifact_names_follow_the_old_service(compression: str, database: str, files: str) -> None:
    assert database_artifact_name(NOW, compression) == database  # type: ignore[arg-type]
    assert files_artifact_name(NOW, compression) == files  # type: ignore[arg-type]


def test_names_use_utc_whatever_the_local_zone() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=5)))
    assert database_artifact_name(local, "gzip") == database_artifact_name(NOW, "gzip")


@pytest.mark.parametrize("prefix", ["/abs/x", "../x", "a/../../b", "", "."])
def test_prefix_must_stay_inside_the_storage(prefix: str) -> None:
    with pytest.raises(RunnerError) as info:
        checked_prefix(prefix)
    assert info.value.reason == "InvalidArguments"


def test_prefix_accepts_namespace_and_name() -> None:
    assert str(checked_prefix("shop/nightly")) == "shop/nightly"


def test_success_result_renders_camel_case_json() -> None:
    result = RunnerResult(
        ok=True,
        path="ns/n/f.tar.gz",
        size_bytes=10,
        sha256="ab" * 32,
        compression="gzip",
        duration_seconds=1.5,
        counts={"files": 2},
    )
    data = json.loads(result.render())
    assert data == {
        "ok": True,
        "path": "ns/n/f.tar.gz",
        "sizeBytes": 10,
        "sha256": "ab" * 32,
        "compression": "gzip",
        "durationSeconds": 1.5,
        "counts": {"files": 2},
    }
    assert parse_termination_message(result.render()) == result


def test_long_lists_are_cut_to_fit_with_a_count() -> None:
    warnings = [f"changed while read: dir/file-{i:05d}-" + "x" * 80 for i in range(500)]
    result = RunnerResult(ok=True, path="p", warnings=warnings)
    message = result.render()
    assert len(message.encode()) < 4096
    parsed = parse_termination_message(message)
    assert parsed.warnings == warnings[: len(parsed.warnings)]
    assert len(parsed.warnings) + parsed.warnings_dropped == 500
    assert parsed.warnings_dropped > 0


def test_failure_details_and_huge_error_fit() -> None:
    result = RunnerResult.failure(
        "UnreadableFiles", "é" * 5000, [f"f{i}: denied" for i in range(900)]
    )
    message = result.render()
    assert len(message.encode()) < 4096
    parsed = parse_termination_message(message)
    assert parsed.reason == "UnreadableFiles"
    assert parsed.details_dropped + len(parsed.details) == 900


@pytest.mark.parametrize(
    "garbage", [None, "", b"\xff\xfe", "not json", "[1,2]", '{"ok": "maybe"}', "{" * 5000]
)
def test_parse_never_raises_on_garbage(garbage: str | bytes | None) -> None:
    parsed = parse_termination_message(garbage)
    assert parsed.ok is False
    assert parsed.reason == "InvalidTerminationMessage"


def test_parse_takes_the_last_json_line_of_logs() -> None:
    text = 'log line\n{"ok": false, "reason": "X", "error": "old"}\n{"ok": true, "path": "p"}\n'
    assert parse_termination_message(text).path == "p"


def test_redact_masks_userinfo_and_password_literal() -> None:
    uri = "mongodb://admin:s3cr%40t@db.example:27017/?authSource=admin"
    secrets = secrets_of(uri)
    message = f"failed for {uri}: bad password s3cr@t and s3cr%40t, password=hunter2"
    out = redact(message, secrets)
    assert "s3cr" not in out
    assert "hunter2" not in out
    assert "//admin" not in out
    assert "mongodb://***@db.example:27017" in out


def test_one_line_collapses_and_cuts() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 1000, limit=50)) == 50
