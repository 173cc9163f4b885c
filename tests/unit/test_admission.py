"""The who-asked admission pieces that need no cluster: annotations, settings, TLS, policy."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from backup_operator import tls
from backup_operator.admission import (
    ANNOTATION_REQUESTED_BY,
    ANNOTATION_REQUESTED_BY_GROUPS,
    ServiceWebhookServer,
    certificate_names,
    encode_groups,
    policy_manifests,
    requested_by_annotations,
)
from backup_operator.settings import SettingsError, WebhookSettings, from_env, webhook_from

# --------------------------------------------------------------------------- annotations


def test_annotations_name_the_user_and_groups() -> None:
    userinfo = {
        "username": "alice",
        "uid": "1",
        "groups": ["backup-admins", "system:authenticated"],
    }
    assert requested_by_annotations(userinfo) == {
        ANNOTATION_REQUESTED_BY: "alice",
        ANNOTATION_REQUESTED_BY_GROUPS: '["backup-admins","system:authenticated"]',
    }


def test_annotations_without_groups_are_an_empty_list() -> None:
    annotations = requested_by_annotations({"username": "system:serviceaccount:ci:deployer"})
    assert annotations[ANNOTATION_REQUESTED_BY_GROUPS] == "[]"


def test_no_username_no_annotations() -> None:
    assert requested_by_annotations({"groups": ["x"]}) == {}


def test_groups_are_compact_json_that_round_trips() -> None:
    groups = ["a b", "é", 'q"uote']
    assert encode_groups(["a", "b"]) == '["a","b"]'
    assert json.loads(encode_groups(groups)) == groups


# --------------------------------------------------------------------------- settings


def test_webhook_is_off_by_default() -> None:
    assert from_env({}).webhook == WebhookSettings()
    assert not from_env({"BACKUP_WEBHOOK": "off"}).webhook.enabled


def test_webhook_url_mode_listens_where_the_url_points() -> None:
    webhook = from_env({"BACKUP_WEBHOOK": "url:https://127.0.0.1:19443/"}).webhook
    assert (webhook.mode, webhook.url) == ("url", "https://127.0.0.1:19443")
    assert (webhook.listen_host, webhook.listen_port) == ("127.0.0.1", 19443)
    assert certificate_names(webhook) == ["127.0.0.1"]


def test_webhook_service_mode() -> None:
    env = {"BACKUP_WEBHOOK": "service:backup-system/backup-operator-webhook"}
    webhook = from_env({**env, "BACKUP_WEBHOOK_PORT": "8443"}).webhook
    assert (webhook.service_namespace, webhook.service_name) == (
        "backup-system",
        "backup-operator-webhook",
    )
    assert (webhook.listen_host, webhook.listen_port, webhook.service_port) == (
        "0.0.0.0",
        8443,
        443,
    )
    assert "backup-operator-webhook.backup-system.svc" in certificate_names(webhook)


@pytest.mark.parametrize(
    "text",
    ["on", "url:http://127.0.0.1:9443", "url:https://:9443", "url:https://h:99999",
     "service:only-a-name", "service:ns/", "service:a/b/c"],
)  # fmt: skip
def test_bad_webhook_settings_are_refused(text: str) -> None:
    with pytest.raises(SettingsError, match="BACKUP_WEBHOOK"):
        webhook_from(text)


# --------------------------------------------------------------------------- TLS


def test_serving_certificate_is_signed_by_its_own_ca() -> None:
    names = ["backup-operator-webhook.ns.svc", "127.0.0.1"]
    bundle = tls.generate(names, now=datetime(2026, 1, 1, tzinfo=UTC))
    ca = x509.load_pem_x509_certificate(bundle.ca_pem)
    cert = x509.load_pem_x509_certificate(bundle.cert_pem)
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["backup-operator-webhook.ns.svc"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.not_valid_after_utc > datetime(2030, 1, 1, tzinfo=UTC)


def test_two_starts_make_two_different_cas() -> None:
    assert tls.generate(["a"]).ca_pem != tls.generate(["a"]).ca_pem


def test_no_names_no_certificate() -> None:
    with pytest.raises(ValueError, match="at least one name"):
        tls.generate([])


def test_key_file_is_private(tmp_path: Path) -> None:
    cert, key = tls.generate(["h"]).write(tmp_path)
    assert cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert key.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("server_name", ["svc.ns.svc", "127.0.0.1"])
def test_a_client_trusting_only_the_ca_completes_a_handshake(
    tmp_path: Path, server_name: str
) -> None:
    """What the API server does: verify the webhook's certificate against the caBundle."""
    bundle = tls.generate(["svc.ns.svc", "127.0.0.1"])
    cert, key = bundle.write(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cadata=bundle.ca_pem.decode())
    _handshake(server_ctx, client_ctx, server_name)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_ctx, client_ctx, "other.ns.svc")


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, name: str) -> None:
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=name)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for side, obj in (("client", client), ("server", server)):
            if done[side]:
                continue
            try:
                obj.do_handshake()
                done[side] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                if side == "server":
                    continue  # the server sees the client's alert; the client raises
                raise
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError(f"handshake did not complete: {done}")


# --------------------------------------------------------------------------- policy, server


def test_policy_covers_create_and_update_of_both_kinds() -> None:
    policy, binding = policy_manifests()
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules[0]["apiGroups"] == ["backup.operator.dev"]
    assert sorted(rules[0]["resources"]) == ["databasebackups", "filesbackups"]
    assert rules[0]["operations"] == ["CREATE", "UPDATE"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    text = json.dumps(policy)
    assert ANNOTATION_REQUESTED_BY in text
    assert ANNOTATION_REQUESTED_BY_GROUPS in text
    assert "request.userInfo.username" in text


async def test_service_mode_announces_the_service_not_the_url() -> None:
    class Fake:
        async def __call__(self, fn: Any) -> AsyncIterator[dict[str, Any]]:
            yield {"url": "https://10.0.0.1:9443", "caBundle": "Q0E="}

    webhook = webhook_from("service:backup-system/backup-operator-webhook")
    server = ServiceWebhookServer(Fake(), webhook)  # type: ignore[arg-type]
    configs = [config async for config in server(lambda *a, **k: None)]
    assert configs == [
        {
            "caBundle": "Q0E=",
            "service": {
                "namespace": "backup-system",
                "name": "backup-operator-webhook",
                "port": 443,
                "path": "",
            },
        }
    ]
