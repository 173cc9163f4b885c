"""Restarts: an operator killed while a backup runs picks it up again, without a second Job."""

from __future__ import annotations

import threading

from tests.support.backups import create, database_backup, jobs_of, wait_for_phase
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.podplayer import PodPlayer, held_until


def test_killed_operator_resumes_a_running_backup(
    kube: Kube, namespace: str, operator: OperatorProcess, pod_player: PodPlayer
) -> None:
    release = threading.Event()
    pod_player.outcome = held_until(release)
    stored = create(kube, database_backup(namespace, "resilient"))
    wait_for_phase(kube, "DatabaseBackup", namespace, "resilient", ("Running",))
    operator.kill()
    release.set()  # the Job finishes while no operator runs
    operator.start()
    done = wait_for_phase(kube, "DatabaseBackup", namespace, "resilient", ("Succeeded",))
    assert len(jobs_of(kube, namespace, stored["metadata"]["uid"])) == 1
    assert done["status"]["attempts"] == 1
    assert [r.job_name for r in pod_player.runs] == [done["status"]["jobName"]]
