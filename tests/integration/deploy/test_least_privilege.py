"""Least privilege, proven on the real API server.

The operator runs under its ServiceAccount's token (RBAC from the rendered overlay, not
admin) and completes a backup whose Job pod is admitted in a namespace enforcing the
`restricted` Pod Security Standard; and what the account may do is listed
(SelfSubjectRulesReview) and compared with an allow-list: no wildcard, nothing more.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from tests.integration.deploy.conftest import (
    SERVICE_ACCOUNT,
    create,
    delete_cluster_rbac,
    install_rbac,
    pick,
    render,
    samples,
    service_account_kubeconfig,
)
from tests.support.backups import condition, wait_for_phase
from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube, resource_path
from tests.support.operator import OperatorProcess
from tests.support.podplayer import PodPlayer

# Everything the operator needs: the calls in operator/backup_operator/k8s.py and kopf's.
# (group, resource, verb). Adding to it is a security decision: say why in the Role.
ALLOWED = {
    *{("backup.operator.dev", r, v)
      for r in ("databasebackups", "filesbackups") for v in ("get", "list", "watch", "patch")},
    ("backup.operator.dev", "databasebackups/status", "patch"),
    ("backup.operator.dev", "filesbackups/status", "patch"),
    ("backup.operator.dev", "databasebackups/finalizers", "update"),
    ("backup.operator.dev", "filesbackups/finalizers", "update"),
    *{("batch", "jobs", v) for v in ("get", "list", "watch", "create")},
    ("", "pods", "list"),
    ("", "events", "create"),
    *{("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")},
}  # fmt: skip

Rule = tuple[str, str, str]


def rules_of(kube: Kube, namespace: str) -> tuple[set[Rule], set[tuple[str, str]], list[str]]:
    """(resource rules, non-resource rules, wildcards found) of the client's own account."""
    review = kube.create(
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
         "spec": {"namespace": namespace}},
    )  # fmt: skip
    status = review["status"]
    assert not status.get("incomplete"), status.get("evaluationError")
    rules: set[Rule] = set()
    wildcards: list[str] = []
    for rule in status.get("resourceRules", []):
        if rule.get("resourceNames"):
            continue  # narrower than the resource; none of ours uses them
        for field in ("verbs", "apiGroups", "resources"):
            if any("*" in x for x in rule.get(field, [])):
                wildcards.append(f"{field} in {rule}")
        rules |= {(g, r, v) for g in rule.get("apiGroups", [""])
                  for r in rule["resources"] for v in rule["verbs"]}  # fmt: skip
    non_resource = {(url, verb) for rule in status.get("nonResourceRules", [])
                    for url in rule["nonResourceURLs"] for verb in rule["verbs"]}  # fmt: skip
    wildcards += [f"non-resource verb {v} on {u}" for u, v in non_resource if v == "*"]
    return rules, non_resource, wildcards


@pytest.mark.parametrize("overlay", ["namespaced", "cluster"])
def test_service_account_may_do_exactly_what_it_needs(
    control_plane: ControlPlane, kube: Kube, namespace: str, overlay: str, tmp_path: Path
) -> None:
    objects = render(overlay, namespace, tmp_path / "render")
    suffix = secrets.token_hex(3)
    for binding in pick(objects, "ClusterRoleBinding"):
        binding["subjects"][0]["namespace"] = namespace
    install_rbac(kube, objects, suffix)
    try:
        as_operator = service_account_kubeconfig(
            control_plane, kube, namespace, SERVICE_ACCOUNT, tmp_path / "operator.kubeconfig"
        )
        # What every account may do (discovery, self reviews): the `default` account's rules.
        as_nobody = service_account_kubeconfig(
            control_plane, kube, namespace, "default", tmp_path / "default.kubeconfig"
        )
        with Kube(as_operator) as operator, Kube(as_nobody) as nobody:
            granted, non_resource, wildcards = rules_of(operator, namespace)
            baseline, baseline_non_resource, _ = rules_of(nobody, namespace)
    finally:
        delete_cluster_rbac(kube, suffix)
    assert not wildcards, "wildcard grants:\n" + "\n".join(wildcards)
    assert non_resource == baseline_non_resource
    extra = granted - baseline - ALLOWED
    missing = ALLOWED - granted
    assert not extra, f"granted beyond the allow-list: {sorted(extra)}"
    assert not missing, f"the allow-list names rules not granted: {sorted(missing)}"


def test_operator_completes_a_backup_under_its_service_account(
    control_plane: ControlPlane,
    kube: Kube,
    crds: None,
    namespace: str,
    pod_player: PodPlayer,
    tmp_path: Path,
) -> None:
    objects = render("namespaced", namespace, tmp_path / "render")
    install_rbac(kube, objects, "unused")
    kubeconfig = service_account_kubeconfig(
        control_plane, kube, namespace, SERVICE_ACCOUNT, tmp_path / "operator.kubeconfig"
    )
    for sample in samples():  # the Secret, the PVCs, one backup of each kind
        sample["metadata"]["namespace"] = namespace
        create(kube, sample)
    log = tmp_path / "operator.log"
    operator = OperatorProcess(kubeconfig, [namespace], log)
    operator.start()
    try:
        done = [
            wait_for_phase(kube, "DatabaseBackup", namespace, "shop-sample", ("Succeeded",)),
            wait_for_phase(kube, "FilesBackup", namespace, "uploads-sample", ("Succeeded",)),
        ]
    finally:
        operator.stop()
    ns = kube.get(resource_path("v1", "namespaces", name=namespace))
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for backup in done:
        assert condition(backup, "Succeeded")["status"] == "True"
        # The Job's pod was admitted by PodSecurity in a namespace enforcing `restricted`.
        job_name = backup["status"]["jobName"]
        pods = kube.items(
            resource_path("v1", "pods", namespace), labelSelector=f"job-name={job_name}"
        )
        assert pods, f"no pod of Job {job_name}"
        assert pods[0]["spec"]["automountServiceAccountToken"] is False
    # A refused call the operator survives (e.g. kopf patching its annotations) still
    # shows in its log: least privilege must not cost a single one.
    text = log.read_text(errors="replace")
    assert not re.search(r"\bforbidden\b", text, re.IGNORECASE), (
        f"the operator was refused something:\n{text[-5000:]}"
    )
