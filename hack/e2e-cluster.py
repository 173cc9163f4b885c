#!/usr/bin/env python3
"""Run the e2e cluster by hand: a control plane plus this host as its node, until Ctrl-C.

Why it exists: to poke at a cluster whose pods really run (containerd + runc + kubelet on
this host, see tests/support/node.py) without a test around it. Needs root, Debian's
``containerd``, ``runc`` and ``containernetworking-plugins``. Usage::

    sudo python3 hack/e2e-cluster.py up [--workdir DIR] [--image backup-operator:dev ...]

It prints ``export KUBECONFIG=...`` and, for each ``--image`` found in the local Docker
engine, imports it into the node (``docker save | ctr import``). The e2e test images
(testbox, FerretDB) are imported too. Stop with Ctrl-C: pods are deleted, every component
is stopped, mounts and the bridge are removed; logs stay in the work directory.
Then ``E2E_KUBECONFIG=<that kubeconfig> pytest tests/e2e`` runs the suite against it.
"""

from __future__ import annotations

import argparse
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

from tests.support.controlplane import ControlPlane  # noqa: E402
from tests.support.node import (  # noqa: E402
    Node,
    NodeToolsUnavailableError,
    build_test_images,
    control_plane_args,
    node_tools,
)
from tests.support.processes import ComponentError  # noqa: E402
from tests.support.tools import ToolsUnavailableError, tools  # noqa: E402


def up(workdir: Path | None, images: list[str], archives: list[Path]) -> int:
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        binaries = tools()
        node_binaries = node_tools()
    except (ToolsUnavailableError, NodeToolsUnavailableError) as error:
        print(f"e2e-cluster: cannot get the binaries: {error}", file=sys.stderr)
        return 1
    built = time.monotonic()
    root = workdir or Path(tempfile.mkdtemp(prefix="backup-operator-e2e-"))
    plane = ControlPlane(root / "controlplane", binaries=binaries, **control_plane_args())
    node = Node(plane, root / "node", binaries=node_binaries)
    try:
        plane.start()
        node.start()
        for archive in build_test_images(root / "images", node_binaries.static_dir).values():
            node.import_image(archive)
        for path in archives:
            node.import_image(path)
        for image in images:
            save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            assert save.stdout is not None
            node.import_image(save.stdout)
            if save.wait() != 0:
                raise ComponentError(f"docker save {image} failed")
    except (ComponentError, TimeoutError, OSError) as error:
        print(f"e2e-cluster: did not start: {error}", file=sys.stderr)
        node.close()
        plane.close()
        return 1
    figures = {**plane.startup_seconds, **node.startup_seconds}
    print(f"# work directory: {root}")
    print(
        f"# binaries ready in {built - started:.1f}s; cluster up in {time.monotonic() - built:.1f}s"
    )
    print("# startup: " + ", ".join(f"{k} {v:.1f}s" for k, v in figures.items()))
    print(f"# node images: {', '.join(node.images())}")
    print(f"export KUBECONFIG={plane.kubeconfig}")
    print("# Ctrl-C stops everything.", flush=True)
    try:
        done.wait()
    finally:
        node.close()
        plane.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("up", help="start the cluster and wait for Ctrl-C")
    start.add_argument("--workdir", type=Path, help="where to keep logs and certificates")
    start.add_argument(
        "--image",
        action="append",
        default=[],
        help="a local Docker image to import into the node (repeatable)",
    )
    start.add_argument(
        "--image-archive",
        action="append",
        type=Path,
        default=[],
        help="an image archive (docker save) to import into the node (repeatable)",
    )
    args = parser.parse_args()
    return up(args.workdir, args.image, args.image_archive)


if __name__ == "__main__":
    sys.exit(main())
