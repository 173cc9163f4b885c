"""Helpers of the e2e tests: run a pod to completion, wait for a backup, read results.

Why it exists: every e2e test runs short Jobs (seed, restore, compare) whose result comes
back as the container's termination message, so the tests need neither ``kubectl exec``
nor network access from the host to the pods; that keeps them portable to kind.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.kube import Kube, resource_path
from tests.support.waiting import wait_for

JSONDict = dict[str, Any]
NONROOT = 65532
#: The container securityContext the ``restricted`` Pod Security Standard asks for.
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": NONROOT,
    "runAsGroup": NONROOT,
    "fsGroup": NONROOT,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def container(name: str, image: str, args: list[str], **extra: Any) -> JSONDict:
    """A restricted container that never pulls (images are loaded, not pulled)."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "securityContext": RESTRICTED_CONTAINER,
        **extra,
    }


def job_manifest(
    name: str,
    containers: list[JSONDict],
    *,
    init_containers: list[JSONDict] | None = None,
    volumes: list[JSONDict] | None = None,
    backoff_limit: int = 0,
) -> JSONDict:
    spec: JSONDict = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": RESTRICTED_POD,
        "containers": containers,
        "volumes": volumes or [],
    }
    if init_containers:
        spec["initContainers"] = init_containers
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": backoff_limit, "template": {"spec": spec}},
    }


def run_job(kube: Kube, namespace: str, manifest: JSONDict, timeout: float = 180) -> JSONDict:
    """Create the Job, wait until it completes or fails, return its (last) pod.

    Raises AssertionError with the pod's container states when the Job fails.
    """
    name = manifest["metadata"]["name"]
    kube.create(resource_path("batch/v1", "jobs", namespace), manifest)

    def finished() -> JSONDict | None:
        job = kube.get(resource_path("batch/v1", "jobs", namespace, name))
        for condition in job.get("status", {}).get("conditions", []):
            if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
                return job
        return None

    job = wait_for(finished, timeout, f"Job {namespace}/{name} to finish", interval=0.5)
    pods = kube.items(
        resource_path("v1", "pods", namespace),
        labelSelector=f"batch.kubernetes.io/job-name={name}",
    )
    assert pods, f"Job {name} finished without a pod"
    pod = max(pods, key=lambda p: p["metadata"]["creationTimestamp"])
    complete = any(
        c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"]
    )
    if not complete:
        states = [s.get("state") for s in pod["status"].get("containerStatuses", [])]
        init = [s.get("state") for s in pod["status"].get("initContainerStatuses", [])]
        raise AssertionError(f"Job {name} failed: init {init}, containers {states}")
    return pod


def termination_message(pod: JSONDict, container_name: str | None = None) -> str:
    statuses = pod["status"].get("containerStatuses", []) + pod["status"].get(
        "initContainerStatuses", []
    )
    for status in statuses:
        if container_name is None or status["name"] == container_name:
            terminated = status.get("state", {}).get("terminated") or {}
            return str(terminated.get("message", ""))
    raise AssertionError(f"no container {container_name} in pod {pod['metadata']['name']}")


def termination_json(pod: JSONDict, container_name: str | None = None) -> JSONDict:
    text = termination_message(pod, container_name)
    try:
        decoded: JSONDict = json.loads(text)
    except json.JSONDecodeError as error:
        raise AssertionError(f"termination message is not JSON: {text!r}") from error
    return decoded
