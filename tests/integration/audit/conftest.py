"""Fixtures of the audit and who-asked tests: the operator with its webhook and a MongoDB
audit sink, users with their own client certificates, and the audit documents.

Why it exists: these tests need the operator as it would run in a cluster with the
admission webhook enabled (``BACKUP_WEBHOOK=url:https://127.0.0.1:PORT``, the API server
calling the operator on the host) and auditing to FerretDB, plus users other than the
admin, each with only the rights a backup admin has in the test namespace.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.backups import conftest as backups_fixtures
from tests.integration.backups.conftest import StartOperator
from tests.support.backups import backup_path, database_backup
from tests.support.controlplane import ControlPlane
from tests.support.ferretdb import FerretDB
from tests.support.kube import ApiException, Kube, resource_path
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for

AUDIT_DATABASE = "backup_operator"
AUDIT_COLLECTION = "audit_logs"
REQUESTED_BY = "backup.operator.dev/requested-by"
REQUESTED_BY_GROUPS = "backup.operator.dev/requested-by-groups"
WEBHOOK_CONFIGURATION = "backup.operator.dev"
ADMISSION = "admissionregistration.k8s.io/v1"

# The operator fixture of the backup tests (pytest finds fixtures bound in a conftest).
start_operator = backups_fixtures.start_operator

MakeUser = Callable[..., Kube]
StartAudited = Callable[[], OperatorProcess]


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def audit_uri_file(mongo: FerretDB, tmp_path: Path) -> Path:
    """The audit MongoDB URI in a file, as the mounted Secret would hold it."""
    path = tmp_path / "audit-uri"
    path.write_text(mongo.uri)
    path.chmod(0o600)
    return path


@pytest.fixture
def webhook_port() -> int:
    return _free_port()


@pytest.fixture
def start_audited(
    start_operator: StartOperator,
    namespace: str,
    audit_uri_file: Path,
    webhook_port: int,
    kube: Kube,
) -> Iterator[StartAudited]:
    """``start_audited()``: an operator with the webhook on ``webhook_port`` and the audit in
    FerretDB; returns once the API server calls the webhook."""

    def start() -> OperatorProcess:
        env = {
            "BACKUP_WEBHOOK": f"url:https://127.0.0.1:{webhook_port}",
            "BACKUP_AUDIT_URI_FILE": str(audit_uri_file),
        }
        process = start_operator([namespace], env=env)
        wait_for(lambda: _webhook_answers(kube, namespace), 60, "the webhook to be called")
        return process

    yield start
    # The webhook configuration points at this test's port: remove it. The policy stays for
    # the session (each operator start replaces it; it refuses only forged annotations):
    # deleting and re-creating it between tests once left the API server without it for a
    # while (seen 1 run in ~10).
    with contextlib.suppress(ApiException):
        kube.delete(resource_path(ADMISSION, "mutatingwebhookconfigurations",
                                  name=WEBHOOK_CONFIGURATION))  # fmt: skip


def _webhook_answers(client: Kube, namespace: str) -> bool:
    """A dry-run create comes back annotated: the API server calls our webhook."""
    probe = database_backup(namespace, "webhook-probe")
    stored = client.request(
        "POST", backup_path("DatabaseBackup", namespace), probe, query={"dryRun": "All"}
    )
    return REQUESTED_BY in (stored["metadata"].get("annotations") or {})


@pytest.fixture
def audited_operator(start_audited: StartAudited) -> OperatorProcess:
    return start_audited()


@pytest.fixture
def make_user(control_plane: ControlPlane, kube: Kube, namespace: str) -> Iterator[MakeUser]:
    """``make_user(name, groups)``: a client authenticating with its own client certificate,
    allowed to create, read and change backups in the test namespace (a RoleBinding)."""
    kube.create(
        resource_path("rbac.authorization.k8s.io/v1", "roles", namespace),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "backup-user", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["backup.operator.dev"],
                    "resources": ["databasebackups", "filesbackups"],
                    "verbs": ["create", "get", "list", "watch", "patch", "update"],
                }
            ],
        },
    )
    clients: list[Kube] = []

    def make(username: str, groups: tuple[str, ...] = ()) -> Kube:
        kube.create(
            resource_path("rbac.authorization.k8s.io/v1", "rolebindings", namespace),
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"backup-user-{username}", "namespace": namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "backup-user",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": username}
                ],
            },
        )
        client = Kube(control_plane.make_user_kubeconfig(username, list(groups)))
        clients.append(client)
        # RBAC is read from an informer: wait until the binding is in force.
        wait_for(
            lambda: client.items(backup_path("DatabaseBackup", namespace)) is not None,
            30,
            f"{username} to be allowed to list backups",
            ignore=(ApiException,),
        )
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def audit_documents(mongo: FerretDB) -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """``audit_documents(namespace)``: the audit documents of one namespace, oldest first."""
    client = mongo.client()

    def find(namespace: str) -> list[dict[str, Any]]:
        collection = client[AUDIT_DATABASE][AUDIT_COLLECTION]
        documents = list(collection.find({"resource.namespace": namespace}))
        return sorted(documents, key=lambda d: (d["timestamp"], d["_id"]))

    yield find
    client.close()
