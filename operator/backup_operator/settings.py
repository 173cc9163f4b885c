"""The operator's configuration, read once from the environment at start-up.

Environment variables (all optional):

=============================  ======================================  =========================
variable                       meaning                                 default
=============================  ======================================  =========================
``BACKUP_OPERATOR_NAMESPACE``  namespace of the operator (cluster lock) ``backup-operator``
``BACKUP_LOCK_SCOPE``          ``Namespace`` or ``Cluster``            ``Namespace``
``BACKUP_RUNNER_IMAGE``        image of the backup Jobs                ``backup-operator:dev``
``BACKUP_RUNNER_PULL_POLICY``  imagePullPolicy of the backup Jobs      ``IfNotPresent``
``BACKUP_JOB_TTL_SECONDS``     ttlSecondsAfterFinished of the Jobs     ``3600``
``BACKUP_RECONCILE_SECONDS``   timer interval for unfinished backups   ``10``
``BACKUP_AUDIT_URI_FILE``      file holding the audit MongoDB URI      (audit to logs only)
``BACKUP_AUDIT_DATABASE``      audit database                          ``backup_operator``
``BACKUP_AUDIT_COLLECTION``    audit collection                        ``audit_logs``
=============================  ======================================  =========================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import cast

from backup_operator.jobs import JobSettings
from backup_operator.locking import Scope


class SettingsError(ValueError):
    """A configuration value the operator cannot start with."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable about the operator."""

    namespace: str = "backup-operator"
    lock_scope: Scope = "Namespace"
    reconcile_seconds: float = 10.0
    job: JobSettings = field(default_factory=JobSettings)
    audit_uri_file: str | None = None
    audit_database: str = "backup_operator"
    audit_collection: str = "audit_logs"


def from_env(env: dict[str, str] | None = None) -> Settings:
    """Settings from environment variables; ``SettingsError`` names a bad one."""
    env = dict(os.environ if env is None else env)
    scope = env.get("BACKUP_LOCK_SCOPE", "Namespace")
    if scope not in ("Namespace", "Cluster"):
        raise SettingsError(f"BACKUP_LOCK_SCOPE must be Namespace or Cluster, not {scope!r}")
    return Settings(
        namespace=env.get("BACKUP_OPERATOR_NAMESPACE", "backup-operator"),
        lock_scope=cast(Scope, scope),
        reconcile_seconds=_number(env, "BACKUP_RECONCILE_SECONDS", 10.0),
        job=JobSettings(
            image=env.get("BACKUP_RUNNER_IMAGE", "backup-operator:dev"),
            image_pull_policy=env.get("BACKUP_RUNNER_PULL_POLICY", "IfNotPresent"),
            ttl_seconds_after_finished=int(_number(env, "BACKUP_JOB_TTL_SECONDS", 3600)),
        ),
        audit_uri_file=env.get("BACKUP_AUDIT_URI_FILE") or None,
        audit_database=env.get("BACKUP_AUDIT_DATABASE", "backup_operator"),
        audit_collection=env.get("BACKUP_AUDIT_COLLECTION", "audit_logs"),
    )


def _number(env: dict[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {text!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, not {text!r}")
    return value
