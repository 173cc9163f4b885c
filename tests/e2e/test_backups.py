"""The packaged operator, installed from manifests/, backs up for real and the artifacts restore.

Why it exists: only here do the operator's Jobs run the runner image in real containers:
the database backup reads FerretDB through a Service, the files backup reads a real
volume, both write to a real PersistentVolume, and the operator reads each result from the
container's termination message. Each artifact is then restored with the runner and
compared with its source; a backup of an unreachable database ends Failed with a readable
message; two backups of one type in a namespace never run at the same time.
"""

from __future__ import annotations

import datetime
import itertools
import json
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import OPERATOR_NAMESPACE, REPO_ROOT, Cluster
from tests.e2e.helpers import (
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    container,
    job_manifest,
    run_job,
    termination_json,
)
from tests.support.kube import Kube, resource_path
from tests.support.node import FERRETDB_IMAGE
from tests.support.waiting import wait_for

JSONDict = dict[str, Any]
GROUP = "backup.operator.dev/v1alpha1"
OVERLAY = REPO_ROOT / "manifests" / "overlays" / "cluster"
BACKUP_TIMEOUT_SECONDS = 300.0

# Runs in the operator image (python with pymongo); the URI comes from a mounted Secret.
SEED_DATABASE = textwrap.dedent(
    """
    import datetime, json, pymongo
    uri = open("/var/run/mongo/uri").read().strip()
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=60000)
    db = client["shop"]
    when = datetime.datetime(2026, 12, 4, 2, 0, tzinfo=datetime.timezone.utc)
    db.orders.insert_many([
        {"_id": i, "item": f"item-{i}", "qty": i % 7, "price": i * 1.25,
         "tags": ["a", str(i)], "address": {"city": "Lyon", "zip": f"{69000 + i}"},
         "created": when + datetime.timedelta(minutes=i)}
        for i in range(500)
    ])
    db.customers.insert_many([{"_id": f"c{i}", "name": f"customer {i}"} for i in range(20)])
    counts = {c: db[c].count_documents({}) for c in sorted(db.list_collection_names())}
    open("/dev/termination-log", "w").write(json.dumps(counts))
    """
)
COMPARE_DATABASES = textwrap.dedent(
    """
    import json, pymongo
    uri = open("/var/run/mongo/uri").read().strip()
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=60000)
    source, restored = client["shop"], client["shop_restored"]
    result = {"collections": sorted(source.list_collection_names()),
              "restored": sorted(restored.list_collection_names()), "different": []}
    for name in result["collections"]:
        a = list(source[name].find().sort("_id"))
        b = list(restored[name].find().sort("_id"))
        if a != b:
            result["different"].append(name)
        result[name] = len(b)
    open("/dev/termination-log", "w").write(json.dumps(result))
    """
)
SEED_FILES = textwrap.dedent(
    """
    import hashlib, json, os, random
    rng = random.Random(8)
    files = {"a.jpg": 300_000, "b.txt": 1_000, "sub/c.jpg": 50_000, "sub/deep/d.bin": 70_000,
             "cache/skip.jpg": 10_000, "empty": 0}
    sums = {}
    for name, size in files.items():
        path = os.path.join("/data", name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = rng.randbytes(size)
        with open(path, "wb") as f:
            f.write(data)
        sums[name] = hashlib.sha256(data).hexdigest()
    open("/dev/termination-log", "w").write(json.dumps(sums))
    """
)
COMPARE_TREES = textwrap.dedent(
    """
    import hashlib, json, os
    def tree(root):
        out = {}
        for base, _, names in os.walk(root):
            for n in names:
                p = os.path.join(base, n)
                out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
        return out
    open("/dev/termination-log", "w").write(
        json.dumps({"source": tree("/data"), "restored": tree("/restore")}))
    """
)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def operator(cluster: Cluster, kube: Kube, operator_image: str) -> Iterator[str]:
    """The operator installed from manifests/overlays/cluster (watches every namespace)."""
    rendered = cluster.kubectl("kustomize", str(OVERLAY))
    rendered = rendered.replace("image: backup-operator:dev", f"image: {operator_image}")
    rendered = rendered.replace("value: backup-operator:dev", f"value: {operator_image}")
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=rendered)
    started = time.monotonic()

    def running_steadily() -> bool:
        # "Rolled out" only means started once: wait until the operator has run for a
        # while without a restart (a crash loop shows within that time).
        pods = kube.items(resource_path("v1", "pods", OPERATOR_NAMESPACE))
        for pod in pods:
            for status in pod.get("status", {}).get("containerStatuses", []):
                if status["restartCount"] > 0 or "terminated" in status.get("state", {}):
                    raise AssertionError(operator_trouble(cluster, kube, "the operator crashed"))
        running = [
            s
            for p in pods
            for s in p.get("status", {}).get("containerStatuses", [])
            if "running" in s.get("state", {})
        ]
        return bool(running) and time.monotonic() - started > 20

    try:
        wait_for(running_steadily, 180, "the operator to run", interval=1)
    except TimeoutError as error:
        raise AssertionError(operator_trouble(cluster, kube, str(error))) from None
    yield operator_image
    if not cluster.local:
        cluster.kubectl(
            "delete", "--ignore-not-found", "--wait=false", "-f", "-", input_text=rendered
        )


def operator_trouble(cluster: Cluster, kube: Kube, what: str) -> str:
    """What went wrong with the operator's pod: container states and its log's tail."""
    pods = kube.items(resource_path("v1", "pods", OPERATOR_NAMESPACE))
    states = [p.get("status", {}).get("containerStatuses") for p in pods]
    logs = "".join(
        cluster.pod_logs(OPERATOR_NAMESPACE, p["metadata"]["name"], "operator") for p in pods
    )
    return f"{what}\ncontainer states: {json.dumps(states)[:2000]}\nlogs:\n{logs[-4000:]}"


@pytest.fixture
def mongo_uri(kube: Kube, namespace: str, test_images: dict[str, str]) -> str:
    """FerretDB (SQLite backend, an emptyDir) as a pod behind a Service; its URI.

    The URI names the Service by its DNS name, as users write it.
    """
    labels = {"app": "ferretdb"}
    kube.create(
        resource_path("v1", "pods", namespace),
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "ferretdb", "labels": labels},
            "spec": {
                "automountServiceAccountToken": False,
                "securityContext": RESTRICTED_POD,
                "containers": [
                    {
                        "name": "ferretdb",
                        "image": test_images[FERRETDB_IMAGE],
                        "imagePullPolicy": "IfNotPresent",
                        "args": [
                            "--handler=sqlite",
                            "--sqlite-url=file:/data/",
                            "--state-dir=/data",
                            "--listen-addr=:27017",
                            "--debug-addr=-",
                            "--telemetry=disable",
                        ],
                        "ports": [{"containerPort": 27017, "name": "mongodb"}],
                        "readinessProbe": {"tcpSocket": {"port": 27017}, "periodSeconds": 2},
                        "securityContext": RESTRICTED_CONTAINER,
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    }
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
            },
        },
    )
    service = kube.create(
        resource_path("v1", "services", namespace),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ferretdb"},
            "spec": {"selector": labels, "ports": [{"port": 27017, "targetPort": "mongodb"}]},
        },
    )

    def ready() -> bool:
        pod = kube.get(resource_path("v1", "pods", namespace, "ferretdb"))
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod.get("status", {}).get("conditions", [])
        )

    wait_for(ready, 120, "FerretDB to be ready", interval=0.5)
    assert service["spec"]["clusterIP"]
    return f"mongodb://ferretdb.{namespace}.svc.cluster.local:27017/"


def secret(kube: Kube, namespace: str, name: str, uri: str) -> None:
    kube.create(
        resource_path("v1", "secrets", namespace),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {"uri": uri},
        },
    )


def python_job(
    name: str,
    image: str,
    script: str,
    mounts: list[JSONDict],
    volumes: list[JSONDict],
    init: list[JSONDict] | None = None,
) -> JSONDict:
    return job_manifest(
        name,
        [container("python", image, ["-c", script], command=["python"], volumeMounts=mounts)],
        init_containers=init,
        volumes=volumes,
    )


def create_backup(kube: Kube, namespace: str, kind: str, name: str, spec: JSONDict) -> None:
    plural = {"DatabaseBackup": "databasebackups", "FilesBackup": "filesbackups"}[kind]
    kube.create(
        resource_path(GROUP, plural, namespace),
        {"apiVersion": GROUP, "kind": kind, "metadata": {"name": name}, "spec": spec},
    )


def wait_finished(kube: Kube, namespace: str, plural: str, name: str) -> JSONDict:
    """Wait until the backup is Succeeded or Failed; return it."""

    def finished() -> JSONDict | None:
        backup = kube.get(resource_path(GROUP, plural, namespace, name))
        if backup.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return backup
        return None

    try:
        return wait_for(finished, BACKUP_TIMEOUT_SECONDS, f"{plural} {name} to finish", interval=1)
    except TimeoutError as error:
        backup = kube.get(resource_path(GROUP, plural, namespace, name))
        raise AssertionError(f"{error}; status: {json.dumps(backup.get('status'))}") from None


def secret_volume(name: str) -> JSONDict:
    return {"name": "uri", "secret": {"secretName": name, "items": [{"key": "uri", "path": "uri"}]}}


def pvc_volume(name: str, claim: str, read_only: bool = False) -> JSONDict:
    return {"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}


URI_MOUNT = {"name": "uri", "mountPath": "/var/run/mongo", "readOnly": True}


# --------------------------------------------------------------------------- tests


def test_a_database_backup_runs_as_a_job_and_restores_equal(
    kube: Kube,
    namespace: str,
    operator: str,
    mongo_uri: str,
    volumes: Callable[[str], str],
) -> None:
    backups = volumes("backups")
    secret(kube, namespace, "shop-mongo", mongo_uri)
    seeded = termination_json(
        run_job(
            kube,
            namespace,
            python_job("seed", operator, SEED_DATABASE, [URI_MOUNT], [secret_volume("shop-mongo")]),
        )
    )
    assert seeded == {"customers": 20, "orders": 500}

    create_backup(
        kube,
        namespace,
        "DatabaseBackup",
        "shop-1",
        {
            "source": {"uriSecretRef": {"name": "shop-mongo", "key": "uri"}, "database": "shop"},
            "storage": {"pvc": {"claimName": backups}},
            "compression": "gzip",
            "deadlineSeconds": 600,
        },
    )
    backup = wait_finished(kube, namespace, "databasebackups", "shop-1")
    status = backup["status"]
    assert status["phase"] == "Succeeded", status
    artifact = status["artifact"]
    assert artifact["path"].startswith(f"{namespace}/shop-1/mongodb_backup_")
    assert artifact["path"].endswith(".archive.gz")
    assert artifact["sizeBytes"] > 0 and len(artifact["sha256"]) == 64

    restore = container(
        "restore",
        operator,
        [
            "runner",
            "restore-database",
            "--uri-file",
            "/var/run/mongo/uri",
            "--archive",
            f"/backup/{artifact['path']}",
            "--sha256",
            artifact["sha256"],
            "--database",
            "shop",
            "--to-database",
            "shop_restored",
        ],
        volumeMounts=[URI_MOUNT, {"name": "backups", "mountPath": "/backup", "readOnly": True}],
    )
    compared = termination_json(
        run_job(
            kube,
            namespace,
            python_job(
                "restore",
                operator,
                COMPARE_DATABASES,
                [URI_MOUNT],
                [secret_volume("shop-mongo"), pvc_volume("backups", backups, read_only=True)],
                init=[restore],
            ),
            timeout=300,
        ),
        "python",
    )
    assert compared["restored"] == ["customers", "orders"], compared
    assert compared["different"] == [], compared
    assert compared["orders"] == 500 and compared["customers"] == 20


def test_a_files_backup_archives_a_volume_and_restores_equal(
    kube: Kube, namespace: str, operator: str, volumes: Callable[[str], str]
) -> None:
    uploads, backups = volumes("uploads"), volumes("backups")
    data_mount = {"name": "uploads", "mountPath": "/data"}
    seeded = termination_json(
        run_job(
            kube,
            namespace,
            python_job(
                "seed", operator, SEED_FILES, [data_mount], [pvc_volume("uploads", uploads)]
            ),
        )
    )
    create_backup(
        kube,
        namespace,
        "FilesBackup",
        "uploads-1",
        {
            "source": {"pvc": {"claimName": uploads}},
            "exclude": ["cache/*"],
            "storage": {"pvc": {"claimName": backups}},
            "compression": "zstd",
            "deadlineSeconds": 600,
        },
    )
    backup = wait_finished(kube, namespace, "filesbackups", "uploads-1")
    status = backup["status"]
    assert status["phase"] == "Succeeded", status
    artifact = status["artifact"]
    assert artifact["path"].startswith(f"{namespace}/uploads-1/files_backup_")
    assert artifact["path"].endswith(".tar.zst")

    restore = container(
        "restore",
        operator,
        [
            "runner",
            "restore-files",
            "--archive",
            f"/backup/{artifact['path']}",
            "--sha256",
            artifact["sha256"],
            "--target",
            "/restore",
        ],
        volumeMounts=[
            {"name": "backups", "mountPath": "/backup", "readOnly": True},
            {"name": "restore", "mountPath": "/restore"},
        ],
    )
    compared = termination_json(
        run_job(
            kube,
            namespace,
            python_job(
                "restore",
                operator,
                COMPARE_TREES,
                [{**data_mount, "readOnly": True}, {"name": "restore", "mountPath": "/restore"}],
                [
                    pvc_volume("uploads", uploads, read_only=True),
                    pvc_volume("backups", backups, read_only=True),
                    {"name": "restore", "emptyDir": {}},
                ],
                init=[restore],
            ),
            timeout=300,
        ),
        "python",
    )
    expected = {k: v for k, v in seeded.items() if not k.startswith("cache/")}
    assert compared["source"] == seeded
    assert compared["restored"] == expected


def test_a_backup_of_an_unreachable_database_fails_with_a_readable_message(
    kube: Kube, namespace: str, operator: str, volumes: Callable[[str], str]
) -> None:
    backups = volumes("backups")
    # Nothing listens there: the connection is refused at once.
    secret(kube, namespace, "wrong", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=3000")
    create_backup(
        kube,
        namespace,
        "DatabaseBackup",
        "broken",
        {
            "source": {"uriSecretRef": {"name": "wrong", "key": "uri"}},
            "storage": {"pvc": {"claimName": backups}},
            "backoffLimit": 0,
            "deadlineSeconds": 300,
        },
    )
    status = wait_finished(kube, namespace, "databasebackups", "broken")["status"]
    assert status["phase"] == "Failed", status
    succeeded = next(c for c in status["conditions"] if c["type"] == "Succeeded")
    assert succeeded["status"] == "False"
    assert succeeded["reason"] == "SourceUnreachable", status
    assert status["message"], status
    assert "mongodb://" not in status["message"], "the URI must not leak into the status"


def test_two_database_backups_in_a_namespace_never_run_at_once(
    kube: Kube, namespace: str, operator: str, mongo_uri: str, volumes: Callable[[str], str]
) -> None:
    backups = volumes("backups")
    secret(kube, namespace, "shop-mongo", mongo_uri)
    run_job(
        kube,
        namespace,
        python_job("seed", operator, SEED_DATABASE, [URI_MOUNT], [secret_volume("shop-mongo")]),
    )
    for name in ("first", "second"):
        create_backup(
            kube,
            namespace,
            "DatabaseBackup",
            name,
            {
                "source": {"uriSecretRef": {"name": "shop-mongo", "key": "uri"}},
                "storage": {"pvc": {"claimName": backups}},
                "concurrencyPolicy": "Queue",
                "deadlineSeconds": 600,
            },
        )
    finished = [wait_finished(kube, namespace, "databasebackups", n) for n in ("first", "second")]
    assert [b["status"]["phase"] for b in finished] == ["Succeeded", "Succeeded"]
    runs = []
    for backup in finished:
        pods = kube.items(
            resource_path("v1", "pods", namespace),
            labelSelector=f"batch.kubernetes.io/job-name={backup['status']['jobName']}",
        )
        for pod in pods:
            state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
            runs.append((_time(state["startedAt"]), _time(state["finishedAt"])))
    assert len(runs) >= 2
    runs.sort()
    for (_, end), (start, _) in itertools.pairwise(runs):
        assert start >= end, f"two backup containers overlapped: {runs}"


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
