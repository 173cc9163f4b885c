"""Plain-JSON access to the Kubernetes API for the harness and tests.

Why it exists: the harness needs objects exactly as the API serves them (camelCase dicts,
any group, custom resources included) for the PodPlayer's status patches, namespace dumps
and test assertions. The typed ``kubernetes`` client converts to models and back; this
wrapper sends and returns JSON, reusing the client's kubeconfig handling (TLS, client
certificates) and raising its ``ApiException`` on errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import kubernetes
from kubernetes.client import ApiException

__all__ = ["STRATEGIC_MERGE", "ApiException", "Kube", "api_client_for", "resource_path"]

JSONDict = dict[str, Any]
STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MERGE_PATCH = "application/merge-patch+json"


def resource_path(
    api_version: str, plural: str, namespace: str | None = None, name: str | None = None
) -> str:
    """``/api/v1/...`` or ``/apis/<group>/<version>/...`` for a resource.

    ``api_version`` is ``v1`` for the core group, else ``<group>/<version>``.
    """
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [base]
    if namespace is not None:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name is not None:
        parts.append(name)
    return "/".join(parts)


def api_client_for(kubeconfig: Path | str) -> kubernetes.client.ApiClient:
    """A sync ``kubernetes`` ApiClient for ``kubeconfig`` (not the process-wide default)."""
    client: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), persist_config=False
    )
    return client


class Kube:
    """A small JSON client over ``kubernetes.client.ApiClient`` (thread-safe enough:
    urllib3's pool is)."""

    def __init__(self, kubeconfig: Path | str, *, timeout: float = 30.0) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.api_client = api_client_for(kubeconfig)
        self.timeout = timeout

    def close(self) -> None:
        self.api_client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> Kube:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> JSONDict:
        """Send one request; return the decoded JSON body (``{}`` when empty)."""
        response = self._send(method, path, body, query, content_type, timeout)
        response.read()
        data: bytes = response.data or b""
        if not 200 <= response.status <= 299:
            raise ApiException(
                status=response.status,
                reason=response.reason,
                body=data.decode(errors="replace"),
            )
        decoded: JSONDict = json.loads(data) if data else {}
        return decoded

    def _send(
        self,
        method: str,
        path: str,
        body: object,
        query: Mapping[str, str | int | bool] | None,
        content_type: str,
        timeout: float | tuple[float, float] | None,
    ) -> Any:
        query_params = [
            (key, str(value).lower() if isinstance(value, bool) else str(value))
            for key, value in (query or {}).items()
        ]
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self.api_client.param_serialize(
            method,
            path,
            query_params=query_params,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return self.api_client.call_api(
            method, url, headers, body, _request_timeout=timeout or self.timeout
        )

    # Convenience verbs ---------------------------------------------------------

    def get(self, path: str, **query: str | int | bool) -> JSONDict:
        return self.request("GET", path, query=query)

    def get_or_none(self, path: str) -> JSONDict | None:
        try:
            return self.get(path)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def create(self, path: str, body: Mapping[str, Any]) -> JSONDict:
        return self.request("POST", path, body)

    def patch(self, path: str, body: object, *, content_type: str = STRATEGIC_MERGE) -> JSONDict:
        return self.request("PATCH", path, body, content_type=content_type)

    def delete(self, path: str, **options: Any) -> JSONDict | None:
        """Delete; ``options`` become DeleteOptions (e.g. ``gracePeriodSeconds=0``).
        Returns None when the object was already gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", **options} if options else None
        try:
            return self.request("DELETE", path, body)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def items(self, path: str, **query: str | int | bool) -> list[JSONDict]:
        items: list[JSONDict] = self.get(path, **query).get("items", [])
        return items

    def watch(
        self,
        path: str,
        *,
        resource_version: str | None = None,
        timeout_seconds: int = 60,
        responses: list[Any] | None = None,
    ) -> Iterator[JSONDict]:
        """Yield watch events (``{"type", "object"}``) until the server ends the watch.

        The HTTP response is appended to ``responses`` (if given) so another thread can
        ``shutdown()`` it to end a blocked read at once.
        """
        query: dict[str, str | int | bool] = {
            "watch": True,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": True,
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        # No total deadline on a watch: connect within 10 s, then the server ends it.
        read_timeout = (10.0, float(timeout_seconds) + 10.0)
        response = self._send("GET", path, None, query, "application/json", read_timeout)
        if responses is not None:
            responses.append(response)
        try:
            if not 200 <= response.status <= 299:
                response.read()
                raise ApiException(
                    status=response.status,
                    reason=response.reason,
                    body=(response.data or b"").decode(errors="replace"),
                )
            buffer = b""
            for chunk in response.response.stream(amt=None, decode_content=True):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            response.response.release_conn()
