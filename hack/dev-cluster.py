#!/usr/bin/env python3
"""Run the integration-test cluster by hand: control plane + FerretDB until Ctrl-C.

Why it exists: to develop or debug the operator against the same real components the
integration tests use (etcd, kube-apiserver, kube-controller-manager, FerretDB), without
a test around them. Usage::

    python hack/dev-cluster.py up                 # prints `export KUBECONFIG=...`
    python hack/dev-cluster.py up --play shop     # also play the kubelet for Job pods in "shop"

The binaries are built on first use by hack/build-tools.sh (a first Kubernetes build
takes 15-30 minutes). Stop with Ctrl-C: every component is stopped and etcd's data is
deleted; certificates, kubeconfigs and logs stay in the printed work directory.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.controlplane import ControlPlane  # noqa: E402
from tests.support.ferretdb import FerretDB  # noqa: E402
from tests.support.podplayer import PodPlayer  # noqa: E402
from tests.support.processes import ComponentError  # noqa: E402
from tests.support.tools import ToolsUnavailableError, tools  # noqa: E402


def up(workdir: Path | None, play: list[str], with_mongo: bool) -> int:
    """Start everything, print how to use it, and wait for SIGINT/SIGTERM."""
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        binaries = tools()
    except ToolsUnavailableError as error:
        print(f"dev-cluster: cannot get the binaries: {error}", file=sys.stderr)
        return 1
    root = workdir or Path(tempfile.mkdtemp(prefix="backup-operator-dev-"))
    plane = ControlPlane(root / "controlplane", binaries=binaries)
    mongo = FerretDB(root / "ferretdb", binary=binaries.ferretdb) if with_mongo else None
    player: PodPlayer | None = None
    try:
        plane.start()
        if mongo is not None:
            mongo.start()
        if play:
            player = PodPlayer(plane.kubeconfig, play)
            player.start()
        startup = dict(plane.startup_seconds)
        if mongo is not None and mongo.startup_seconds is not None:
            startup["ferretdb"] = mongo.startup_seconds
        print(f"# work dir: {root}")
        print("# startup: " + ", ".join(f"{k} {v:.2f}s" for k, v in startup.items()))
        for name, path in {**plane.logs, **(mongo.logs if mongo else {})}.items():
            print(f"# log {name}: {path}")
        if player is not None:
            print(f"# PodPlayer plays Job pods in: {', '.join(play)}")
        print(f"export KUBECONFIG={plane.kubeconfig}")
        if mongo is not None:
            print(f"export MONGO_URI={mongo.uri}")
        print("# Ctrl-C to stop", flush=True)
        done.wait()
    except (ComponentError, TimeoutError, OSError) as error:
        print(f"dev-cluster: {error}", file=sys.stderr)
        return 1
    finally:
        print("# stopping", file=sys.stderr)
        if player is not None:
            player.stop()
        if mongo is not None:
            mongo.close()
        plane.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the cluster and FerretDB until Ctrl-C")
    start.add_argument("--workdir", type=Path, help="directory for data, certificates, logs")
    start.add_argument(
        "--play",
        action="append",
        default=[],
        metavar="NAMESPACE",
        help="run PodPlayer (fake kubelet for Job pods) in this namespace (repeatable)",
    )
    start.add_argument("--no-mongo", action="store_true", help="do not start FerretDB")
    args = parser.parse_args(argv)
    return up(args.workdir, args.play, not args.no_mongo)


if __name__ == "__main__":
    sys.exit(main())
