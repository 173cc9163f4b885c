"""A real node on this host: containerd + runc + CNI, kubelet, kube-scheduler, kube-proxy.

Why it exists: the integration tier plays the kubelet (``PodPlayer``); the e2e tier must
prove the operator with pods that really run: its own Deployment, the backup Jobs' runner
containers writing to real volumes, a FerretDB pod reached through a Service. No image can
be pulled on these machines, and kind's node image cannot be built offline, so ``Node``
turns the host into the single node of a ``ControlPlane``:

- containerd (Debian's, 1.6) with its own root, state and socket under ``workdir``, the
  CRI plugin using runc, cgroupfs (cgroup v1), and a pause image built here
  (``hack/build-tools.sh node`` compiles a static ``pause``; ``image_archive`` packs it);
- CNI: a bridge (``bridge``) with host-local IPAM, ``firewall`` (Docker's FORWARD policy is
  DROP) and ``portmap``; loopback is set up by containerd itself;
- kubelet (client certificate for ``system:node:<name>``, so the Node authorizer and
  NodeRestriction apply), kube-scheduler, and kube-proxy (iptables) so that Service
  ClusterIPs, including the ``kubernetes`` Service the in-cluster config uses, work;
- CoreDNS on the bridge's gateway address as the pods' cluster DNS (kopf logs in to
  ``https://kubernetes.default.svc``; users name databases by Service DNS names).

The control plane must be started with ``control_plane_args()``: the apiserver must listen
on an address pods can reach and publish it as the ``kubernetes`` Service's endpoint, and
the controller manager must run the controllers a real node needs (Deployments, EndpointSlices,
node lifecycle, PersistentVolume binding).

One ``Node`` per machine at a time: the kubelet keeps a few paths of its own outside
``workdir`` (``/var/lib/kubelet/device-plugins``) and its pods' cgroups under ``/kubepods``.
``close()`` stops the scheduler, deletes the node's pods so the kubelet tears down their
sandboxes (CNI DEL), then stops everything, kills any container left, unmounts what the
kubelet and containerd mounted under ``workdir``, and removes the bridge and kube-proxy's
iptables rules. Logs stay in ``workdir``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import ipaddress
import json
import os
import shlex
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import yaml

from tests.support.controlplane import CONTROLLERS, ControlPlane
from tests.support.kube import ApiException, Kube, resource_path
from tests.support.processes import ComponentError, ManagedProcess, free_port
from tests.support.tools import (
    BUILD_SCRIPT,
    ToolsUnavailableError,
    build_components,
    read_versions,
)
from tests.support.waiting import wait_for

#: Image references of the images built here (never pulled: imagePullPolicy Never/IfNotPresent).
PAUSE_IMAGE = "localhost/backup-operator-e2e/pause:1"
TESTBOX_IMAGE = "localhost/backup-operator-e2e/testbox:1"
FERRETDB_IMAGE = "localhost/backup-operator-e2e/ferretdb:1"
#: UID/GID the e2e images run as (the ``restricted`` Pod Security Standard wants non-root).
NONROOT = 65532

DEFAULT_NODE_NAME = "e2e-node"
DEFAULT_POD_SUBNET = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
DEFAULT_BRIDGE = "boe2e0"
#: Controllers a node with real pods needs beyond the integration tier's ``CONTROLLERS``.
NODE_CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "node-lifecycle-controller",
    "persistentvolume-binder-controller",
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
)
CONTAINERD_TIMEOUT_SECONDS = 30.0
NODE_READY_TIMEOUT_SECONDS = 120.0
SCHEDULER_TIMEOUT_SECONDS = 60.0
POD_TEARDOWN_TIMEOUT_SECONDS = 60.0
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
#: Keep in step with hack/build-tools.sh (build_node_coredns).
COREDNS_VERSION = "v1.14.7"
CLUSTER_DOMAIN = "cluster.local"


# --------------------------------------------------------------------------- binaries


class NodeToolsUnavailableError(RuntimeError):
    """The node's binaries could not be built or found; the message says why."""


@dataclass(frozen=True)
class NodeTools:
    """kubelet, kube-scheduler, kube-proxy and the static binaries of the e2e images."""

    kubernetes_dir: Path
    static_dir: Path
    coredns_dir: Path

    @property
    def kubelet(self) -> Path:
        return self.kubernetes_dir / "kubelet"

    @property
    def kube_scheduler(self) -> Path:
        return self.kubernetes_dir / "kube-scheduler"

    @property
    def kube_proxy(self) -> Path:
        return self.kubernetes_dir / "kube-proxy"

    @property
    def coredns(self) -> Path:
        return self.coredns_dir / "coredns"

    @property
    def pause(self) -> Path:
        return self.static_dir / "pause"

    @property
    def testbox(self) -> Path:
        return self.static_dir / "testbox"

    @property
    def ferretdb(self) -> Path:
        """FerretDB linked statically (for a ``FROM scratch`` image)."""
        return self.static_dir / "ferretdb"

    def all(self) -> dict[str, Path]:
        return {
            "kubelet": self.kubelet,
            "kube-scheduler": self.kube_scheduler,
            "kube-proxy": self.kube_proxy,
            "coredns": self.coredns,
            "pause": self.pause,
            "testbox": self.testbox,
            "ferretdb (static)": self.ferretdb,
        }


@functools.cache
def node_tools() -> NodeTools:
    """Build (once, cached by version) and locate the node's binaries.

    Runs ``hack/build-tools.sh node`` under the same lock as ``tools()``.
    """
    versions = read_versions()
    try:
        bin_dir = build_components("node")
    except (ToolsUnavailableError, OSError) as error:
        raise NodeToolsUnavailableError(str(error)) from error
    found = NodeTools(
        kubernetes_dir=bin_dir / f"kubernetes-{versions['KUBERNETES_VERSION']}",
        static_dir=_static_dir(bin_dir, versions),
        coredns_dir=bin_dir / f"coredns-{COREDNS_VERSION}",
    )
    missing = [
        f"{name} ({path})"
        for name, path in found.all().items()
        if not (path.is_file() and os.access(path, os.X_OK))
    ]
    if missing:
        raise NodeToolsUnavailableError(f"missing after {BUILD_SCRIPT} node: {', '.join(missing)}")
    return found


def host_requirements() -> list[str]:
    """What this host lacks to run a ``Node`` (empty when it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (the kubelet and containerd need it)")
    for binary in ("containerd", "ctr", "runc", "iptables", "ip", "umount", "mount"):
        if shutil.which(binary) is None:
            missing.append(f"{binary} (apt-get install containerd runc iptables iproute2)")
    if _cni_bin_dir() is None:
        missing.append("CNI plugins (apt-get install containernetworking-plugins)")
    return missing


def _cni_bin_dir() -> str | None:
    for directory in CNI_BIN_DIRS:
        if all((Path(directory) / p).exists() for p in ("bridge", "host-local", "portmap")):
            return directory
    return None


# --------------------------------------------------------------------------- images


@dataclass(frozen=True)
class ImageFile:
    """A file in an image layer: ``source`` (a path on the host) or ``data``."""

    path: str
    source: Path | None = None
    data: bytes = b""
    mode: int = 0o644


def image_archive(
    destination: Path,
    reference: str,
    files: Iterable[ImageFile],
    *,
    entrypoint: Sequence[str],
    user: str = f"{NONROOT}:{NONROOT}",
    env: Mapping[str, str] | None = None,
    directories: Mapping[str, int] | None = None,
    exposed_ports: Sequence[int] = (),
) -> Path:
    """Write a one-layer ``FROM scratch`` image as a ``docker save`` archive.

    ``ctr images import`` and ``kind load image-archive`` both read it; nothing is
    pulled and no Docker daemon is needed. ``directories`` maps paths to modes (e.g.
    ``{"/tmp": 0o1777}``); ``/etc/passwd`` and ``/etc/group`` name the non-root user.
    """
    layer = io.BytesIO()
    dirs = {
        "etc": 0o755,
        "tmp": 0o1777,
        **{d.strip("/"): m for d, m in (directories or {}).items()},
    }
    listed = list(files)
    for item in listed:
        parent = Path(item.path.strip("/")).parent
        while str(parent) != ".":
            dirs.setdefault(str(parent), 0o755)
            parent = parent.parent
    passwd = (
        "root:x:0:0:root:/:/sbin/nologin\n"
        f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/tmp:/sbin/nologin\n"
    )
    group = f"root:x:0:\nnonroot:x:{NONROOT}:\n"
    listed += [
        ImageFile("/etc/passwd", data=passwd.encode()),
        ImageFile("/etc/group", data=group.encode()),
    ]
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(dirs):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = dirs[name]
            tar.addfile(info)
        for item in sorted(listed, key=lambda f: f.path):
            data = item.source.read_bytes() if item.source is not None else item.data
            info = tarfile.TarInfo(item.path.strip("/"))
            info.size = len(data)
            info.mode = item.mode
            tar.addfile(info, io.BytesIO(data))
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Entrypoint": list(entrypoint),
            "User": user,
            "Env": [f"{k}={v}" for k, v in (env or {"PATH": "/"}).items()],
            "WorkingDir": "/",
            "ExposedPorts": {f"{p}/tcp": {} for p in exposed_ports},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/support/node.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [reference], "Layers": [layer_name]}]
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(destination, mode="w") as archive:
        for name, data in (
            (layer_name, layer_bytes),
            (config_name, config_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return destination


def e2e_static_dir() -> Path:
    """Build (once) the static binaries of the e2e images only (``... e2e-images``).

    What a cluster that is not this host (kind) needs: no kubelet, scheduler or proxy.
    """
    try:
        found = _static_dir(build_components("e2e-images"), read_versions())
    except (ToolsUnavailableError, OSError) as error:
        raise NodeToolsUnavailableError(str(error)) from error
    if not all((found / name).is_file() for name in ("testbox", "ferretdb")):
        raise NodeToolsUnavailableError(f"missing after {BUILD_SCRIPT} e2e-images: {found}")
    return found


def _static_dir(bin_dir: Path, versions: Mapping[str, str]) -> Path:
    # Keep in step with build_node_static in hack/build-tools.sh.
    return bin_dir / f"e2e-static-1-ferretdb-{versions['FERRETDB_VERSION']}"


def build_test_images(directory: Path, static_dir: Path) -> dict[str, Path]:
    """The e2e images built here: ``TESTBOX_IMAGE`` and ``FERRETDB_IMAGE`` (archives).

    FerretDB's image runs ``/ferretdb`` as non-root with the SQLite backend; pass
    ``--sqlite-url=file:/data/`` and ``--state-dir=/data`` with a writable volume at /data.
    """
    return {
        TESTBOX_IMAGE: image_archive(
            directory / "testbox.tar",
            TESTBOX_IMAGE,
            [ImageFile("/testbox", source=static_dir / "testbox", mode=0o755)],
            entrypoint=["/testbox"],
        ),
        FERRETDB_IMAGE: image_archive(
            directory / "ferretdb.tar",
            FERRETDB_IMAGE,
            [ImageFile("/ferretdb", source=static_dir / "ferretdb", mode=0o755)],
            entrypoint=["/ferretdb"],
            directories={"/data": 0o777},
            exposed_ports=[27017],
        ),
    }


# --------------------------------------------------------------------------- host facts


def host_ip() -> str:
    """The host's address on its default route: pods reach the apiserver there."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent
            address: str = sock.getsockname()[0]
        except OSError:
            address = "127.0.0.1"
    if address.startswith("127."):
        raise ComponentError("no non-loopback IPv4 address: pods could not reach the apiserver")
    return address


def control_plane_args(address: str | None = None) -> dict[str, list[str]]:
    """Keyword arguments for ``ControlPlane(...)`` so that a ``Node`` can join it.

    The apiserver listens on every address and publishes ``address`` (default: the host's)
    as the ``kubernetes`` Service's endpoint (pods reach it through kube-proxy); the
    controller manager adds ``NODE_CONTROLLERS`` (``--controllers`` is a list flag:
    repeating it appends).
    """
    advertise = address or host_ip()
    return {
        "extra_apiserver_args": [
            "--bind-address=0.0.0.0",
            f"--advertise-address={advertise}",
            "--endpoint-reconciler-type=lease",
        ],
        "extra_controller_manager_args": [
            f"--controllers={','.join(c for c in NODE_CONTROLLERS if c not in CONTROLLERS)}",
        ],
    }


# --------------------------------------------------------------------------- node


@dataclass
class _Paths:
    root: Path
    containerd_root: Path = field(init=False)
    containerd_state: Path = field(init=False)
    containerd_socket: Path = field(init=False)
    cni_conf: Path = field(init=False)
    cni_ipam: Path = field(init=False)
    kubelet_root: Path = field(init=False)
    pod_logs: Path = field(init=False)
    images: Path = field(init=False)

    def __post_init__(self) -> None:
        self.containerd_root = self.root / "containerd" / "root"
        self.containerd_state = self.root / "containerd" / "state"
        self.containerd_socket = self.root / "containerd" / "containerd.sock"
        self.cni_conf = self.root / "cni" / "net.d"
        self.cni_ipam = self.root / "cni" / "ipam"
        self.kubelet_root = self.root / "kubelet"
        self.pod_logs = self.root / "pod-logs"
        self.images = self.root / "images"


class Node:
    """containerd + kubelet + kube-scheduler + kube-proxy on this host, for ``control_plane``.

    Attributes (after ``start()``): ``name``, ``workdir``, ``logs`` (component -> file),
    ``startup_seconds`` (component -> seconds to ready), ``pod_logs_dir`` (the kubelet's
    container logs, ``<ns>_<pod>_<uid>/<container>/0.log``).
    """

    def __init__(
        self,
        control_plane: ControlPlane,
        workdir: Path | None = None,
        *,
        name: str = DEFAULT_NODE_NAME,
        binaries: NodeTools | None = None,
        pod_subnet: str = DEFAULT_POD_SUBNET,
        bridge: str = DEFAULT_BRIDGE,
        address: str | None = None,
    ) -> None:
        self.control_plane = control_plane
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="backup-operator-node-")) if workdir is None else workdir
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.pod_subnet = pod_subnet
        self.bridge = bridge
        self.address = address
        self._binaries = binaries
        self.paths = _Paths(self.workdir)
        self.pod_logs_dir = self.paths.pod_logs
        self.logs: dict[str, Path] = {
            n: self.workdir / f"{n}.log"
            for n in ("containerd", "coredns", "kubelet", "kube-scheduler", "kube-proxy")
        }
        self.startup_seconds: dict[str, float] = {}
        self._processes: dict[str, ManagedProcess] = {}
        self._netns_before: set[str] = set()

    # ----------------------------------------------------------------- public API

    def start(self) -> None:
        """Start every component and wait for the Node to be Ready; undo all on failure."""
        missing = host_requirements()
        if missing:
            raise ComponentError("this host cannot run a node: " + "; ".join(missing))
        binaries = self._binaries if self._binaries is not None else node_tools()
        self.address = self.address or host_ip()
        self._netns_before = _netns_names()
        try:
            self._host_settings()
            self._start_containerd()
            self._timed("pause image", lambda: self.import_image(self._pause_archive(binaries)))
            self._write_cni_config()
            self._create_bridge()
            self._start_coredns(binaries)
            self._start_kubelet(binaries)
            self._start_kube_proxy(binaries)
            self._start_scheduler(binaries)
        except BaseException:
            self.close()
            raise

    def import_image(self, archive: Path | IO[bytes]) -> None:
        """Import a ``docker save`` / OCI archive (a path or a stream) into the node."""
        argv = self._ctr("images", "import", "-" if not isinstance(archive, Path) else str(archive))
        if isinstance(archive, Path):
            result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
        else:
            result = subprocess.run(
                argv, stdin=archive, capture_output=True, text=True, check=False, timeout=600
            )
        if result.returncode != 0:
            raise ComponentError(f"ctr images import failed: {result.stderr.strip()}")

    def images(self) -> list[str]:
        """The image references containerd has for Kubernetes."""
        out = subprocess.run(
            self._ctr("images", "list", "-q"), capture_output=True, text=True, check=True
        ).stdout
        return [line for line in out.splitlines() if line]

    def close(self) -> None:
        """Stop everything, kill the containers left, unmount, remove bridge and rules."""
        scheduler = self._processes.pop("kube-scheduler", None)
        if scheduler is not None:
            scheduler.stop()
        kubelet = self._processes.get("kubelet")
        if kubelet is not None and kubelet.running:
            with contextlib.suppress(Exception):
                self._delete_pods_and_wait()
        for name in ("kubelet", "kube-proxy", "coredns"):
            process = self._processes.pop(name, None)
            if process is not None:
                process.stop()
        self._kill_containers()
        containerd = self._processes.pop("containerd", None)
        if containerd is not None:
            containerd.stop()
        self._unmount_under(self.workdir)
        for ns in sorted(_netns_names() - self._netns_before):
            if ns.startswith("cni-"):
                subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
        if self._binaries is not None or "kube-proxy" in self.startup_seconds:
            with contextlib.suppress(Exception):
                binaries = self._binaries if self._binaries is not None else node_tools()
                subprocess.run(
                    [str(binaries.kube_proxy), "--cleanup"],
                    capture_output=True,
                    check=False,
                    timeout=60,
                )
        _remove_iptables_chains(HOST_CHAINS)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.paths.containerd_root)

    def __enter__(self) -> Node:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- internals

    def _ctr(self, *args: str) -> list[str]:
        return [
            "ctr",
            "--address",
            str(self.paths.containerd_socket),
            "--namespace",
            "k8s.io",
            *args,
        ]

    def _timed(self, name: str, action: Any) -> None:
        started = time.monotonic()
        action()
        self.startup_seconds[name] = time.monotonic() - started

    def _launch(self, name: str, argv: Sequence[str | os.PathLike[str]]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.logs[name], cwd=self.workdir)
        self._processes[name] = process
        process.start()
        return process

    def _await(self, name: str, process: ManagedProcess, probe: Any, timeout: float) -> None:
        started = time.monotonic()

        def ready() -> bool:
            process.check_alive()
            return bool(probe())

        try:
            wait_for(ready, timeout, f"{name} to be ready", interval=0.3, ignore=(OSError,))
        except TimeoutError as error:
            raise ComponentError(
                f"{error}; log {process.log_path}:\n{process.log_tail()}"
            ) from None
        self.startup_seconds[name] = time.monotonic() - started

    def _pause_archive(self, binaries: NodeTools) -> Path:
        return image_archive(
            self.paths.images / "pause.tar",
            PAUSE_IMAGE,
            [ImageFile("/pause", source=binaries.pause, mode=0o755)],
            entrypoint=["/pause"],
        )

    @staticmethod
    def _host_settings() -> None:
        """Forwarding on, and bridged traffic through iptables (kube-proxy's Service NAT for
        a pod talking to another pod on the same bridge needs it; Docker sets both too)."""
        bridge_nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
        if not bridge_nf.exists():
            subprocess.run(["modprobe", "br_netfilter"], capture_output=True, check=False)
        if not bridge_nf.exists():
            raise ComponentError("no br_netfilter (net.bridge.bridge-nf-call-iptables)")
        for path in (bridge_nf, Path("/proc/sys/net/ipv4/ip_forward")):
            if path.read_text().strip() != "1":
                path.write_text("1\n")

    def _start_containerd(self) -> None:
        p = self.paths
        for directory in (p.containerd_root, p.containerd_state, p.cni_conf, p.cni_ipam):
            directory.mkdir(parents=True, exist_ok=True)
        cni_bin = _cni_bin_dir()
        config = f"""\
version = 2
root = "{p.containerd_root}"
state = "{p.containerd_state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{p.containerd_socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{self.workdir / "containerd" / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  # No CAP_SYS_RESOURCE on these VMs: a negative oom_score_adj (the sandbox's -998)
  # cannot be set; keep every container's at least containerd's own.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{p.cni_conf}"
    max_conf_num = 1
"""
        config_path = self.workdir / "containerd" / "config.toml"
        config_path.write_text(config)
        process = self._launch("containerd", ["containerd", "--config", config_path])

        def serving() -> bool:
            if not p.containerd_socket.exists():
                return False
            return (
                subprocess.run(
                    self._ctr("version"), capture_output=True, check=False, timeout=10
                ).returncode
                == 0
            )

        self._await("containerd", process, serving, CONTAINERD_TIMEOUT_SECONDS)

    def _write_cni_config(self) -> None:
        conflist = {
            "cniVersion": "0.4.0",
            "name": "backup-operator-e2e",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.pod_subnet}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.paths.cni_ipam),
                    },
                },
                # Docker sets the FORWARD policy to DROP: let pod traffic through.
                {"type": "firewall", "backend": "iptables"},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (self.paths.cni_conf / "10-backup-operator-e2e.conflist").write_text(
            json.dumps(conflist, indent=2)
        )

    @property
    def gateway(self) -> str:
        """The bridge's address: the pods' default gateway and their DNS server."""
        return str(next(ipaddress.ip_network(self.pod_subnet).hosts()))

    def _create_bridge(self) -> None:
        """Create the CNI bridge with its gateway address now (the bridge plugin adopts it),
        so that CoreDNS can listen there before the first pod exists."""
        prefix = ipaddress.ip_network(self.pod_subnet).prefixlen
        for argv in (
            ["ip", "link", "add", self.bridge, "type", "bridge"],
            ["ip", "addr", "add", f"{self.gateway}/{prefix}", "dev", self.bridge],
            ["ip", "link", "set", self.bridge, "up"],
        ):
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            if result.returncode != 0 and "exists" not in result.stderr:
                raise ComponentError(f"{' '.join(argv)} failed: {result.stderr.strip()}")

    def _start_coredns(self, binaries: NodeTools) -> None:
        """Cluster DNS (CoreDNS's kubernetes plugin) on the gateway address, as kind has."""
        ready_port = free_port()
        corefile = f"""\
.:53 {{
    bind {self.gateway}
    errors
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {self.control_plane.kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    forward . /etc/resolv.conf
    cache 5
}}
"""
        path = self.workdir / "Corefile"
        path.write_text(corefile)
        process = self._launch("coredns", [binaries.coredns, "-conf", path])

        def ready() -> bool:
            import urllib.request

            url = f"http://127.0.0.1:{ready_port}/ready"
            with urllib.request.urlopen(url, timeout=3) as response:
                return bool(response.status == 200)

        self._await("coredns", process, ready, SCHEDULER_TIMEOUT_SECONDS)

    def _start_kube_proxy(self, binaries: NodeTools) -> None:
        kubeconfig = self.control_plane.make_user_kubeconfig("system:kube-proxy")
        healthz = free_port()
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "mode": "iptables",
            "clusterCIDR": CLUSTER_CIDR,
            "hostnameOverride": self.name,
            # Its node IP (else it assumes loopback); NodePorts only there, and no
            # route_localnet change on the host.
            "bindAddress": self.address,
            "nodePortAddresses": ["primary"],
            "iptables": {"localhostNodePorts": False},
            "healthzBindAddress": f"127.0.0.1:{healthz}",
            "metricsBindAddress": f"127.0.0.1:{free_port()}",
            # Leave the host's conntrack table size alone.
            "conntrack": {"maxPerCore": 0},
        }
        config_path = self.workdir / "kube-proxy.yaml"
        config_path.write_text(yaml.safe_dump(config))
        process = self._launch(
            "kube-proxy", [binaries.kube_proxy, f"--config={config_path}", "--v=2"]
        )

        def synced() -> bool:
            # The rules of the "kubernetes" Service are in: ClusterIPs work.
            rules = subprocess.run(
                ["iptables", "-w", "5", "-t", "nat", "-S", "KUBE-SERVICES"],
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            ).stdout
            return "default/kubernetes:https" in rules

        self._await("kube-proxy", process, synced, SCHEDULER_TIMEOUT_SECONDS)

    def _start_kubelet(self, binaries: NodeTools) -> None:
        p = self.paths
        p.kubelet_root.mkdir(parents=True, exist_ok=True)
        p.pod_logs.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.control_plane.make_user_kubeconfig(
            f"system:node:{self.name}", ["system:nodes"]
        )
        healthz = free_port()
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.address,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz,
            "containerRuntimeEndpoint": f"unix://{p.containerd_socket}",
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            # Kubernetes 1.35 refuses cgroup v1 hosts unless told otherwise.
            "failCgroupV1": False,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.control_plane.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "clusterDomain": CLUSTER_DOMAIN,
            "clusterDNS": [self.gateway],
            "resolvConf": "/etc/resolv.conf",
            "podLogsDir": str(p.pod_logs),
            "volumePluginDir": str(self.workdir / "volume-plugins"),
            # A shared test machine: never evict for disk, never collect images.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "registerNode": True,
            "nodeStatusReportFrequency": "10s",
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "enableControllerAttachDetach": True,
        }
        config_path = self.workdir / "kubelet.yaml"
        config_path.write_text(yaml.safe_dump(config))
        process = self._launch(
            "kubelet",
            [
                binaries.kubelet,
                f"--config={config_path}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={p.kubelet_root}",
                f"--cert-dir={p.kubelet_root / 'pki'}",
                f"--hostname-override={self.name}",
                f"--node-ip={self.address}",
                "--v=2",
            ],
        )
        kube = Kube(self.control_plane.kubeconfig)

        def node_ready() -> bool:
            node = kube.get_or_none(resource_path("v1", "nodes", name=self.name))
            if node is None:
                return False
            conditions = node.get("status", {}).get("conditions", [])
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            taints = node.get("spec", {}).get("taints") or []
            return ready and not any(t["key"] == "node.kubernetes.io/not-ready" for t in taints)

        try:
            self._await("kubelet", process, node_ready, NODE_READY_TIMEOUT_SECONDS)
        finally:
            kube.close()

    def _start_scheduler(self, binaries: NodeTools) -> None:
        kubeconfig = self.control_plane.make_user_kubeconfig("system:kube-scheduler")
        port = free_port()
        process = self._launch(
            "kube-scheduler",
            [
                binaries.kube_scheduler,
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / 'kube-scheduler-certs'}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
        )
        import ssl
        import urllib.request

        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE

        def healthy() -> bool:
            url = f"https://127.0.0.1:{port}/healthz"
            with urllib.request.urlopen(url, context=insecure, timeout=3) as response:
                return bool(response.status == 200)

        self._await("kube-scheduler", process, healthy, SCHEDULER_TIMEOUT_SECONDS)

    def _delete_pods_and_wait(self) -> None:
        """Delete this node's pods at once; the kubelet stops their sandboxes (CNI DEL)."""
        with Kube(self.control_plane.kubeconfig) as kube:
            pods = kube.request(
                "GET",
                resource_path("v1", "pods"),
                query={"fieldSelector": f"spec.nodeName={self.name}"},
            )
            for pod in pods.get("items", []):
                meta = pod["metadata"]
                with contextlib.suppress(ApiException):
                    kube.request(
                        "DELETE",
                        resource_path("v1", "pods", meta["namespace"], meta["name"]),
                        {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0},
                    )
        with contextlib.suppress(TimeoutError):
            wait_for(
                lambda: not self._running_tasks(),
                POD_TEARDOWN_TIMEOUT_SECONDS,
                "the kubelet to stop every pod",
                interval=1.0,
            )

    def _running_tasks(self) -> list[str]:
        result = subprocess.run(
            self._ctr("tasks", "list", "-q"),
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        return [line for line in result.stdout.splitlines() if line]

    def _kill_containers(self) -> None:
        if not self.paths.containerd_socket.exists():
            return
        containerd = self._processes.get("containerd")
        if containerd is None or not containerd.running:
            return
        with contextlib.suppress(Exception):
            for task in self._running_tasks():
                subprocess.run(
                    self._ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task),
                    capture_output=True,
                    check=False,
                    timeout=30,
                )
            deadline = time.monotonic() + 20
            for task in self._running_tasks():
                while time.monotonic() < deadline:
                    done = subprocess.run(
                        self._ctr("tasks", "delete", "--force", task),
                        capture_output=True,
                        check=False,
                        timeout=30,
                    )
                    if done.returncode == 0:
                        break
                    time.sleep(0.5)

    @staticmethod
    def _unmount_under(root: Path) -> None:
        prefix = str(root.resolve())
        mounts = []
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if point == prefix or point.startswith(prefix + "/"):
                    mounts.append(point)
        for point in sorted(set(mounts), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


#: iptables chains the kubelet and the CNI firewall plugin leave behind (kube-proxy's own
#: go with ``kube-proxy --cleanup``).
HOST_CHAINS = (
    "KUBE-FIREWALL",
    "KUBE-KUBELET-CANARY",
    "KUBE-IPTABLES-HINT",
    "CNI-FORWARD",
    "CNI-ADMIN",
)


def _remove_iptables_chains(chains: Sequence[str]) -> None:
    """Delete the rules jumping to ``chains``, then the chains, in every table."""
    for table in ("filter", "nat", "mangle"):
        saved = subprocess.run(
            ["iptables-save", "-t", table], capture_output=True, text=True, check=False
        ).stdout
        for line in saved.splitlines():
            if line.startswith("-A ") and any(line.endswith(f"-j {c}") for c in chains):
                rule = shlex.split(line)
                rule[0] = "-D"
                subprocess.run(["iptables", "-w", "5", "-t", table, *rule], check=False)
        for chain in chains:
            if f":{chain} " in saved:
                for action in ("-F", "-X"):
                    subprocess.run(
                        ["iptables", "-w", "5", "-t", table, action, chain],
                        capture_output=True,
                        check=False,
                    )


def _netns_names() -> set[str]:
    with contextlib.suppress(OSError):
        return {p.name for p in Path("/var/run/netns").iterdir()}
    return set()
