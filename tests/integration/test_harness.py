"""Smoke tests of the integration harness itself, one per feature the operator relies on.

Why it exists: when an operator test fails, these tell whether the harness (control
plane, controllers, PodPlayer, FerretDB) works at all. They use no operator code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pymongo.errors
import pytest

from tests.support.controlplane import ControlPlane
from tests.support.ferretdb import FerretDB
from tests.support.kube import ApiException, Kube, resource_path
from tests.support.podplayer import PodOutcome, PodPlayer, overlapping_pairs
from tests.support.waiting import wait_for

JSONDict = dict[str, Any]
RESTRICTED_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


@pytest.fixture
def kube(control_plane: ControlPlane) -> Iterator[Kube]:
    with Kube(control_plane.kubeconfig) as client:
        yield client


def pod_spec(**container_overrides: Any) -> JSONDict:
    container: JSONDict = {
        "name": "main",
        "image": "registry.invalid/backup-runner:test",
        "command": ["/bin/true"],
        "securityContext": dict(RESTRICTED_CONTAINER_SECURITY),
    }
    container.update(container_overrides)
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": dict(RESTRICTED_POD_SECURITY),
        "containers": [container],
    }


def job_manifest(name: str, *, backoff_limit: int = 0, **spec: Any) -> JSONDict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": backoff_limit, "template": {"spec": pod_spec()}, **spec},
    }


def create_job(kube: Kube, namespace: str, manifest: JSONDict) -> JSONDict:
    return kube.create(resource_path("batch/v1", "jobs", namespace), manifest)


def wait_for_job_condition(
    kube: Kube, namespace: str, name: str, condition: str, timeout: float = 60
) -> JSONDict:
    """Wait until the Job has ``condition`` = True; return the Job."""
    path = resource_path("batch/v1", "jobs", namespace, name)

    def reached() -> JSONDict | None:
        job = kube.get(path)
        conditions = job.get("status", {}).get("conditions", [])
        done = any(c["type"] == condition and c["status"] == "True" for c in conditions)
        return job if done else None

    return wait_for(reached, timeout, f"Job {namespace}/{name} to be {condition}")


def job_pods(kube: Kube, namespace: str, name: str) -> list[JSONDict]:
    return kube.items(
        resource_path("v1", "pods", namespace),
        labelSelector=f"batch.kubernetes.io/job-name={name}",
    )


def condition_reason(job: JSONDict, condition: str) -> str | None:
    for c in job.get("status", {}).get("conditions", []):
        if c["type"] == condition:
            reason: str | None = c.get("reason")
            return reason
    return None


# --------------------------------------------------------------------------- API server


def test_apiserver_serves_the_pinned_version(kube: Kube) -> None:
    assert kube.get("/version")["gitVersion"] == "v1.35.4"


def test_podsecurity_rejects_a_privileged_pod_in_a_restricted_namespace(
    kube: Kube, namespace: str
) -> None:
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "registry.invalid/x",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }
    with pytest.raises(ApiException) as refused:
        kube.create(resource_path("v1", "pods", namespace), privileged)
    assert refused.value.status == 403
    assert (
        'violates PodSecurity "restricted:latest"'
        in json.loads(refused.value.body or "{}")["message"]
    )

    compliant = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok"}, "spec": pod_spec()}
    kube.create(resource_path("v1", "pods", namespace), compliant)


def test_users_have_their_own_identity_and_rbac_applies(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    alice_config = control_plane.make_user_kubeconfig("alice@example.com", ["backup-admins"])
    with Kube(alice_config) as alice:
        review = alice.create(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        user = review["status"]["userInfo"]
        assert user["username"] == "alice@example.com"
        assert "backup-admins" in user["groups"]

        with pytest.raises(ApiException) as refused:
            alice.items(resource_path("batch/v1", "jobs", namespace))
        assert refused.value.status == 403

        kube.create(
            resource_path("rbac.authorization.k8s.io/v1", "rolebindings", namespace),
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "backup-admins-view"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "view",
                },
                "subjects": [
                    {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Group",
                        "name": "backup-admins",
                    }
                ],
            },
        )
        # "view" is an aggregated ClusterRole: this also shows the aggregation controller.
        wait_for(
            lambda: alice.items(resource_path("batch/v1", "jobs", namespace)) == [],
            30,
            "alice to be allowed to list Jobs",
            ignore=(ApiException,),
        )


# --------------------------------------------------------------------------- Jobs + PodPlayer


def test_pod_player_drives_a_job_to_complete(
    kube: Kube, namespace: str, pod_player: PodPlayer
) -> None:
    create_job(kube, namespace, job_manifest("ok"))

    job = wait_for_job_condition(kube, namespace, "ok", "Complete")

    assert job["status"]["succeeded"] == 1
    (run,) = pod_player.wait_for_runs(1)
    assert (run.job_name, run.exit_code, run.attempt) == ("ok", 0, 1)
    assert run.end_wall is not None
    assert run.end_wall >= run.start_wall
    (pod,) = job_pods(kube, namespace, "ok")
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert f'"path": "{namespace}/ok/x"' in terminated["message"]
    # The Job controller (not PodPlayer) removed its tracking finalizer.
    wait_for(
        lambda: (
            "batch.kubernetes.io/job-tracking"
            not in (job_pods(kube, namespace, "ok")[0]["metadata"].get("finalizers") or [])
        ),
        30,
        "the Job controller to remove the job-tracking finalizer",
    )


def test_a_failed_pod_fails_a_job_without_retries(
    kube: Kube, namespace: str, pod_player: PodPlayer
) -> None:
    pod_player.outcome = lambda pod: PodOutcome(2, '{"ok": false, "error": "boom"}')
    create_job(kube, namespace, job_manifest("bad", backoff_limit=0))

    job = wait_for_job_condition(kube, namespace, "bad", "Failed")

    assert condition_reason(job, "Failed") == "BackoffLimitExceeded"
    assert job["status"]["failed"] == 1
    (pod,) = job_pods(kube, namespace, "bad")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (2, "Error")
    assert "boom" in terminated["message"]


def test_backoff_limit_is_honoured_then_the_retry_succeeds(
    kube: Kube, namespace: str, pod_player: PodPlayer
) -> None:
    def fail_first(pod: JSONDict) -> PodOutcome:
        if pod["podPlayer"]["attempt"] == 1:
            return PodOutcome(1, "first attempt fails")
        return PodOutcome(0, "second attempt works")

    pod_player.outcome = fail_first
    create_job(kube, namespace, job_manifest("retry", backoff_limit=1))

    # The Job controller waits ~10 s (its failure back-off) before the second pod.
    job = wait_for_job_condition(kube, namespace, "retry", "Complete", timeout=90)

    assert (job["status"]["failed"], job["status"]["succeeded"]) == (1, 1)
    runs = pod_player.wait_for_runs(2)
    assert [(r.attempt, r.exit_code) for r in runs] == [(1, 1), (2, 0)]
    assert overlapping_pairs(runs) == []


def test_a_running_pod_is_killed_when_the_job_deadline_passes(
    kube: Kube, namespace: str, pod_player: PodPlayer
) -> None:
    pod_player.outcome = lambda pod: PodOutcome(0, "too late", delay_seconds=120)
    create_job(kube, namespace, job_manifest("slow", activeDeadlineSeconds=2))

    job = wait_for_job_condition(kube, namespace, "slow", "Failed")

    assert condition_reason(job, "Failed") == "DeadlineExceeded"
    (run,) = pod_player.wait_for_runs(1)
    assert run.killed
    assert run.exit_code == 137
    wait_for(lambda: job_pods(kube, namespace, "slow") == [], 30, "the killed pod to be gone")


def test_ttl_after_finished_deletes_a_finished_job(
    kube: Kube, namespace: str, pod_player: PodPlayer
) -> None:
    create_job(kube, namespace, job_manifest("short-lived", ttlSecondsAfterFinished=0))

    wait_for(
        lambda: (
            kube.get_or_none(resource_path("batch/v1", "jobs", namespace, "short-lived")) is None
        ),
        60,
        "the ttl-after-finished controller to delete the Job",
    )
    assert pod_player.wait_for_runs(1)[0].exit_code == 0


def test_deleting_the_owner_garbage_collects_the_job(kube: Kube, namespace: str) -> None:
    owner = kube.create(
        resource_path("v1", "configmaps", namespace),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}},
    )
    manifest = job_manifest("owned")
    manifest["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "owner",
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    create_job(kube, namespace, manifest)
    job_path = resource_path("batch/v1", "jobs", namespace, "owned")
    assert kube.get_or_none(job_path) is not None

    kube.delete(resource_path("v1", "configmaps", namespace, "owner"))

    wait_for(lambda: kube.get_or_none(job_path) is None, 60, "the GC to delete the owned Job")


# --------------------------------------------------------------------------- FerretDB


def test_ferretdb_keeps_its_data_across_stop_and_start(mongo: FerretDB) -> None:
    with mongo.client() as client:
        client.harness.things.replace_one({"_id": "kept"}, {"_id": "kept", "n": 1}, upsert=True)
    port = mongo.port

    mongo.stop()
    try:
        assert not mongo.running
        with (
            mongo.client(serverSelectionTimeoutMS=300) as client,
            pytest.raises(pymongo.errors.ServerSelectionTimeoutError),
        ):
            client.admin.command("ping")
    finally:
        mongo.start()

    assert mongo.port == port
    with mongo.client() as client:
        assert client.harness.things.find_one({"_id": "kept"}) == {"_id": "kept", "n": 1}
