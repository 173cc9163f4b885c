"""One backup of a type at a time: two replicas, bursts, crashes, Forbid, and lock scope."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest

from tests.support.backups import (
    PLURAL,
    backup_path,
    condition,
    create,
    database_backup,
    files_backup,
    jobs_of,
    wait_for_phase,
)
from tests.support.kube import Kube
from tests.support.operator import OperatorProcess
from tests.support.podplayer import (
    PodOutcome,
    PodPlayer,
    PodRun,
    default_outcome,
    held_until,
    overlapping_pairs,
)
from tests.support.waiting import wait_for

StartOperator = Callable[..., OperatorProcess]
MAKERS = {"DatabaseBackup": database_backup, "FilesBackup": files_backup}


def quick(pod: dict[str, object]) -> PodOutcome:
    """A short backup: long enough for a second one to try to overlap."""
    outcome = default_outcome(pod)
    return PodOutcome(outcome.exit_code, outcome.message, delay_seconds=0.3)


@dataclass
class TwoNamespaces:
    """The test's namespace and another, with their pods held until ``release``."""

    first: str
    second: str
    player: PodPlayer
    release: threading.Event


@pytest.fixture
def two_namespaces(
    namespace: str,
    make_namespace: Callable[[], str],
    make_pod_player: Callable[[list[str]], PodPlayer],
) -> TwoNamespaces:
    other = make_namespace()
    release = threading.Event()
    player = make_pod_player([namespace, other])
    player.outcome = held_until(release)
    return TwoNamespaces(namespace, other, player, release)


def all_finished(kube: Kube, namespace: str, kind: str) -> list[dict[str, object]] | None:
    items = kube.items(backup_path(kind, namespace))
    phases = [(i.get("status") or {}).get("phase") for i in items]
    return items if all(p in ("Succeeded", "Failed") for p in phases) else None


def queue_order(items: list[dict[str, object]]) -> list[str]:
    """Names in queue order: creationTimestamp, then name."""

    def key(item: dict[str, object]) -> tuple[datetime, str]:
        meta = item["metadata"]
        assert isinstance(meta, dict)
        stamp = datetime.fromisoformat(str(meta["creationTimestamp"]).replace("Z", "+00:00"))
        return stamp, str(meta["name"])

    return [str(item["metadata"]["name"]) for item in sorted(items, key=key)]  # type: ignore[index]


def first_runs(runs: list[PodRun], kind: str) -> list[PodRun]:
    """The first pod of each backup of ``kind``, in start order."""
    seen: dict[str | None, PodRun] = {}
    for run in sorted(runs, key=lambda r: r.start_monotonic):
        if run.owner_kind == kind:
            seen.setdefault(run.owner_name, run)
    return list(seen.values())


def test_burst_with_two_replicas_never_overlaps(
    kube: Kube, namespace: str, start_operator: StartOperator, pod_player: PodPlayer
) -> None:
    pod_player.outcome = quick
    start_operator([namespace])
    start_operator([namespace])
    count = 30
    started = datetime.now()
    for index in range(count):
        for kind, make in MAKERS.items():
            create(kube, make(namespace, f"{PLURAL[kind][:2]}-{index:03d}"))
    finished: dict[str, list[dict[str, object]]] = {}
    for kind in MAKERS:
        finished[kind] = wait_for(
            lambda k=kind: all_finished(kube, namespace, k), 600, f"every {kind} to finish"
        )
    drain = (datetime.now() - started).total_seconds()
    runs = pod_player.runs
    for kind, items in finished.items():
        assert {(i["status"] or {}).get("phase") for i in items} == {"Succeeded"}  # type: ignore[union-attr]
        of_kind = [r for r in runs if r.owner_kind == kind]
        assert overlapping_pairs(of_kind) == [], f"{kind} Jobs overlapped"
        assert len(of_kind) == count, f"{kind}: {len(of_kind)} pods for {count} backups"
        assert [r.owner_name for r in first_runs(runs, kind)] == queue_order(items)
    print(f"burst: {2 * count} backups, 0 overlaps, drained in {drain:.1f}s")


def test_sigkill_at_random_points_loses_nothing(
    kube: Kube, namespace: str, start_operator: StartOperator, pod_player: PodPlayer
) -> None:
    pod_player.outcome = quick
    victim = start_operator([namespace])
    names = [f"crash-{i:02d}" for i in range(10)]
    for name in names:
        create(kube, database_backup(namespace, name))
    # Kill right after the k-th backup started, for 4 random k: mid-run, mid-handover.
    for k in sorted(random.Random(20261204).sample(range(1, len(names)), 4)):
        wait_for(lambda k=k: len(pod_player.runs) >= k, 120, f"backup #{k} to start")
        victim.kill()
        victim.start()
    items = wait_for(
        lambda: all_finished(kube, namespace, "DatabaseBackup"),
        300,
        "every backup to finish after the crashes",
    )
    assert {(i["status"] or {}).get("phase") for i in items} == {"Succeeded"}  # type: ignore[union-attr]
    for item in items:
        uid = item["metadata"]["uid"]  # type: ignore[index]
        assert len(jobs_of(kube, namespace, str(uid))) == 1
    assert overlapping_pairs(pod_player.runs) == []
    assert len(first_runs(pod_player.runs, "DatabaseBackup")) == len(names)


def test_forbid_refuses_while_another_runs(
    kube: Kube, namespace: str, operator: OperatorProcess, pod_player: PodPlayer
) -> None:
    release = threading.Event()
    pod_player.outcome = held_until(release)
    create(kube, files_backup(namespace, "long"))
    wait_for_phase(kube, "FilesBackup", namespace, "long", ("Running",))
    create(kube, files_backup(namespace, "eager", concurrencyPolicy="Forbid"))
    refused = wait_for_phase(kube, "FilesBackup", namespace, "eager", ("Failed",))
    assert condition(refused, "Succeeded")["reason"] == "ConcurrencyForbidden"
    assert f"{namespace}/long" in refused["status"]["message"]
    create(kube, files_backup(namespace, "patient"))
    queued = wait_for_phase(kube, "FilesBackup", namespace, "patient", ("Queued",))
    assert queued["status"]["queue"] == {"position": 0, "blockedBy": f"{namespace}/long"}
    assert condition(queued, "Queued")["status"] == "True"
    release.set()
    wait_for_phase(kube, "FilesBackup", namespace, "patient", ("Succeeded",))


def test_namespace_scope_runs_namespaces_in_parallel(
    kube: Kube, two_namespaces: TwoNamespaces, start_operator: StartOperator
) -> None:
    first, second = two_namespaces.first, two_namespaces.second
    start_operator([first, second])
    create(kube, database_backup(first, "here"))
    create(kube, database_backup(second, "there"))
    wait_for_phase(kube, "DatabaseBackup", first, "here", ("Running",))
    wait_for_phase(kube, "DatabaseBackup", second, "there", ("Running",))
    two_namespaces.release.set()
    wait_for_phase(kube, "DatabaseBackup", second, "there", ("Succeeded",))


def test_cluster_scope_serialises_across_namespaces(
    kube: Kube, two_namespaces: TwoNamespaces, start_operator: StartOperator
) -> None:
    first, second = two_namespaces.first, two_namespaces.second
    start_operator([first, second], env={"BACKUP_LOCK_SCOPE": "Cluster"})
    create(kube, database_backup(first, "first"))
    wait_for_phase(kube, "DatabaseBackup", first, "first", ("Running",))
    create(kube, database_backup(second, "second"))
    queued = wait_for_phase(kube, "DatabaseBackup", second, "second", ("Queued",))
    assert queued["status"]["queue"]["blockedBy"] == f"{first}/first"
    two_namespaces.release.set()
    wait_for_phase(kube, "DatabaseBackup", second, "second", ("Succeeded",))
    assert overlapping_pairs(two_namespaces.player.runs) == []
