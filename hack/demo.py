#!/usr/bin/env python3
"""Demo: the packaged operator backs up a database and a volume on a cluster started here.

What it does (``make demo`` builds the image first, then runs this): starts the e2e
cluster (a control plane plus this host as its node, as the e2e ``cluster`` fixture does;
binaries come from the cache of ``make tools``), imports the test images and
``backup-operator:dev`` into the node, installs manifests/overlays/cluster, deploys
FerretDB in namespace ``demo`` and seeds it and a volume, creates a DatabaseBackup and a
FilesBackup, prints ``kubectl get backups -n demo`` each time a backup changes until both
are Succeeded, prints the artifacts, then tears the cluster down. Takes about 1.5 minutes
once the binaries and images are cached. Needs root (see tests/support/node.py).

    python3 hack/demo.py [--keep] [--workdir DIR]

``--keep`` leaves the cluster up (prints ``export KUBECONFIG=...``) until Ctrl-C.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.conftest import OPERATOR_IMAGE, OPERATOR_NAMESPACE, Cluster  # noqa: E402
from tests.e2e.helpers import RESTRICTED_CONTAINER, RESTRICTED_POD, run_job  # noqa: E402
from tests.e2e.test_backups import (  # noqa: E402
    GROUP,
    OVERLAY,
    SEED_DATABASE,
    SEED_FILES,
    URI_MOUNT,
    create_backup,
    pvc_volume,
    python_job,
    secret,
    secret_volume,
)
from tests.support.controlplane import ControlPlane  # noqa: E402
from tests.support.kube import Kube, resource_path  # noqa: E402
from tests.support.node import (  # noqa: E402
    FERRETDB_IMAGE,
    Node,
    build_test_images,
    control_plane_args,
    node_tools,
)
from tests.support.processes import ComponentError  # noqa: E402
from tests.support.tools import tools  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402

NAMESPACE = "demo"
PLURALS = ("databasebackups", "filesbackups")
STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"[demo {time.monotonic() - STARTED:5.1f}s] {text}", flush=True)


def import_operator_image(node: Node) -> None:
    docker = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker")
    save = subprocess.Popen([docker or "docker", "save", OPERATOR_IMAGE], stdout=subprocess.PIPE)
    assert save.stdout is not None
    node.import_image(save.stdout)
    if save.wait() != 0:
        raise ComponentError(f"docker save {OPERATOR_IMAGE} failed (run `make image`)")


def install_operator(cluster: Cluster, kube: Kube) -> None:
    cluster.kubectl(
        "apply", "--server-side", "-f", "-", input_text=cluster.kubectl("kustomize", str(OVERLAY))
    )

    def running() -> bool:
        for pod in kube.items(resource_path("v1", "pods", OPERATOR_NAMESPACE)):
            for status in pod.get("status", {}).get("containerStatuses", []):
                if status["restartCount"] > 0:
                    raise ComponentError(f"the operator crashed: {status}")
                if "running" in status.get("state", {}):
                    return True
        return False

    wait_for(running, 180, "the operator to run", interval=1)


def make_volume(cluster: Cluster, kube: Kube, claim: str) -> None:
    """A hostPath PersistentVolume bound to a new claim, as the e2e ``volumes`` fixture does."""
    directory = cluster.workdir / "volumes" / claim
    directory.mkdir(parents=True)
    directory.chmod(0o777)
    spec = {"accessModes": ["ReadWriteOnce"], "storageClassName": "demo-hostpath"}
    pv_spec = {
        **spec,
        "capacity": {"storage": "1Gi"},
        "persistentVolumeReclaimPolicy": "Retain",
        "hostPath": {"path": str(directory), "type": "Directory"},
        "claimRef": {"namespace": NAMESPACE, "name": claim},
    }
    pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"demo-{claim}"}}
    kube.create(resource_path("v1", "persistentvolumes"), {**pv, "spec": pv_spec})
    pvc_spec = {
        **spec,
        "volumeName": f"demo-{claim}",
        "resources": {"requests": {"storage": "1Gi"}},
    }
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim}}
    kube.create(resource_path("v1", "persistentvolumeclaims", NAMESPACE), {**pvc, "spec": pvc_spec})


def deploy_ferretdb(kube: Kube) -> str:
    """FerretDB as a pod behind a Service (the e2e ``mongo_uri`` fixture); its URI."""
    labels = {"app": "ferretdb"}
    args = ["--handler=sqlite", "--sqlite-url=file:/data/", "--state-dir=/data"]
    args += ["--listen-addr=:27017", "--debug-addr=-", "--telemetry=disable"]
    ferretdb = {
        "name": "ferretdb",
        "image": FERRETDB_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "ports": [{"containerPort": 27017, "name": "mongodb"}],
        "readinessProbe": {"tcpSocket": {"port": 27017}, "periodSeconds": 2},
        "securityContext": RESTRICTED_CONTAINER,
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    pod_spec = {
        "automountServiceAccountToken": False,
        "securityContext": RESTRICTED_POD,
        "containers": [ferretdb],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ferretdb", "labels": labels}}
    kube.create(resource_path("v1", "pods", NAMESPACE), {**pod, "spec": pod_spec})
    service_spec = {"selector": labels, "ports": [{"port": 27017, "targetPort": "mongodb"}]}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ferretdb"}}
    kube.create(resource_path("v1", "services", NAMESPACE), {**service, "spec": service_spec})

    def ready() -> bool:
        status = kube.get(resource_path("v1", "pods", NAMESPACE, "ferretdb")).get("status", {})
        return any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions", [])
        )

    wait_for(ready, 120, "FerretDB to be ready", interval=0.5)
    return f"mongodb://ferretdb.{NAMESPACE}.svc.cluster.local:27017/"


def run_demo(cluster: Cluster, kube: Kube) -> None:
    install_operator(cluster, kube)
    say("operator running")
    restricted = {
        f"pod-security.kubernetes.io/{k}": v
        for k, v in (("enforce", "restricted"), ("enforce-version", "latest"))
    }
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": restricted},
    }
    kube.create(resource_path("v1", "namespaces"), namespace)
    wait_for(
        lambda: kube.get_or_none(resource_path("v1", "serviceaccounts", NAMESPACE, "default")),
        60,
        "the default ServiceAccount",
    )
    for claim in ("uploads", "backups"):
        make_volume(cluster, kube, claim)
    secret(kube, NAMESPACE, "shop-mongo", deploy_ferretdb(kube))
    say("FerretDB ready; seeding the database and the uploads volume")
    run_job(
        kube,
        NAMESPACE,
        python_job(
            "seed-db", OPERATOR_IMAGE, SEED_DATABASE, [URI_MOUNT], [secret_volume("shop-mongo")]
        ),
    )
    data_mount = {"name": "uploads", "mountPath": "/data"}
    run_job(
        kube,
        NAMESPACE,
        python_job(
            "seed-files",
            OPERATOR_IMAGE,
            SEED_FILES,
            [data_mount],
            [pvc_volume("uploads", "uploads")],
        ),
    )
    say("seeded; creating DatabaseBackup shop-1 and FilesBackup uploads-1")
    storage = {"pvc": {"claimName": "backups"}}
    source = {"uriSecretRef": {"name": "shop-mongo", "key": "uri"}, "database": "shop"}
    create_backup(
        kube,
        NAMESPACE,
        "DatabaseBackup",
        "shop-1",
        {"source": source, "storage": storage, "compression": "gzip"},
    )
    files = {
        "source": {"pvc": {"claimName": "uploads"}},
        "exclude": ["cache/*"],
        "storage": storage,
        "compression": "zstd",
    }
    create_backup(kube, NAMESPACE, "FilesBackup", "uploads-1", files)

    last: object = None
    deadline = time.monotonic() + 300
    while True:
        backups = [
            b for plural in PLURALS for b in kube.items(resource_path(GROUP, plural, NAMESPACE))
        ]
        state = [
            (
                b["metadata"]["name"],
                b.get("status", {}).get("phase"),
                b.get("status", {}).get("message"),
            )
            for b in backups
        ]
        if state != last:
            last = state
            say("kubectl get backups -n demo")
            print(cluster.kubectl("get", "backups", "-n", NAMESPACE).rstrip(), flush=True)
        phases = {phase for _, phase, _ in state}
        if phases == {"Succeeded"} or "Failed" in phases:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the backups did not finish in 300s: {state}")
        time.sleep(1)
    if "Failed" in phases:
        raise ComponentError(f"a backup failed: {state}")
    say("both backups Succeeded; artifacts on the backups volume:")
    for b in backups:
        artifact = b["status"]["artifact"]
        print(f"  {b['kind']}/{b['metadata']['name']}: {artifact['path']}")
        print(
            f"    size {artifact.get('size')} ({artifact['sizeBytes']} bytes)",
            f"sha256 {artifact['sha256']}",
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the cluster up until Ctrl-C")
    parser.add_argument("--workdir", type=Path, help="where to keep logs and volumes")
    args = parser.parse_args()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    say("getting the cluster binaries (cached by `make tools`)...")
    binaries, node_binaries = tools(), node_tools()
    root = args.workdir or Path(tempfile.mkdtemp(prefix="backup-operator-demo-"))
    plane = ControlPlane(root / "controlplane", binaries=binaries, **control_plane_args())
    node = Node(plane, root / "node", binaries=node_binaries)
    status = 1
    try:
        say(f"starting the cluster in {root}...")
        began = time.monotonic()
        plane.start()
        node.start()
        say(f"cluster up in {time.monotonic() - began:.1f}s; importing images...")
        for archive in build_test_images(root / "images", node_binaries).values():
            node.import_image(archive)
        import_operator_image(node)
        say(f"images imported: {', '.join(node.images())}")
        cluster = Cluster(plane.kubeconfig, root, node=node)
        with Kube(plane.kubeconfig) as kube:
            run_demo(cluster, kube)
        status = 0
        if args.keep:
            say("keeping the cluster up; Ctrl-C stops it")
            print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
            threading.Event().wait()
    except KeyboardInterrupt:
        say("interrupted")
    except (ComponentError, TimeoutError, OSError, AssertionError) as error:
        print(f"demo failed: {error}\n(logs under {root})", file=sys.stderr)
    finally:
        say("tearing the cluster down...")
        node.close()
        plane.close()
        say(f"done (logs in {root})")
    return status


if __name__ == "__main__":
    sys.exit(main())
