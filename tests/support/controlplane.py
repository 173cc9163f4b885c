"""A real Kubernetes control plane on 127.0.0.1 for integration tests.

Why it exists: the operator must be tested against the real API machinery (validation,
CRD schemas, RBAC, PodSecurity admission, optimistic concurrency, watches) and the real
controllers it relies on (Job, garbage collector, namespace, service accounts), never
against a mock. ``ControlPlane`` starts etcd, kube-apiserver and kube-controller-manager
as child processes on free ports, with a throwaway CA, and writes an admin kubeconfig.

There is no kubelet and no scheduler: pods stay Pending unless a test uses
``tests.support.podplayer.PodPlayer``, which plays the node's part.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import kubernetes
import yaml

from tests.support.kube import api_client_for
from tests.support.pki import CertificateAuthority, KeyPair, write_service_account_key
from tests.support.processes import ComponentError, ManagedProcess, free_port
from tests.support.tools import Tools, tools
from tests.support.waiting import wait_for

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
#: Controllers the operator and its tests rely on (names as in v1.35 ``--help``).
CONTROLLERS = (
    "job-controller",
    "garbage-collector-controller",
    "ttl-after-finished-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "pod-garbage-collector-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",
    "cronjob-controller",
)
#: Added to the apiserver's default admission plugins (PodSecurity is on by default too;
#: naming it keeps the guarantee explicit).
ADMISSION_PLUGINS = ("NodeRestriction", "PodSecurity")

ETCD_TIMEOUT_SECONDS = 30.0
APISERVER_TIMEOUT_SECONDS = 120.0
CONTROLLER_MANAGER_TIMEOUT_SECONDS = 60.0
CONTROLLERS_TIMEOUT_SECONDS = 60.0
_HTTP_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError, OSError)


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager, ready when ``start()`` returns.

    Attributes (after ``start()``): ``kubeconfig`` (admin, group system:masters),
    ``server`` (``https://127.0.0.1:PORT``), ``workdir``, ``logs`` (component -> log
    file), ``ca_cert`` / ``ca_key`` (PEM paths), ``startup_seconds`` (component -> time
    to ready). Use as a context manager; ``close()`` stops everything and deletes etcd's
    data, keeping certificates, kubeconfigs and logs in ``workdir``.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        binaries: Tools | None = None,
        extra_apiserver_args: Sequence[str] = (),
        extra_controller_manager_args: Sequence[str] = (),
    ) -> None:
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="backup-operator-cp-")) if workdir is None else workdir
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._binaries = binaries
        self._extra_apiserver_args = list(extra_apiserver_args)
        self._extra_kcm_args = list(extra_controller_manager_args)
        self.pki_dir = self.workdir / "pki"
        self.etcd_data_dir = self.workdir / "etcd-data"
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.apiserver_port = free_port()
        self.controller_manager_port = free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.logs: dict[str, Path] = {
            name: self.workdir / f"{name}.log"
            for name in ("etcd", "kube-apiserver", "kube-controller-manager")
        }
        self.startup_seconds: dict[str, float] = {}
        self._processes: list[ManagedProcess] = []
        self._ca: CertificateAuthority | None = None
        self._admin: KeyPair | None = None

    # ----------------------------------------------------------------- public API

    @property
    def ca_cert(self) -> Path:
        return self._require_ca().cert_path

    @property
    def ca_key(self) -> Path:
        return self._require_ca().key_path

    def start(self) -> None:
        """Start all components and wait until each is ready; stop all on failure."""
        binaries = self._binaries if self._binaries is not None else tools()
        try:
            self._write_pki()
            self._start_etcd(binaries)
            self._start_apiserver(binaries)
            self._start_controller_manager(binaries)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the components, newest first (SIGTERM, then SIGKILL after a timeout)."""
        while self._processes:
            self._processes.pop().stop()

    def close(self) -> None:
        """Stop and delete etcd's data; certificates, kubeconfigs and logs stay."""
        self.stop()
        shutil.rmtree(self.etcd_data_dir, ignore_errors=True)

    def make_user_kubeconfig(self, username: str, groups: Sequence[str] = ()) -> Path:
        """A kubeconfig authenticating as ``username`` in ``groups`` (client cert)."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in username)
        pair = self._require_ca().issue(f"user-{safe}", username, organizations=groups, client=True)
        return self._write_kubeconfig(self.workdir / f"user-{safe}.kubeconfig", username, pair)

    def api_client(self, kubeconfig: Path | None = None) -> kubernetes.client.ApiClient:
        """A ``kubernetes`` (sync) ApiClient for ``kubeconfig`` (default: admin)."""
        return api_client_for(kubeconfig or self.kubeconfig)

    def __enter__(self) -> ControlPlane:
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

    def _require_ca(self) -> CertificateAuthority:
        if self._ca is None:
            raise RuntimeError("the control plane's CA exists only after start()")
        return self._ca

    def _write_pki(self) -> None:
        ca = CertificateAuthority(self.pki_dir)
        self._ca = ca
        self._serving = ca.issue(
            "apiserver",
            "kube-apiserver",
            server=True,
            server_names=[
                "127.0.0.1",
                "localhost",
                "10.0.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
        self._service_account = write_service_account_key(self.pki_dir)
        # The aggregation layer's front-proxy CA, as in real clusters; the controller
        # manager's delegated authentication reads it from the apiserver.
        front_proxy_ca = CertificateAuthority(
            self.pki_dir / "front-proxy", common_name="backup-operator-test-front-proxy-ca"
        )
        self._front_proxy_ca = front_proxy_ca.cert_path
        self._front_proxy_client = front_proxy_ca.issue(
            "front-proxy-client", "front-proxy-client", client=True
        )
        self._admin = ca.issue("admin", "admin", organizations=["system:masters"], client=True)
        self._write_kubeconfig(self.kubeconfig, "admin", self._admin)
        # The controllers act as their own user (audit logs and managedFields say so);
        # system:masters because --use-service-account-credentials=false.
        kcm = ca.issue(
            "kube-controller-manager",
            "system:kube-controller-manager",
            organizations=["system:masters"],
            client=True,
        )
        self._kcm_kubeconfig = self._write_kubeconfig(
            self.workdir / "kube-controller-manager.kubeconfig",
            "system:kube-controller-manager",
            kcm,
        )

    def _write_kubeconfig(self, path: Path, user: str, pair: KeyPair) -> Path:
        ca = self._require_ca()

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "backup-operator-test",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(ca.cert_pem),
                    },
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {
                        "client-certificate-data": b64(pair.cert.read_bytes()),
                        "client-key-data": b64(pair.key.read_bytes()),
                    },
                }
            ],
            "contexts": [
                {
                    "name": f"{user}@backup-operator-test",
                    "context": {"cluster": "backup-operator-test", "user": user},
                }
            ],
            "current-context": f"{user}@backup-operator-test",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    def _launch(self, name: str, argv: list[str | Path]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.logs[name], cwd=self.workdir)
        self._processes.append(process)
        process.start()
        return process

    def _await(
        self, name: str, process: ManagedProcess, probe: Callable[[], bool], timeout: float
    ) -> None:
        started = time.monotonic()

        def ready() -> bool:
            process.check_alive()
            return probe()

        try:
            wait_for(ready, timeout, f"{name} to be ready", interval=0.2, ignore=_HTTP_ERRORS)
        except TimeoutError as error:
            raise ComponentError(
                f"{error}; log {process.log_path}:\n{process.log_tail()}"
            ) from None
        self.startup_seconds[name] = time.monotonic() - started

    def _start_etcd(self, binaries: Tools) -> None:
        client_url = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{self.etcd_peer_port}"
        process = self._launch(
            "etcd",
            [
                binaries.etcd,
                "--name=default",
                f"--data-dir={self.etcd_data_dir}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--initial-cluster-state=new",
                # Throwaway data: skipping fsync makes every API write much faster.
                "--unsafe-no-fsync",
            ],
        )

        def healthy() -> bool:
            with urllib.request.urlopen(f"{client_url}/health", timeout=2) as response:
                return bool(json.load(response).get("health") == "true")

        self._await("etcd", process, healthy, ETCD_TIMEOUT_SECONDS)

    def _start_apiserver(self, binaries: Tools) -> None:
        assert self._admin is not None
        process = self._launch(
            "kube-apiserver",
            [
                binaries.kube_apiserver,
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--tls-cert-file={self._serving.cert}",
                f"--tls-private-key-file={self._serving.key}",
                f"--client-ca-file={self.ca_cert}",
                "--authorization-mode=Node,RBAC",
                f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
                # Privileged pods must be refused by PodSecurity, not by this switch.
                "--allow-privileged=true",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={self._service_account.cert}",
                f"--service-account-signing-key-file={self._service_account.key}",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                # A loopback address may not be an Endpoints address of the kubernetes
                # Service; nothing in the tests needs that Endpoints object.
                "--endpoint-reconciler-type=none",
                f"--requestheader-client-ca-file={self._front_proxy_ca}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={self._front_proxy_client.cert}",
                f"--proxy-client-key-file={self._front_proxy_client.key}",
                "--profiling=false",
                *self._extra_apiserver_args,
            ],
        )
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.load_cert_chain(str(self._admin.cert), str(self._admin.key))

        def ready() -> bool:
            request = urllib.request.Request(f"{self.server}/readyz")
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                return bool(response.status == 200)

        self._await("kube-apiserver", process, ready, APISERVER_TIMEOUT_SECONDS)

    def _start_controller_manager(self, binaries: Tools) -> None:
        kubeconfig = self._kcm_kubeconfig
        process = self._launch(
            "kube-controller-manager",
            [
                binaries.kube_controller_manager,
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.controller_manager_port}",
                f"--cert-dir={self.workdir / 'kube-controller-manager-certs'}",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--service-account-private-key-file={self._service_account.key}",
                f"--root-ca-file={self.ca_cert}",
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                "--profiling=false",
                *self._extra_kcm_args,
            ],
        )
        # The controller manager serves /healthz with a self-signed certificate.
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        url = f"https://127.0.0.1:{self.controller_manager_port}/healthz"

        def healthy() -> bool:
            with urllib.request.urlopen(url, context=insecure, timeout=5) as response:
                return bool(response.status == 200)

        self._await("kube-controller-manager", process, healthy, CONTROLLER_MANAGER_TIMEOUT_SECONDS)

        # The serviceaccount controller creating "default" in "default" shows the
        # controllers really run (not only that the process serves /healthz).
        with self.api_client() as client:
            core = kubernetes.client.CoreV1Api(client)

            def default_service_account() -> bool:
                try:
                    core.read_namespaced_service_account("default", "default")
                except kubernetes.client.ApiException as error:
                    if error.status == 404:
                        return False
                    raise
                return True

            self._await(
                "controllers",
                process,
                default_service_account,
                CONTROLLERS_TIMEOUT_SECONDS,
            )
