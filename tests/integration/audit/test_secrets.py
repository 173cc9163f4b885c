"""The source database's password appears nowhere the operator or the runner writes to.

Searched for literally in: the operator's log, Events, the backups' status, the Jobs,
the audit documents, and the real runner's output when it cannot reach the database.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

from tests.integration.runner.runner_cli import run_runner
from tests.support.backups import backup_path, create, database_backup, wait_for_phase
from tests.support.kube import Kube, resource_path
from tests.support.operator import OperatorProcess
from tests.support.podplayer import CONTEXT_KEY, PodOutcome, PodPlayer, default_outcome
from tests.support.waiting import wait_for


def test_the_database_password_never_leaks(
    kube: Kube,
    namespace: str,
    audited_operator: OperatorProcess,
    pod_player: PodPlayer,
    audit_documents: Any,
    tmp_path: Path,
) -> None:
    password = f"pw-{secrets.token_hex(8)}"
    # Nothing listens on port 1: the runner fails to connect, as with a wrong host.
    uri = f"mongodb://backup:{password}@127.0.0.1:1/shop?authSource=admin"
    kube.create(resource_path("v1", "secrets", namespace), {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "mongo", "namespace": namespace},
        "data": {"uri": base64.b64encode(uri.encode()).decode()},
    })  # fmt: skip

    # The real runner with that URI: its output, and the result it would report.
    uri_file = tmp_path / "uri"
    uri_file.write_text(uri)
    termination_log = tmp_path / "termination-log"
    run = run_runner("database", "--uri-file", uri_file, "--dest-root", tmp_path / "storage",
                     "--prefix", f"{namespace}/broken", "--compression", "gzip",
                     "--termination-log", termination_log, timeout=120)  # fmt: skip
    assert run.code != 0
    assert not run.result["ok"]
    runner_output = run.stdout + run.stderr + termination_log.read_text()
    assert "127.0.0.1:1" in runner_output or run.result["reason"] == "SourceUnreachable"
    assert password not in runner_output

    # One backup succeeds; one fails with exactly what the runner reported.
    failure = termination_log.read_text()

    def outcome(pod: dict[str, Any]) -> PodOutcome:
        if pod.get(CONTEXT_KEY, {}).get("ownerName") == "broken":
            return PodOutcome(1, failure)
        return default_outcome(pod)

    pod_player.outcome = outcome
    create(kube, database_backup(namespace, "fine", backoffLimit=0))
    create(kube, database_backup(namespace, "broken", backoffLimit=0))
    wait_for_phase(kube, "DatabaseBackup", namespace, "fine", ("Succeeded",), timeout=120)
    broken = wait_for_phase(kube, "DatabaseBackup", namespace, "broken", ("Failed",), timeout=120)
    assert broken["status"]["message"].startswith("Backup failed: ")

    def audit_complete() -> list[dict[str, Any]] | None:
        documents = audit_documents(namespace)
        return documents if len(documents) == 6 else None

    documents = wait_for(audit_complete, 60, "the audit documents of both backups")
    places = {
        "operator log": audited_operator.log(),
        "events": json.dumps(kube.items(resource_path("v1", "events", namespace))),
        "backups": json.dumps(kube.items(backup_path("DatabaseBackup", namespace))),
        "jobs": json.dumps(kube.items(resource_path("batch/v1", "jobs", namespace))),
        "pods": json.dumps(kube.items(resource_path("v1", "pods", namespace))),
        "audit": json.dumps(documents, default=str),
    }
    assert {place: password in text for place, text in places.items()} == dict.fromkeys(
        places, False
    )
    assert "backup_failed" in places["audit"]
