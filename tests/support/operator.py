"""The operator under test, as a real ``backup-operator run`` subprocess.

Why it exists: integration tests must exercise the operator exactly as it ships (the CLI,
kopf, our settings) against the real API server, and must be able to kill it at any point
(SIGKILL) and start it again, as a crashing pod would be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.kube import Kube, resource_path
from tests.support.waiting import wait_for

CRDS = Path(__file__).resolve().parents[2] / "crds"
GROUP_VERSION = "backup.operator.dev/v1alpha1"


class OperatorProcess:
    """``backup-operator run -n NS...`` with its log kept in a file."""

    def __init__(
        self,
        kubeconfig: Path,
        namespaces: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        *,
        verbose: bool = True,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.verbose = verbose
        self.namespaces = list(namespaces)
        self.log_path = log_path
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the operator; returns once kopf reports its watches running."""
        argv = [sys.executable, "-m", "backup_operator", "run", "--liveness", ""]
        argv += ["--verbose"] if self.verbose else []
        for namespace in self.namespaces:
            argv += ["--namespace", namespace]
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "BACKUP_RECONCILE_SECONDS": "2",
            "BACKUP_OPERATOR_NAMESPACE": self.namespaces[0],
            **self.env,
        }
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_for(lambda: self._started(offset), 60, f"the operator to start (log: {self.log_path})")

    def _started(self, offset: int) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the operator exited with {self.process.returncode}: {self.log()}")
        with self.log_path.open("rb") as log:
            log.seek(offset)
            # Logged at INFO once our start-up handler ran; kopf then lists and watches, and
            # handles what exists whenever it arrives (level-based), so this is enough.
            return b"Activity 'backup-operator-startup' succeeded" in log.read()

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        """The whole log (for failure reports)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def apply_crds(kube: Kube) -> None:
    """Create (or replace) our CRDs and wait until the API server serves them."""
    import yaml

    crd_path = resource_path("apiextensions.k8s.io/v1", "customresourcedefinitions")
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        existing = kube.get_or_none(f"{crd_path}/{crd['metadata']['name']}")
        if existing is None:
            kube.create(crd_path, crd)
        else:
            crd["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            kube.request("PUT", f"{crd_path}/{crd['metadata']['name']}", crd)
        wait_for(
            lambda name=crd["metadata"]["name"]: _established(kube, crd_path, name),
            30,
            f"CRD {crd['metadata']['name']} established",
        )


def _established(kube: Kube, crd_path: str, name: str) -> bool:
    crd = kube.get(f"{crd_path}/{name}")
    return any(
        c["type"] == "Established" and c["status"] == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )
