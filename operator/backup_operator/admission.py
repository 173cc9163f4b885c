"""Who asked: the requesting user recorded on each backup at creation, unforgeably.

Two parts, because either alone has a hole:

- A **mutating webhook** (kopf's, served by the operator) sets, on every CREATE of a
  DatabaseBackup or FilesBackup, the annotations ``backup.operator.dev/requested-by``
  (the username) and ``backup.operator.dev/requested-by-groups`` (a JSON list), from the
  API server's ``userInfo``, overwriting whatever the user sent. Its ``failurePolicy`` is
  ``Ignore``: when the operator is down, backups can still be created, without the
  annotations (the user is then "unknown").
- A **ValidatingAdmissionPolicy** (CEL, evaluated inside the API server, so it holds when
  the operator is down) refuses a CREATE whose annotations differ from the requesting
  user, and an UPDATE that changes either annotation. Validation runs after mutation, so
  with the webhook up a forged value has already been overwritten and passes.

The webhook's TLS: the operator makes its own CA and serving certificate at start-up
(``tls``) and kopf writes the CA into the MutatingWebhookConfiguration it manages.
The client config is a URL (operator outside the cluster, as in the tests) or a Service.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import kopf

from backup_operator import k8s, tls
from backup_operator.api.kinds import KINDS
from backup_operator.api.v1alpha1 import (
    ANNOTATION_REQUESTED_BY,
    ANNOTATION_REQUESTED_BY_GROUPS,
    GROUP,
    VERSION,
)
from backup_operator.settings import Settings, WebhookSettings

logger = logging.getLogger(__name__)

Manifest = dict[str, Any]

#: Name of the MutatingWebhookConfiguration kopf manages (and of the policy's family).
MANAGED_CONFIGURATION = GROUP
POLICY_NAME = "backup-operator-requested-by"

__all__ = [
    "ANNOTATION_REQUESTED_BY",
    "ANNOTATION_REQUESTED_BY_GROUPS",
    "certificate_names",
    "encode_groups",
    "policy_manifests",
    "register",
    "requested_by_annotations",
]


# --------------------------------------------------------------------------- pure pieces


def encode_groups(groups: Sequence[str]) -> str:
    """Groups as the annotation holds them: compact JSON, the form the policy rebuilds."""
    return json.dumps(list(groups), ensure_ascii=False, separators=(",", ":"))


def requested_by_annotations(userinfo: Mapping[str, Any]) -> dict[str, str]:
    """The annotations recording who sent an admission request (empty without a username)."""
    username = userinfo.get("username")
    if not username:
        return {}
    groups = [str(g) for g in userinfo.get("groups") or []]
    return {
        ANNOTATION_REQUESTED_BY: str(username),
        ANNOTATION_REQUESTED_BY_GROUPS: encode_groups(groups),
    }


def _annotation(obj: str, key: str) -> str:
    return f"{obj}.metadata.?annotations[?'{key}']"


# CEL. The groups annotation is compared with the user's groups joined the way
# ``encode_groups`` writes them; group names that JSON would escape (quotes, backslashes,
# control characters) cannot be rebuilt in CEL, so for such users only the username is
# checked at creation (unchanged afterwards still holds).
_USER_GROUPS = "'[' + request.userInfo.groups.map(g, '\"' + g + '\"').join(',') + ']'"
_ODD_GROUPS = r"""request.userInfo.groups.exists(g, g.matches('[[:cntrl:]"\\\\]'))"""


def policy_manifests() -> tuple[Manifest, Manifest]:
    """The ValidatingAdmissionPolicy that keeps the who-asked annotations honest, and its
    binding (every namespace, ``Deny``)."""
    by = "backup.operator.dev/requested-by"
    groups = "backup.operator.dev/requested-by-groups"
    assert (by, groups) == (ANNOTATION_REQUESTED_BY, ANNOTATION_REQUESTED_BY_GROUPS)
    labels = {
        "app.kubernetes.io/name": "backup-operator",
        "app.kubernetes.io/component": "admission",
    }
    policy: Manifest = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME, "labels": labels},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "resources": [info.plural for info in KINDS],
                        "operations": ["CREATE", "UPDATE"],
                    }
                ]
            },
            "variables": [
                {"name": "by", "expression": _annotation("object", by)},
                {"name": "groups", "expression": _annotation("object", groups)},
                {
                    "name": "userGroups",
                    "expression": f"has(request.userInfo.groups) ? {_USER_GROUPS} : '[]'",
                },
                {
                    "name": "oddGroups",
                    "expression": f"has(request.userInfo.groups) && {_ODD_GROUPS}",
                },
            ],
            "validations": [
                {
                    "expression": "request.operation != 'CREATE' || !variables.by.hasValue()"
                    " || variables.by.value() == request.userInfo.username",
                    "message": f"the annotation {by} records who created the backup: it is"
                    " set by the backup operator and must not be given by hand",
                    "reason": "Forbidden",
                },
                {
                    "expression": "request.operation != 'CREATE' || !variables.groups.hasValue()"
                    " || variables.groups.value() == variables.userGroups || variables.oddGroups",
                    "message": f"the annotation {groups} records the groups of who created"
                    " the backup: it is set by the backup operator and must not be given by hand",
                    "reason": "Forbidden",
                },
                {
                    "expression": "request.operation != 'UPDATE' || ("
                    f"variables.by == {_annotation('oldObject', by)} && "
                    f"variables.groups == {_annotation('oldObject', groups)})",
                    "message": f"the annotations {by} and {groups} cannot change after creation",
                    "reason": "Forbidden",
                },
            ],
        },
    }
    binding: Manifest = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME, "labels": labels},
        "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
    }
    return policy, binding


def certificate_names(webhook: WebhookSettings) -> list[str]:
    """The names the API server may use to reach the webhook: the URL's host, or the
    Service's DNS names."""
    if webhook.mode == "url":
        host = urlsplit(webhook.url).hostname
        return [host] if host else []
    name, namespace = webhook.service_name, webhook.service_namespace
    return [
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}.svc.cluster.local",
        f"{name}.{namespace}",
        name,
    ]


# --------------------------------------------------------------------------- the server


class ServiceWebhookServer:
    """kopf's HTTPS server, announced to the API server as a Service instead of a URL."""

    def __init__(self, server: kopf.WebhookServer, webhook: WebhookSettings) -> None:
        self.server = server
        self.webhook = webhook

    async def __call__(self, fn: Any) -> AsyncIterator[dict[str, Any]]:
        async for config in self.server(fn):
            yield {
                "caBundle": config.get("caBundle"),
                "service": {
                    "namespace": self.webhook.service_namespace,
                    "name": self.webhook.service_name,
                    "port": self.webhook.service_port,
                    "path": "",
                },
            }


def webhook_server(webhook: WebhookSettings, certificate: tls.ServingCertificate) -> Any:
    """The kopf webhook server for the mode configured, serving ``certificate``."""
    certfile, pkeyfile = certificate.write()
    common: dict[str, Any] = {
        "certfile": certfile,
        "pkeyfile": pkeyfile,
        "cadata": certificate.ca_pem,
    }
    if webhook.mode == "url":
        parts = urlsplit(webhook.url)
        return kopf.WebhookServer(
            addr=webhook.listen_host,
            port=webhook.listen_port,
            host=parts.hostname,
            path=parts.path or None,
            **common,
        )
    server = kopf.WebhookServer(addr=webhook.listen_host, port=webhook.listen_port, **common)
    return ServiceWebhookServer(server, webhook)


# --------------------------------------------------------------------------- registration


def register(registry: kopf.OperatorRegistry, settings: Settings) -> None:
    """Register the who-asked webhook (when ``settings.webhook`` enables it)."""
    webhook = settings.webhook
    if not webhook.enabled:
        return

    @kopf.on.startup(registry=registry)
    async def admission_startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        certificate = tls.generate(certificate_names(webhook))
        settings.admission.server = webhook_server(webhook, certificate)
        settings.admission.managed = MANAGED_CONFIGURATION
        await _apply_policy()

    async def who_asked(patch: kopf.Patch, userinfo: Mapping[str, Any], **_: Any) -> None:
        for key, value in requested_by_annotations(userinfo).items():
            patch.metadata.annotations[key] = value

    for info in KINDS:
        kopf.on.mutate(
            GROUP,
            VERSION,
            info.plural,
            id=f"requested-by-{info.plural}",
            registry=registry,
            operations=["CREATE"],
            ignore_failures=True,  # failurePolicy Ignore: backups possible with the operator down
            persistent=True,  # kept on shutdown: a replica stopping must not remove it for all
            side_effects=False,
        )(who_asked)


async def _apply_policy() -> None:
    """Install the policy; without it the webhook still records, but forgery is possible."""
    api = await k8s.connect()
    try:
        policy, binding = policy_manifests()
        await k8s.Kube(api).apply_validating_admission_policy(policy, binding)
        logger.info("ValidatingAdmissionPolicy %s applied", POLICY_NAME)
    except Exception as error:  # availability first: the webhook still records who asked
        logger.error("Could not apply ValidatingAdmissionPolicy %s: %s", POLICY_NAME, error)
    finally:
        await api.close()
