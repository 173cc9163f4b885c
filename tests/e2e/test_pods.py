"""The cluster's pods really run: images built here, restricted pods, termination messages.

Why it exists: everything else in tests/e2e builds on these guarantees (the backup result
travels from the Job to the operator as the container's termination message, and Job pods
must pass the ``restricted`` Pod Security Standard). When these fail, the cluster is
broken, not the operator.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Cluster
from tests.e2e.helpers import container, job_manifest, run_job, termination_message
from tests.support.kube import Kube
from tests.support.node import TESTBOX_IMAGE


def test_a_job_runs_and_its_termination_message_is_read_back(
    cluster: Cluster, kube: Kube, namespace: str, test_images: dict[str, str]
) -> None:
    message = '{"ok": true, "from": "a real container"}'
    pod = run_job(
        kube,
        namespace,
        job_manifest(
            "hello",
            [
                container(
                    "box",
                    test_images[TESTBOX_IMAGE],
                    ["-message", message, "-write", "/scratch/x=written", "-cat", "/scratch/x"],
                    volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}],
                )
            ],
            volumes=[{"name": "scratch", "emptyDir": {}}],
        ),
    )
    assert termination_message(pod, "box") == message
    status = pod["status"]["containerStatuses"][0]
    assert status["state"]["terminated"]["exitCode"] == 0
    assert status["imageID"], "the container ran from an image the runtime knows"
    assert pod["status"].get("podIP"), "the pod got an address from CNI"
    assert "written" in cluster.pod_logs(namespace, pod["metadata"]["name"], "box")


def test_a_failing_container_reports_its_exit_code_and_message(
    kube: Kube, namespace: str, test_images: dict[str, str]
) -> None:
    manifest = job_manifest(
        "fails",
        [container("box", test_images[TESTBOX_IMAGE], ["-message", "broken", "-exit", "3"])],
    )
    with pytest.raises(AssertionError, match=r"'exitCode': 3.*'message': 'broken'"):
        run_job(kube, namespace, manifest)
