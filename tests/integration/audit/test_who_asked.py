"""Who asked: each user's own credentials reach status and audit; nobody can forge them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.audit.conftest import (
    REQUESTED_BY,
    REQUESTED_BY_GROUPS,
    MakeUser,
    StartAudited,
)
from tests.support.backups import (
    backup_path,
    create,
    database_backup,
    files_backup,
    wait_for_phase,
)
from tests.support.kube import MERGE_PATCH, ApiException, Kube
from tests.support.operator import OperatorProcess
from tests.support.podplayer import PodPlayer
from tests.support.waiting import wait_for

APPLY_PATCH = "application/apply-patch+yaml"
ACTIONS = {
    "DatabaseBackup": ["database_backup_requested", "database_backup_started",
                       "database_backup_created"],
    "FilesBackup": ["files_backup_requested", "files_backup_started", "files_backup_created"],
}  # fmt: skip


def _annotated(manifest: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    manifest["metadata"]["annotations"] = annotations
    return manifest


def test_each_user_is_named_in_status_and_audit(
    kube: Kube,
    namespace: str,
    audited_operator: OperatorProcess,
    pod_player: PodPlayer,
    make_user: MakeUser,
    audit_documents: Any,
) -> None:
    alice = make_user("alice", ("backup-admins",))
    bob = make_user("bob", ("ops", "oncall"))
    mine = create(alice, database_backup(namespace, "alices"))
    his = create(bob, files_backup(namespace, "bobs"))
    expected = {
        mine["metadata"]["uid"]: ("DatabaseBackup", "alice", ["backup-admins"]),
        his["metadata"]["uid"]: ("FilesBackup", "bob", ["ops", "oncall"]),
    }
    for stored, (kind, user, groups) in zip((mine, his), expected.values(), strict=True):
        annotations = stored["metadata"]["annotations"]
        assert annotations[REQUESTED_BY] == user
        assert json.loads(annotations[REQUESTED_BY_GROUPS]) == [*groups, "system:authenticated"]
        done = wait_for_phase(kube, kind, namespace, stored["metadata"]["name"], ("Succeeded",))
        assert done["status"]["requestedBy"] == user

    def all_written() -> list[dict[str, Any]] | None:
        documents = audit_documents(namespace)
        return documents if len(documents) == 6 else None

    documents = wait_for(all_written, 60, "six audit documents")
    for uid, (kind, user, groups) in expected.items():
        own = [d for d in documents if d["resource"]["uid"] == uid]
        assert [d["action"] for d in own] == ACTIONS[kind]
        for document in own:
            assert document["user"] == {
                "username": user,
                "groups": [*groups, "system:authenticated"],
            }
            assert document["resource"]["kind"] == kind


def test_a_forged_requested_by_is_overwritten_then_refused(
    kube: Kube,
    namespace: str,
    start_audited: StartAudited,
    make_user: MakeUser,
) -> None:
    mallory = make_user("mallory", ("interns",))
    forged = {REQUESTED_BY: "alice", REQUESTED_BY_GROUPS: '["system:masters"]'}

    # With the operator up, the webhook overwrites whatever the user sent.
    operator = start_audited()
    stored = create(mallory, _annotated(database_backup(namespace, "forged-up"), dict(forged)))
    assert stored["metadata"]["annotations"][REQUESTED_BY] == "mallory"
    assert stored["metadata"]["annotations"][REQUESTED_BY_GROUPS] == (
        '["interns","system:authenticated"]'
    )
    phases = ("Pending", "Queued", "Running", "Succeeded")
    done = wait_for_phase(kube, "DatabaseBackup", namespace, "forged-up", phases)
    assert done["status"]["requestedBy"] == "mallory"

    # A GitOps tool re-applying its manifest (server-side apply) does not own the
    # annotations the webhook added, so it neither removes them nor is refused.
    gitops = database_backup(namespace, "gitops")
    apply = {"fieldManager": "argocd", "force": True}
    for _ in range(2):
        applied = mallory.request("PATCH", backup_path("DatabaseBackup", namespace, "gitops"),
                                  gitops, query=apply, content_type=APPLY_PATCH)  # fmt: skip
        assert applied["metadata"]["annotations"][REQUESTED_BY] == "mallory"

    # With the operator down, no webhook answers: the policy in the API server refuses.
    assert "ValidatingAdmissionPolicy backup-operator-requested-by applied" in operator.log()
    operator.stop()
    for name, given in (
        ("forged-down", dict(forged)),
        ("forged-groups", {REQUESTED_BY_GROUPS: '["system:masters"]'}),
        ("forged-name", {REQUESTED_BY: "alice"}),
    ):
        with pytest.raises(ApiException) as refused:
            create(mallory, _annotated(database_backup(namespace, name), given))
        assert refused.value.status in (403, 422), refused.value.body
        assert "backup.operator.dev/requested-by" in refused.value.body

    # Without the webhook a backup can still be created: who asked stays unrecorded.
    plain = create(mallory, database_backup(namespace, "plain"))
    assert REQUESTED_BY not in (plain["metadata"].get("annotations") or {})
    # Giving one's own name is allowed (it is the truth).
    honest = create(mallory, _annotated(database_backup(namespace, "honest"),
                                        {REQUESTED_BY: "mallory"}))  # fmt: skip
    assert honest["metadata"]["annotations"][REQUESTED_BY] == "mallory"

    # Later changes are refused, for the user and for a cluster admin alike.
    path = backup_path("DatabaseBackup", namespace, "forged-up")
    changes: list[dict[str, str | None]] = [
        {REQUESTED_BY: "alice"},
        {REQUESTED_BY: None},
        {REQUESTED_BY_GROUPS: '["system:masters"]'},
    ]
    for client in (mallory, kube):
        for change in changes:
            with pytest.raises(ApiException) as refused:
                client.patch(path, {"metadata": {"annotations": change}},
                             content_type=MERGE_PATCH)  # fmt: skip
            assert refused.value.status in (403, 422), refused.value.body
    with pytest.raises(ApiException):
        mallory.patch(backup_path("DatabaseBackup", namespace, "plain"),
                      {"metadata": {"annotations": {REQUESTED_BY: "mallory"}}},
                      content_type=MERGE_PATCH)  # fmt: skip
    # Other annotations can still change.
    mallory.patch(path, {"metadata": {"annotations": {"note": "x"}}},
                  content_type=MERGE_PATCH)  # fmt: skip
    assert kube.get(path)["metadata"]["annotations"][REQUESTED_BY] == "mallory"
