"""HTTP clients for the image and network APIs, used with the caller's token (as Nova does)."""

from __future__ import annotations

from typing import Any

import httpx

from kumo.common.context import RequestContext
from kumo.compute.errors import APIError, BadRequest


def endpoint(ctx: RequestContext, svc_extras: dict[str, Any], service_type: str) -> str | None:
    for entry in (ctx.token or {}).get("catalog") or []:
        if entry.get("type") == service_type:
            for ep in entry.get("endpoints") or []:
                if ep.get("interface") == "public":
                    return str(ep["url"]).rstrip("/")
    for etype, _name, url in svc_extras.get("endpoints", []):
        if etype == service_type:
            return str(url).rstrip("/")
    return None


class Peers:
    """Async access to image and network with the user's token."""

    def __init__(self, ctx: RequestContext, extras: dict[str, Any]) -> None:
        self.ctx = ctx
        self.image_url = endpoint(ctx, extras, "image")
        self.network_url = endpoint(ctx, extras, "network")

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=60.0, headers={"X-Auth-Token": self.ctx.auth_token or ""})

    async def get_image(self, image_id: str) -> dict[str, Any] | None:
        if not self.image_url:
            raise APIError("The image service is not available.", status=503, fault="serviceUnavailable")
        async with self._client() as c:
            try:
                r = await c.get(f"{self.image_url}/v2/images/{image_id}")
            except httpx.HTTPError as exc:
                raise APIError(f"The image service is not reachable: {exc}") from None
        if r.status_code == 404 or r.status_code == 400:
            return None
        if r.status_code >= 400:
            raise APIError(f"The image service answered {r.status_code}.")
        return r.json()

    async def create_image(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self._client() as c:
            r = await c.post(f"{self.image_url}/v2/images", json=body)
        if r.status_code == 413 or r.status_code == 403:
            raise APIError("Quota exceeded for images.", status=403, fault="forbidden")
        if r.status_code >= 400:
            raise BadRequest(f"The image service refused the snapshot: {r.text[:200]}")
        return r.json()

    async def upload_image(self, image_id: str, data: bytes) -> None:
        async with self._client() as c:
            r = await c.put(
                f"{self.image_url}/v2/images/{image_id}/file",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
        if r.status_code >= 400:
            raise APIError(f"Snapshot upload failed: {r.status_code}")

    async def delete_image(self, image_id: str) -> None:
        async with self._client() as c:
            await c.delete(f"{self.image_url}/v2/images/{image_id}")

    # -- network ----------------------------------------------------------------------------

    async def network(self, method: str, path: str, **kw: Any) -> httpx.Response:
        if not self.network_url:
            raise BadRequest("The network service is not available.")
        async with self._client() as c:
            return await c.request(method, f"{self.network_url}/v2.0{path}", **kw)
