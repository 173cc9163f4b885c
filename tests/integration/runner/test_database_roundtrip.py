"""``runner database`` -> ``runner restore-database`` against a real FerretDB server.

Seeds several collections (nested documents, binary data, 12k+ documents, secondary and
unique indexes, an empty collection), dumps them with the builtin dumper, restores them
into a fresh database and compares document by document and index by index. Also: the
archive is a valid mongodump archive, wrong hosts and bad credentials end in clear,
redacted messages.
"""

from __future__ import annotations

import datetime
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
from bson import Binary, Int64, ObjectId

from tests.integration.runner.runner_cli import Run, run_runner
from tests.support.ferretdb import FerretDB
from tests.support.processes import free_port

ITEMS = 12_000


def _item(i: int) -> dict[str, Any]:
    return {
        "_id": i,
        "sku": f"SKU-{i:06d}",
        "price": i * 1.25,
        "big": Int64(i * 10**12),
        "active": i % 3 == 0,
        "tags": ["a", "b", str(i % 17)],
        "nested": {"level": {"deeper": {"i": i, "list": [{"k": j} for j in range(i % 4)]}}},
        "blob": Binary(bytes((i + j) % 256 for j in range(i % 300))),
        "when": datetime.datetime(2026, 1, 1) + datetime.timedelta(seconds=i),
        "nothing": None,
        "name": f"ünïcödé ✓ {i}",
    }


@pytest.fixture(scope="module")
def source_db(mongo: FerretDB) -> Iterator[str]:
    name = f"src_{secrets.token_hex(3)}"
    client = mongo.client()
    db = client[name]
    db.items.insert_many([_item(i) for i in range(ITEMS)])
    db.items.create_index([("sku", 1)], name="sku_unique", unique=True)
    db.items.create_index([("active", 1), ("price", -1)], name="active_price")
    db.users.insert_many(
        [{"_id": ObjectId(), "email": f"u{i}@x.io", "roles": ["r"]} for i in range(50)]
    )
    db.users.create_index("email", unique=True)
    db.create_collection("empty")
    yield name
    client.drop_database(name)
    client.close()


def _uri_file(tmp_path: Path, uri: str) -> Path:
    path = tmp_path / "uri"
    path.write_text(f"  {uri}\n")
    return path


def dump(uri_file: Path, dest: Path, database: str | None, compression: str) -> Run:
    args = ["--database", database] if database else []
    return run_runner(
        "database",
        "--uri-file",
        uri_file,
        *args,
        "--dest-root",
        dest,
        "--prefix",
        "shop/db",
        "--compression",
        compression,
        "--dumper",
        "builtin",
        "--termination-log",
        dest / "termination-log",
    )


def restore(uri_file: Path, artifact: Path, sha: str, *extra: str) -> Run:
    return run_runner(
        "restore-database",
        "--uri-file",
        uri_file,
        "--archive",
        artifact,
        "--sha256",
        sha,
        "--restorer",
        "builtin",
        *extra,
    )


def _indexes(
    client: pymongo.MongoClient[dict[str, Any]], db: str, coll: str
) -> list[tuple[Any, ...]]:
    return sorted(
        (ix["name"], tuple(ix["key"].items()), bool(ix.get("unique")))
        for ix in client[db][coll].list_indexes()
    )


def _assert_same(client: pymongo.MongoClient[dict[str, Any]], src: str, dst: str) -> None:
    assert sorted(client[dst].list_collection_names()) == ["empty", "items", "users"]
    for coll in ("items", "users", "empty"):
        left = client[src][coll].find().sort("_id", 1)
        right = client[dst][coll].find().sort("_id", 1)
        count = 0
        for a, b in zip(left, right, strict=True):
            assert a == b
            count += 1
        assert count == client[src][coll].count_documents({})
        assert _indexes(client, dst, coll) == _indexes(client, src, coll)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_dump_and_restore_into_a_fresh_database(
    mongo: FerretDB, source_db: str, tmp_path: Path, compression: str
) -> None:
    uri_file = _uri_file(tmp_path, mongo.uri)
    done = dump(uri_file, tmp_path / "storage", source_db, compression)
    assert done.code == 0, done.stdout + done.stderr
    counts = done.result["counts"]
    assert counts["collections"] == 3
    assert counts["documents"] == ITEMS + 50
    assert done.result["path"].startswith("shop/db/mongodb_backup_")
    artifact = tmp_path / "storage" / done.result["path"]

    target = f"copy_{secrets.token_hex(3)}"
    restored = restore(uri_file, artifact, done.result["sha256"], "--to-database", target)
    assert restored.code == 0, restored.stdout + restored.stderr
    assert restored.result["counts"]["documents"] == ITEMS + 50
    client = mongo.client()
    try:
        _assert_same(client, source_db, target)
        again = restore(
            uri_file, artifact, done.result["sha256"], "--to-database", target, "--drop"
        )
        assert again.code == 0, again.stdout + again.stderr
        assert again.result["counts"]["duplicatesSkipped"] == 0
        _assert_same(client, source_db, target)
    finally:
        client.drop_database(target)
        client.close()


def test_restore_without_drop_skips_existing_documents(
    mongo: FerretDB, source_db: str, tmp_path: Path
) -> None:
    uri_file = _uri_file(tmp_path, mongo.uri)
    done = dump(uri_file, tmp_path / "storage", source_db, "none")
    artifact = tmp_path / "storage" / done.result["path"]
    target = f"dup_{secrets.token_hex(3)}"
    client = mongo.client()
    try:
        client[target].users.insert_one(client[source_db].users.find_one())
        run = restore(
            uri_file,
            artifact,
            done.result["sha256"],
            "--database",
            source_db,
            "--to-database",
            target,
        )
        assert run.code == 0, run.stdout + run.stderr
        assert run.result["counts"]["duplicatesSkipped"] == 1
        assert run.result["warnings"] == ["1 document(s) skipped: duplicate key"]
    finally:
        client.drop_database(target)
        client.close()


def test_corrupted_archive_is_refused_before_restoring(
    mongo: FerretDB, source_db: str, tmp_path: Path
) -> None:
    uri_file = _uri_file(tmp_path, mongo.uri)
    done = dump(uri_file, tmp_path / "storage", source_db, "gzip")
    artifact = tmp_path / "storage" / done.result["path"]
    run = restore(uri_file, artifact, "0" * 64, "--to-database", "never_created")
    assert run.code == 1
    assert run.result["reason"] == "ChecksumMismatch"
    client = mongo.client()
    try:
        assert "never_created" not in client.list_database_names()
    finally:
        client.close()


def test_unknown_database_is_source_not_found(mongo: FerretDB, tmp_path: Path) -> None:
    run = dump(_uri_file(tmp_path, mongo.uri), tmp_path / "storage", "no_such_db_x", "gzip")
    assert run.code == 1
    assert run.result["reason"] == "SourceNotFound"


def test_wrong_port_is_source_unreachable(tmp_path: Path) -> None:
    uri = f"mongodb://127.0.0.1:{free_port()}/"
    run = dump(_uri_file(tmp_path, uri), tmp_path / "storage", "shop", "gzip")
    assert run.code == 1
    assert run.result["reason"] == "SourceUnreachable"
    assert "\n" not in run.result["error"]
    assert list((tmp_path / "storage").rglob("*.archive*")) == []


def test_bad_credentials_are_reported_without_the_password(mongo: FerretDB, tmp_path: Path) -> None:
    password = "Very$ecretPassw0rd"
    uri = f"mongodb://backup:{password}@127.0.0.1:{mongo.port}/?authSource=admin"
    run = dump(_uri_file(tmp_path, uri), tmp_path / "storage", "shop", "gzip")
    assert run.code == 1
    assert run.result["reason"] == "AuthenticationFailed"
    assert password not in run.stdout + run.stderr
    assert "backup:" not in run.result["error"]


def test_uri_file_missing_is_invalid_arguments(tmp_path: Path) -> None:
    run = dump(tmp_path / "missing", tmp_path / "storage", None, "gzip")
    assert run.code == 1
    assert run.result["reason"] == "InvalidArguments"
