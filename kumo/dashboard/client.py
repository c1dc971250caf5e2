"""The dashboard's API client: the user's token, the token's catalog, each service's error format."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from kumo.dashboard.sessions import Session

COMPUTE_MICROVERSION = "2.79"


class ApiError(Exception):
    """A 4xx/5xx from a kumo API, with the message the service put in its own error format."""

    def __init__(self, status: int, message: str, service: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.service = service


class ServiceUnavailable(ApiError):
    def __init__(self, service: str) -> None:
        super().__init__(503, f"The {service} service is not in this cloud's catalog.", service)


def error_message(response: httpx.Response) -> str:
    """The human message out of Keystone/Nova/Neutron/Glance/Cinder JSON faults or Swift text."""
    text = response.text
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        found = _find_message(body)
        if found:
            return found
    text = re.sub(r"<[^>]+>", " ", text)  # Swift/Glance HTML-ish bodies
    text = " ".join(text.split())
    return text[:500] or f"HTTP {response.status_code} {response.reason_phrase}"


def _find_message(body: Any) -> str | None:
    if isinstance(body, dict):
        for key in ("message", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
        for value in body.values():
            found = _find_message(value)
            if found:
                return found
    if isinstance(body, list) and body:
        return _find_message(body[0])
    return None


class Cloud:
    """Calls to the kumo APIs on behalf of one logged-in user (one per request)."""

    def __init__(self, http: httpx.AsyncClient, session: Session, identity_url: str) -> None:
        self.http = http
        self.session = session
        self.identity_url = identity_url.rstrip("/")

    def url(self, service: str, path: str, *alternates: str) -> str:
        if service == "identity":  # unscoped tokens have no catalog: identity is where we logged in
            return self.identity_url + "/v3" + path
        base = self.session.endpoint(service, *alternates)
        if base is None:
            raise ServiceUnavailable(service)
        if service == "image" and not base.endswith("/v2"):
            base += "/v2"
        elif service == "network" and not base.endswith("/v2.0"):
            base += "/v2.0"
        return base + path

    def has(self, service: str, *alternates: str) -> bool:
        return self.session.endpoint(service, *alternates) is not None

    def _headers(self, service: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"X-Auth-Token": self.session.token, "Accept": "application/json"}
        if service == "compute":
            headers["OpenStack-API-Version"] = f"compute {COMPUTE_MICROVERSION}"
            headers["X-OpenStack-Nova-API-Version"] = COMPUTE_MICROVERSION
        headers.update(extra or {})
        return headers

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: Any = None,
        ok: tuple[int, ...] = (),
    ) -> httpx.Response:
        alternates = ("volumev3", "volume") if service == "block-storage" else ()
        url = self.url(service, path, *alternates)
        response = await self.http.request(
            method,
            url,
            json=json_body,
            params=params,
            headers=self._headers(service, headers),
            content=content,
        )
        if response.status_code >= 400 and response.status_code not in ok:
            raise ApiError(response.status_code, error_message(response), service)
        return response

    async def get(self, service: str, path: str, **kw: Any) -> Any:
        response = await self.request(service, "GET", path, **kw)
        return response.json() if response.content else {}

    async def post(self, service: str, path: str, body: Any = None, **kw: Any) -> Any:
        response = await self.request(service, "POST", path, json_body=body, **kw)
        if response.content and response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return {}

    async def put(self, service: str, path: str, body: Any = None, **kw: Any) -> Any:
        response = await self.request(service, "PUT", path, json_body=body, **kw)
        if response.content and response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return {}

    async def patch(self, service: str, path: str, body: Any, content_type: str = "application/json") -> Any:
        response = await self.request(
            service, "PATCH", path, content=json.dumps(body), headers={"Content-Type": content_type}
        )
        return response.json() if response.content else {}

    async def delete(self, service: str, path: str, **kw: Any) -> None:
        await self.request(service, "DELETE", path, **kw)

    async def stream(self, service: str, path: str) -> tuple[httpx.Response, AsyncIterator[bytes]]:
        """A streamed GET (downloads): the caller iterates the body and must close the response."""
        url = self.url(service, path)
        req = self.http.build_request("GET", url, headers=self._headers(service, None))
        response = await self.http.send(req, stream=True)
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            raise ApiError(response.status_code, error_message(response), service)
        return response, response.aiter_raw()
