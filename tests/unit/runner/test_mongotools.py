"""mongodump/mongorestore command lines: the URI only ever goes to a 0600 config file."""

import stat
from pathlib import Path

import yaml

from backup_operator.runner.mongotools import (
    failure_from_stderr,
    mongodump_argv,
    mongorestore_argv,
    uri_config,
)

URI = "mongodb://backup:pa55w0rd@mongo.shop.svc:27017/?authSource=admin"


def test_config_file_is_private_and_removed() -> None:
    with uri_config(URI) as path:
        mode = stat.S_IMODE(path.stat().st_mode)
        content = yaml.safe_load(path.read_text())
        kept = path
    assert mode == 0o600
    assert content == {"uri": URI}
    assert not kept.exists()
    assert not kept.parent.exists()


def test_mongodump_argv_has_no_uri() -> None:
    config = Path("/tmp/runner-x/mongo-tools.yaml")
    argv = mongodump_argv("/usr/bin/mongodump", config, "shop")
    assert argv == ["/usr/bin/mongodump", f"--config={config}", "--archive", "--db=shop"]
    assert not any("pa55w0rd" in a or "mongodb://" in a for a in argv)


def test_mongodump_argv_all_databases() -> None:
    argv = mongodump_argv("mongodump", Path("/c.yaml"), None)
    assert not any(a.startswith("--db") for a in argv)


def test_mongorestore_argv_renames_a_database() -> None:
    argv = mongorestore_argv(
        "mongorestore", Path("/c.yaml"), database="shop", to_database="shop_copy", drop=True
    )
    assert argv == [
        "mongorestore",
        "--config=/c.yaml",
        "--archive",
        "--nsInclude=shop.*",
        "--nsFrom=shop.*",
        "--nsTo=shop_copy.*",
        "--drop",
    ]


def test_stderr_maps_to_reasons_and_is_redacted() -> None:
    auth = failure_from_stderr(
        [f"error connecting to {URI}: Authentication failed."], URI, "DumpFailed"
    )
    assert auth.reason == "AuthenticationFailed"
    assert "pa55w0rd" not in auth.message
    unreachable = failure_from_stderr(
        ["Failed: can't create session: server selection error"], URI, "DumpFailed"
    )
    assert unreachable.reason == "SourceUnreachable"
    other = failure_from_stderr(["Failed: boom"], URI, "DumpFailed")
    assert (other.reason, other.message) == ("DumpFailed", "Failed: boom")
