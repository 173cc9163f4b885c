#!/usr/bin/env python3
"""Demo: the packaged operator backs up a database and a volume on a kind cluster.

What it does (``make demo`` builds the image first, then runs this): creates the kind
cluster ``backup-operator-demo`` (tests/support/kind.py: kind's public node image where
Docker can pull it, else a node image assembled here by hack/kind-node-image.sh), loads
``backup-operator:dev`` and the FerretDB image built here, installs
manifests/overlays/cluster, deploys FerretDB in namespace ``demo`` and seeds it and a
volume, creates a DatabaseBackup and a FilesBackup, prints ``kubectl get backups -n demo``
each time a backup changes until both are Succeeded, prints the artifacts and checks their
sha256 on the node, then deletes the cluster. Needs root and Docker (Debian's docker.io is
started if none runs).

    python3 hack/demo.py [--keep] [--workdir DIR]

``--keep`` leaves the cluster up (prints ``export KUBECONFIG=...``); delete it with
``kind delete cluster --name backup-operator-demo``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.conftest import OPERATOR_IMAGE, OPERATOR_NAMESPACE, Cluster  # noqa: E402
from tests.e2e.helpers import run_job  # noqa: E402
from tests.e2e.test_backups import (  # noqa: E402
    GROUP,
    OVERLAY,
    SEED_DATABASE,
    SEED_FILES,
    URI_MOUNT,
    pvc_volume,
    python_job,
    secret_volume,
)
from tests.support.kind import KindCluster, save_image  # noqa: E402
from tests.support.kube import Kube, resource_path  # noqa: E402
from tests.support.node import (  # noqa: E402
    FERRETDB_IMAGE,
    NONROOT,
    NodeToolsUnavailableError,
    build_test_images,
    e2e_static_dir,
)
from tests.support.processes import ComponentError  # noqa: E402
from tests.support.tools import ToolsUnavailableError  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

NAMESPACE = "demo"
CLUSTER_NAME = "backup-operator-demo"
PLURALS = ("databasebackups", "filesbackups")
STARTED = time.monotonic()
RESTRICTED = (
    "{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true,"
    " capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}"
)
# What the e2e fixtures `namespace`, `volumes` and `mongo_uri` make, as a user would write it.
NAMESPACE_YAML = """
apiVersion: v1
kind: Namespace
metadata: {name: demo, labels: {pod-security.kubernetes.io/enforce: restricted}}
"""
FERRETDB = f"""
apiVersion: v1
kind: Pod
metadata: {{name: ferretdb, namespace: demo, labels: {{app: ferretdb}}}}
spec:
  automountServiceAccountToken: false
  securityContext: {{runAsNonRoot: true, runAsUser: {NONROOT}, runAsGroup: {NONROOT},
                    fsGroup: {NONROOT}, seccompProfile: {{type: RuntimeDefault}}}}
  containers:
  - name: ferretdb
    image: {FERRETDB_IMAGE}
    imagePullPolicy: IfNotPresent
    args: [--handler=sqlite, --sqlite-url=file:/data/, --state-dir=/data,
           --listen-addr=:27017, --debug-addr=-, --telemetry=disable]
    ports: [{{containerPort: 27017, name: mongodb}}]
    readinessProbe: {{tcpSocket: {{port: 27017}}, periodSeconds: 2}}
    securityContext: {RESTRICTED}
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, emptyDir: {{}}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: ferretdb, namespace: demo}}
spec: {{selector: {{app: ferretdb}}, ports: [{{port: 27017, targetPort: mongodb}}]}}
---
apiVersion: v1
kind: Secret
metadata: {{name: shop-mongo, namespace: demo}}
stringData: {{uri: "mongodb://ferretdb.demo.svc.cluster.local:27017/"}}
"""
VOLUME = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {claim}, namespace: demo}}
spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
"""
BACKUPS = """
apiVersion: backup.operator.dev/v1alpha1
kind: DatabaseBackup
metadata: {name: shop-1, namespace: demo}
spec:
  source: {uriSecretRef: {name: shop-mongo, key: uri}, database: shop}
  storage: {pvc: {claimName: backups}}
  compression: gzip
---
apiVersion: backup.operator.dev/v1alpha1
kind: FilesBackup
metadata: {name: uploads-1, namespace: demo}
spec:
  source: {pvc: {claimName: uploads}}
  exclude: ["cache/*"]
  storage: {pvc: {claimName: backups}}
  compression: zstd
"""


def say(text: str) -> None:
    print(f"[demo {time.monotonic() - STARTED:5.1f}s] {text}", flush=True)


def apply(cluster: Cluster, manifests: str) -> None:
    # kubectl caches discovery: keep the copy made before the CRDs exist out of the way.
    cache = f"--cache-dir={cluster.workdir / 'kubectl-apply-cache'}"
    cluster.kubectl("apply", "--server-side", cache, "-f", "-", input_text=manifests)


def get_backups(cluster: Cluster) -> str:
    cache = f"--cache-dir={cluster.workdir / 'kubectl-cache'}"
    return cluster.kubectl("get", "backups", "-n", NAMESPACE, cache).rstrip()


def operator_running(kube: Kube) -> bool:
    for pod in kube.items(resource_path("v1", "pods", OPERATOR_NAMESPACE)):
        for status in pod.get("status", {}).get("containerStatuses", []):
            if status["restartCount"] > 0:
                raise ComponentError(f"the operator crashed: {status}")
            if "running" in status.get("state", {}):
                return True
    return False


def ferretdb_ready(kube: Kube) -> bool:
    pod = kube.get(resource_path("v1", "pods", NAMESPACE, "ferretdb"))
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def run_demo(cluster: Cluster, kind: KindCluster, kube: Kube) -> None:
    apply(cluster, cluster.kubectl("kustomize", str(OVERLAY)))
    wait_for(lambda: operator_running(kube), 180, "the operator to run", interval=1)
    say("operator running; deploying FerretDB and volumes in namespace demo")
    volumes = [VOLUME.format(claim=claim) for claim in ("uploads", "backups")]
    apply(cluster, "\n---".join([NAMESPACE_YAML, *volumes]))
    account = resource_path("v1", "serviceaccounts", NAMESPACE, "default")
    wait_for(lambda: kube.get_or_none(account), 60, "the default ServiceAccount", interval=0.5)
    apply(cluster, FERRETDB)
    wait_for(lambda: ferretdb_ready(kube), 120, "FerretDB to be ready", interval=0.5)
    say("FerretDB ready; seeding the database and the uploads volume")
    uri = [secret_volume("shop-mongo")]
    run_job(kube, NAMESPACE, python_job("seed-db", OPERATOR_IMAGE, SEED_DATABASE, [URI_MOUNT], uri))
    mount, volume = {"name": "uploads", "mountPath": "/data"}, pvc_volume("uploads", "uploads")
    run_job(
        kube, NAMESPACE, python_job("seed-files", OPERATOR_IMAGE, SEED_FILES, [mount], [volume])
    )
    say("seeded; creating DatabaseBackup shop-1 and FilesBackup uploads-1")
    apply(cluster, BACKUPS)

    last: list[str] = []
    deadline = time.monotonic() + 300
    while True:
        backups = [b for p in PLURALS for b in kube.items(resource_path(GROUP, p, NAMESPACE))]
        phases = {b.get("status", {}).get("phase") for b in backups}
        table = get_backups(cluster)
        shown = [line.rsplit(None, 1)[0] for line in table.splitlines() if line.strip()]
        if shown != last:  # something changed other than the AGE column
            last = shown
            say(f"kubectl get backups -n {NAMESPACE}")
            print(table, flush=True)
        if phases == {"Succeeded"} or "Failed" in phases:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the backups did not finish in 300s: {phases}")
        time.sleep(1)
    if "Failed" in phases:
        raise ComponentError(f"a backup failed: {[b.get('status') for b in backups]}")
    say("both backups Succeeded; artifacts on the backups volume:")
    claim = kube.get(resource_path("v1", "persistentvolumeclaims", NAMESPACE, "backups"))
    volume = kube.get(resource_path("v1", "persistentvolumes", None, claim["spec"]["volumeName"]))
    directory = (volume["spec"].get("hostPath") or volume["spec"].get("local") or {})["path"]
    for b in backups:
        artifact = b["status"]["artifact"]
        on_node = f"{directory}/{artifact['path']}"
        print(f"  {b['kind']}/{b['metadata']['name']}: {artifact['path']}")
        print(f"    size {artifact.get('size')} ({artifact['sizeBytes']} bytes)")
        print(f"    sha256 {artifact['sha256']} (status)")
        print(
            f"    sha256 {kind.node_exec('sha256sum', on_node).split()[0]} (the file on the node)"
        )
        print(f"    on the node: {on_node}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the cluster up until Ctrl-C")
    parser.add_argument("--workdir", type=Path, help="where to keep logs and volumes")
    args = parser.parse_args()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="backup-operator-demo-"))
    status = 1
    kind: KindCluster | None = None
    try:
        say("building (or reusing) the FerretDB image and the kind node image...")
        archives = build_test_images(root / "images", e2e_static_dir())
        kind = KindCluster(CLUSTER_NAME, root / "kind")
        began = time.monotonic()
        kind.start()
        say(f"kind cluster {CLUSTER_NAME} up in {time.monotonic() - began:.1f}s; loading images")
        cluster = Cluster(kind.kubeconfig, root, kind_cluster=CLUSTER_NAME)
        for reference, archive in archives.items():
            cluster.load_archive(reference, archive)
        operator_archive = save_image(OPERATOR_IMAGE, root / "operator-image.tar")
        cluster.load_archive(OPERATOR_IMAGE, operator_archive)
        say(f"images loaded: {OPERATOR_IMAGE}, {', '.join(archives)}")
        with Kube(kind.kubeconfig) as kube:
            run_demo(cluster, kind, kube)
        status = 0
        if args.keep:
            say(f"keeping the cluster; delete it with: kind delete cluster --name {CLUSTER_NAME}")
            print(f"export KUBECONFIG={kind.kubeconfig}", flush=True)
    except KeyboardInterrupt:
        say("interrupted")
    except (
        ComponentError,
        ToolsUnavailableError,
        NodeToolsUnavailableError,
        TimeoutError,
        OSError,
        AssertionError,
    ) as error:
        print(f"demo failed: {error}\n(logs under {root})", file=sys.stderr)
    finally:
        if kind is not None and not (args.keep and status == 0):
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave a mess
            say("deleting the cluster...")
            kind.delete()
        say(f"done (logs in {root})")
    return status


if __name__ == "__main__":
    sys.exit(main())
