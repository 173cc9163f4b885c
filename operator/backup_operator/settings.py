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
``BACKUP_WEBHOOK``             who-asked admission webhook: ``off``,   ``off``
                               ``url:https://HOST:PORT`` (the API
                               server calls that URL; the operator
                               listens on HOST:PORT), or
                               ``service:NAMESPACE/NAME`` (a Service,
                               port 443, in front of the operator)
``BACKUP_WEBHOOK_PORT``        listening port in ``service:`` mode     ``9443``
=============================  ======================================  =========================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal, cast
from urllib.parse import urlsplit

from backup_operator.jobs import JobSettings
from backup_operator.locking import Scope


class SettingsError(ValueError):
    """A configuration value the operator cannot start with."""


@dataclass(frozen=True)
class WebhookSettings:
    """How the API server reaches the who-asked webhook (``mode`` off: no webhook).

    ``url``: the API server calls ``url`` and the operator listens on ``listen_host``:
    ``listen_port`` (an operator outside the cluster, as in the tests). ``service``: the
    API server calls the Service ``service_namespace/service_name`` on port 443, which
    forwards to ``listen_port`` on every interface of the operator's pod.
    """

    mode: Literal["off", "url", "service"] = "off"
    url: str = ""
    service_namespace: str = ""
    service_name: str = ""
    service_port: int = 443
    listen_host: str = "0.0.0.0"  # noqa: S104 - a pod listens on its own interfaces
    listen_port: int = 9443

    @property
    def enabled(self) -> bool:
        return self.mode != "off"


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
    webhook: WebhookSettings = field(default_factory=WebhookSettings)


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
        webhook=webhook_from(
            env.get("BACKUP_WEBHOOK", "off"), int(_number(env, "BACKUP_WEBHOOK_PORT", 9443))
        ),
    )


def webhook_from(text: str, port: int = 9443) -> WebhookSettings:
    """``off`` | ``url:https://HOST:PORT[/PATH]`` | ``service:NAMESPACE/NAME``."""
    mode, _, value = text.strip().partition(":")
    if mode == "off" and not value:
        return WebhookSettings()
    if mode == "url":
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise SettingsError(f"BACKUP_WEBHOOK url must be https://HOST:PORT, not {value!r}")
        try:
            listen_port = parts.port or 443
        except ValueError:
            raise SettingsError(f"BACKUP_WEBHOOK url has a bad port: {value!r}") from None
        return WebhookSettings(
            mode="url", url=value.rstrip("/"), listen_host=parts.hostname, listen_port=listen_port
        )
    if mode == "service":
        namespace, _, name = value.partition("/")
        if not namespace or not name or "/" in name:
            raise SettingsError(f"BACKUP_WEBHOOK service must be NAMESPACE/NAME, not {value!r}")
        return WebhookSettings(
            mode="service", service_namespace=namespace, service_name=name, listen_port=port
        )
    raise SettingsError(
        f"BACKUP_WEBHOOK must be off, url:https://HOST:PORT or service:NAMESPACE/NAME, not {text!r}"
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
