"""Locate the binaries of the real components, building them once if needed.

Why it exists: the integration tests run the real etcd, kube-apiserver,
kube-controller-manager and FerretDB, which no registry here ships. ``hack/build-tools.sh``
builds them from the Go module proxy into a cache outside the repo (keyed by the versions
pinned in ``hack/versions.env``); this module runs it (it is idempotent and prints the bin
directory on its last stdout line) and hands the paths to the harness.

A first build of Kubernetes takes 15-30 minutes: run ``hack/build-tools.sh`` as a step of
its own (CI does) rather than inside a test's timeout.
"""

from __future__ import annotations

import fcntl
import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "hack" / "build-tools.sh"
VERSIONS_FILE = REPO_ROOT / "hack" / "versions.env"
#: How long the build may take (a cold Kubernetes build on 2 cores is about 30 minutes).
BUILD_TIMEOUT_SECONDS = 3600.0


class ToolsUnavailableError(RuntimeError):
    """The binaries could not be built or found; the message says why."""


@dataclass(frozen=True)
class Tools:
    """Paths of the component binaries, all under ``bin_dir``."""

    bin_dir: Path
    versions: dict[str, str]

    @property
    def etcd(self) -> Path:
        return self.bin_dir / f"etcd-{self.versions['ETCD_VERSION']}" / "etcd"

    @property
    def ferretdb(self) -> Path:
        return self.bin_dir / f"ferretdb-{self.versions['FERRETDB_VERSION']}" / "ferretdb"

    @property
    def kube_apiserver(self) -> Path:
        return self._kubernetes / "kube-apiserver"

    @property
    def kube_controller_manager(self) -> Path:
        return self._kubernetes / "kube-controller-manager"

    @property
    def _kubernetes(self) -> Path:
        return self.bin_dir / f"kubernetes-{self.versions['KUBERNETES_VERSION']}"

    def all(self) -> dict[str, Path]:
        return {
            "etcd": self.etcd,
            "ferretdb": self.ferretdb,
            "kube-apiserver": self.kube_apiserver,
            "kube-controller-manager": self.kube_controller_manager,
        }


def read_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Parse the ``NAME=value`` lines of ``hack/versions.env``."""
    versions: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            versions[name.strip()] = value.strip().strip("\"'")
    return versions


def cache_dir() -> Path:
    """The cache root used by ``hack/build-tools.sh``."""
    configured = os.environ.get("BACKUP_OPERATOR_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "backup-operator"


@functools.cache
def tools() -> Tools:
    """Build (if needed) and locate the binaries; cached for the process.

    Runs ``hack/build-tools.sh`` under an exclusive file lock in the cache, so two test
    sessions (or a session and ``hack/dev-cluster.py``) never build the same thing at once.

    Raises:
        ToolsUnavailableError: the build failed or a binary is missing after it.
    """
    try:
        return _build()
    except OSError as error:
        raise ToolsUnavailableError(f"cannot build or find the binaries: {error}") from error


def _build() -> Tools:
    found = Tools(bin_dir=build_components(), versions=read_versions())
    missing = [f"{name} ({path})" for name, path in found.all().items() if not _runnable(path)]
    if missing:
        raise ToolsUnavailableError(f"missing after {BUILD_SCRIPT}: {', '.join(missing)}")
    return found


def build_components(*components: str) -> Path:
    """Run ``hack/build-tools.sh COMPONENTS...`` under the cache's lock; the bin directory.

    No components means the script's default set (the control plane and FerretDB).

    Raises:
        ToolsUnavailableError: the script failed or did not finish; the message has its log.
    """
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    name = "-".join(("build-tools", *components))
    log_path = cache / f"{name}.log"
    command = f"{BUILD_SCRIPT} {' '.join(components)}".strip()
    with (cache / "build-tools.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with log_path.open("w") as log:
                result = subprocess.run(
                    ["bash", str(BUILD_SCRIPT), *components],
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                    timeout=BUILD_TIMEOUT_SECONDS,
                    check=False,
                )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ToolsUnavailableError(f"{command} did not finish: {error}") from error
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise ToolsUnavailableError(
            f"{command} failed with code {result.returncode}; log {log_path}:\n{tail}"
        )
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise ToolsUnavailableError(f"{command} printed no bin directory")
    return Path(lines[-1])


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
