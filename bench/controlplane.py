"""Control-plane latency and scale of the operator, against a baseline measured in the same run.

Not a test: it starts the real control plane (``tests/support``), runs the operator as a
subprocess, and prints figures:

1. latency, p50/p90 over ``--samples`` backups (each in its own namespace, so none queues):
   - baseline: a client creating the Job itself (one POST round trip);
   - CR created -> Job created (the operator's reaction);
   - Job finished -> CR Succeeded;
2. scale: ``--scale`` backups created in one namespace while one long backup holds the lock
   with ``concurrencyPolicy: Forbid``, so each is judged (Failed, ConcurrencyForbidden) and
   stays in the cluster; then the operator's RSS, and the API requests it made per backup
   (from the API server's ``apiserver_request_total``).

Run: ``python bench/controlplane.py --samples 20 --scale 10000``.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.backups import create, database_backup, files_backup, wait_for_phase
from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube, resource_path
from tests.support.operator import OperatorProcess, apply_crds
from tests.support.podplayer import PodOutcome, PodPlayer, default_outcome
from tests.support.tools import tools
from tests.support.waiting import wait_for


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def make_namespace(kube: Kube, name: str) -> str:
    kube.create(
        resource_path("v1", "namespaces"),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    wait_for(
        lambda: kube.get_or_none(resource_path("v1", "serviceaccounts", name, "default")),
        30,
        f"default ServiceAccount in {name}",
    )
    return name


def bare_job_round_trip(kube: Kube, namespace: str, index: int) -> float:
    """The baseline: a client POSTs a Job itself."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": f"bare-{index}", "namespace": namespace},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}],
                }
            }
        },
    }
    start = time.perf_counter()
    kube.create(resource_path("batch/v1", "jobs", namespace), job)
    return time.perf_counter() - start


def job_of(kube: Kube, namespace: str) -> dict[str, Any] | None:
    items = kube.items(resource_path("batch/v1", "jobs", namespace))
    return items[0] if items else None


def job_finished_at(job: dict[str, Any]) -> float | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Complete" and cond["status"] == "True":
            return time.time()
    return None


def poll_until(predicate: Callable[[], Any], timeout: float = 60) -> Any:
    return wait_for(predicate, timeout, "bench condition", interval=0.005)


def latency(plane: ControlPlane, kube: Kube, samples: int, workdir: Path) -> None:
    names = [make_namespace(kube, f"lat-{i}") for i in range(samples)]
    baseline = [bare_job_round_trip(kube, names[0], i) for i in range(samples)]
    kube.request("DELETE", resource_path("batch/v1", "jobs", names[0]), None)
    gate = threading.Event()

    def held(pod: dict[str, Any]) -> PodOutcome:
        gate.wait(60)
        return default_outcome(pod)

    player = PodPlayer(plane.kubeconfig, names, held)
    player.start()
    operator = OperatorProcess(
        plane.kubeconfig, names, workdir / "latency-operator.log", verbose=False
    )
    operator.start()
    to_job: list[float] = []
    to_done: list[float] = []
    try:
        for namespace in names:
            gate.clear()
            start = time.perf_counter()
            create(kube, database_backup(namespace, "b"))
            poll_until(lambda ns=namespace: job_of(kube, ns))
            to_job.append(time.perf_counter() - start)
            gate.set()
            poll_until(lambda ns=namespace: job_finished_at(job_of(kube, ns) or {}))
            finished = time.perf_counter()
            poll_until(
                lambda ns=namespace: (
                    kube.get(
                        resource_path("backup.operator.dev/v1alpha1", "databasebackups", ns, "b")
                    )
                    .get("status", {})
                    .get("phase")
                    == "Succeeded"
                )
            )
            to_done.append(time.perf_counter() - finished)
    finally:
        operator.stop()
        player.stop()
    print(f"{'latency (ms)':42} {'p50':>8} {'p90':>8}")
    for label, values in (
        ("baseline: client POSTs the Job itself", baseline),
        ("operator: CR created -> Job created", to_job),
        ("operator: Job Complete -> CR Succeeded", to_done),
    ):
        p50, p90 = percentile(values, 0.5) * 1000, percentile(values, 0.9) * 1000
        print(f"{label:42} {p50:8.1f} {p90:8.1f}")


def request_total(kube: Kube) -> float:
    """Sum of apiserver_request_total over the resources the operator uses."""
    response = kube._send("GET", "/metrics", None, None, "application/json", 30)
    response.read()
    text = response.data.decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{") and re.search(
            r'resource="(databasebackups|filesbackups|jobs|pods|leases|events)"', line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scale(plane: ControlPlane, kube: Kube, count: int, workdir: Path) -> None:
    namespace = make_namespace(kube, "scale")
    gate = threading.Event()
    player = PodPlayer(
        plane.kubeconfig, [namespace], lambda pod: (gate.wait(3600), default_outcome(pod))[1]
    )
    player.start()
    operator = OperatorProcess(
        plane.kubeconfig,
        [namespace],
        workdir / "scale-operator.log",
        {"BACKUP_RECONCILE_SECONDS": "10"},
    )
    operator.start()
    try:
        create(kube, files_backup(namespace, "holder"))
        wait_for_phase(kube, "FilesBackup", namespace, "holder", ("Running",))
        before = request_total(kube)
        start = time.perf_counter()
        for i in range(count):
            create(kube, files_backup(namespace, f"f-{i:05d}", concurrencyPolicy="Forbid"))
        created = time.perf_counter() - start

        def all_judged() -> bool:
            items = kube.items(
                resource_path("backup.operator.dev/v1alpha1", "filesbackups", namespace)
            )
            return sum((i.get("status") or {}).get("phase") == "Failed" for i in items) >= count

        wait_for(all_judged, 3600, "every backup judged", interval=2)
        judged = time.perf_counter() - start
        calls = request_total(kube) - before
        assert operator.process is not None
        settled = [rss_mib(operator.process.pid)]
        time.sleep(20)  # bench only: let timers and watches settle before the second reading
        settled.append(rss_mib(operator.process.pid))
    finally:
        gate.set()
        operator.stop()
        player.stop()
    print(f"\nscale: {count} backups in one namespace")
    print(
        f"  created by the client in {created:.1f}s, all judged by the operator after {judged:.1f}s"
    )
    per_backup = calls / count
    print(f"  API requests on backups, jobs, pods, leases, events: {calls:.0f}")
    print(f"  = {per_backup:.1f} per backup")
    print("  (including the client's own create)")
    rss = f"{settled[0]:.0f} MiB, {settled[1]:.0f} MiB 20 s later"
    print(f"  operator RSS with {count + 1} backups in the cluster: {rss}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--scale", type=int, default=2000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-controlplane-"))
    with ControlPlane(workdir / "plane", binaries=tools()) as plane, Kube(plane.kubeconfig) as kube:
        apply_crds(kube)
        latency(plane, kube, args.samples, workdir)
        if args.scale:
            scale(plane, kube, args.scale, workdir)
    print(f"\nlogs: {workdir}")


if __name__ == "__main__":
    main()
