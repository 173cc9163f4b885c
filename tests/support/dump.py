"""Dump a namespace's objects as YAML, for the report of a failed integration test.

Why it exists: when an integration test fails, the state of the cluster explains it far
better than the assertion does: the backup CRs' status, the Jobs and pods (with their
termination messages), the lock Leases and the Events. This module renders them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.support.kube import ApiException, Kube, resource_path

#: ``<apiVersion>/<plural>`` of what a failure report shows, in this order.
DEFAULT_KINDS: tuple[str, ...] = (
    "backup.operator.dev/v1alpha1/databasebackups",
    "backup.operator.dev/v1alpha1/filesbackups",
    "batch/v1/jobs",
    "v1/pods",
    "coordination.k8s.io/v1/leases",
    "v1/events",
)


def _tidy(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop what only adds noise (managedFields)."""
    meta = obj.get("metadata", {})
    meta.pop("managedFields", None)
    return obj


def dump_namespace(
    kubeconfig: Path | str, namespace: str, kinds: Sequence[str] = DEFAULT_KINDS
) -> str:
    """YAML of every object of ``kinds`` (``<apiVersion>/<plural>``) in ``namespace``.

    Never raises for a kind the cluster does not serve (e.g. CRDs not installed): the
    dump says so instead, since it runs while reporting another failure.
    """
    sections: list[str] = [f"# ===== namespace {namespace} ====="]
    with Kube(kubeconfig, timeout=15) as kube:
        for kind in kinds:
            api_version, _, plural = kind.rpartition("/")
            header = f"# ----- {plural} ({api_version or 'v1'})"
            try:
                items = kube.items(resource_path(api_version or "v1", plural, namespace))
            except ApiException as error:
                reason = "not served" if error.status == 404 else f"error {error.status}"
                sections.append(f"{header}: {reason}")
                continue
            except Exception as error:  # the dump must not hide the real failure
                sections.append(f"{header}: {type(error).__name__}: {error}")
                continue
            if plural == "events":
                items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
            sections.append(f"{header}: {len(items)}")
            if items:
                sections.append(
                    yaml.safe_dump_all(
                        [_tidy(item) for item in items], sort_keys=False, default_flow_style=False
                    )
                )
    return "\n".join(sections)
