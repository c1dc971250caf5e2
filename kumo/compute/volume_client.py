"""The block-storage (Cinder v3) calls compute makes, with the caller's token (as Nova does).

Nova's flow: create an attachment for (volume, instance) → the volume is ``reserved``; update
it with the host's connector → ``connection_info``, volume ``attaching``; the hypervisor
attaches; ``os-complete`` → ``in-use``. Detach: ``os-begin_detaching`` → ``detaching``; the
hypervisor detaches; delete the attachment → ``available`` (``os-roll_detaching`` on failure).
"""

from __future__ import annotations

import platform
import time
from typing import Any

import anyio
import httpx

from kumo.common.context import RequestContext
from kumo.compute.clients import endpoint
from kumo.compute.errors import APIError, BadRequest, NotFound

MICROVERSION = "volume 3.44"  # attachments with os-complete


class VolumeError(APIError):
    """The block-storage API refused a call: its status and message are passed on."""


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:300] or f"HTTP {r.status_code}"
    if isinstance(body, dict):
        for v in body.values():
            if isinstance(v, dict) and "message" in v:
                return str(v["message"])
    return str(body)[:300]


def connector(host: str | None, mountpoint: str | None = None) -> dict[str, Any]:
    """The connector of a kumo compute host (files and local block devices need no initiator)."""
    return {
        "host": host or "",
        "ip": "127.0.0.1",
        "initiator": None,
        "platform": platform.machine() or "x86_64",
        "os_type": "linux",
        "multipath": False,
        "mountpoint": mountpoint,
        "mode": "rw",
    }


class Volumes:
    """Async access to the block-storage API with the user's token."""

    def __init__(self, ctx: RequestContext, extras: dict[str, Any]) -> None:
        self.ctx = ctx
        url = endpoint(ctx, extras, "block-storage") or endpoint(ctx, extras, "volumev3")
        for template in ("$(project_id)s", "%(project_id)s", "$(tenant_id)s", "%(tenant_id)s"):
            url = url.replace(template, ctx.project_id or "") if url else url
        self.url = url

    @property
    def available(self) -> bool:
        return bool(self.url)

    def _require(self) -> str:
        if not self.url:
            raise BadRequest("The block storage service is not available.")
        return self.url

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        base = self._require()
        headers = {"X-Auth-Token": self.ctx.auth_token or "", "OpenStack-API-Version": MICROVERSION}
        if self.ctx.request_id:
            headers["X-OpenStack-Request-ID"] = self.ctx.request_id
        async with httpx.AsyncClient(timeout=60.0, headers=headers) as c:
            try:
                return await c.request(method, base + path, **kw)
            except httpx.HTTPError as exc:
                raise APIError(
                    f"The block storage service is not reachable: {exc}",
                    status=503,
                    fault="serviceUnavailable",
                ) from None

    async def check(self, r: httpx.Response, *ok: int) -> httpx.Response:
        if r.status_code in ok:
            return r
        if r.status_code == 404:
            raise NotFound(_message(r))
        if r.status_code in (400, 409):
            raise VolumeError(_message(r), status=400, fault="badRequest")
        if r.status_code in (403, 413):
            raise VolumeError(_message(r), status=403, fault="forbidden")
        raise APIError(f"The block storage service answered {r.status_code}: {_message(r)}")

    # -- volumes ---------------------------------------------------------------------------
    async def get_volume(self, volume_id: str) -> dict[str, Any]:
        r = await self.call("GET", f"/volumes/{volume_id}")
        if r.status_code in (404, 400):
            raise NotFound(f"Volume {volume_id} could not be found.")
        await self.check(r, 200)
        return r.json()["volume"]

    async def create_volume(self, body: dict[str, Any]) -> dict[str, Any]:
        r = await self.check(await self.call("POST", "/volumes", json={"volume": body}), 202, 200)
        return r.json()["volume"]

    async def delete_volume(self, volume_id: str) -> None:
        r = await self.call("DELETE", f"/volumes/{volume_id}")
        await self.check(r, 202, 204, 404)

    async def wait_for_volume(
        self, volume_id: str, want: str = "available", timeout: float = 600.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            vol = await self.get_volume(volume_id)
            if vol.get("status") == want:
                return vol
            if vol.get("status") in ("error", "error_restoring", "error_extending"):
                raise VolumeError(f"Volume {volume_id} went to status {vol['status']}.", status=400)
            if time.monotonic() > deadline:
                raise VolumeError(
                    f"Volume {volume_id} did not become {want} in {int(timeout)} s (status {vol.get('status')}).",
                    status=400,
                )
            await anyio.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    async def action(self, volume_id: str, name: str, value: Any = None) -> None:
        r = await self.call("POST", f"/volumes/{volume_id}/action", json={name: value or {}})
        await self.check(r, 200, 202, 204)

    # -- attachments (3.27+) ---------------------------------------------------------------
    async def attachment_create(
        self, volume_id: str, server_id: str, conn: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"volume_uuid": volume_id, "instance_uuid": server_id}
        if conn is not None:
            body["connector"] = conn
        r = await self.call("POST", "/attachments", json={"attachment": body})
        if r.status_code == 404:
            raise NotFound(f"Volume {volume_id} could not be found.")
        if r.status_code == 400:
            msg = _message(r)
            msg = msg if msg.startswith("Invalid volume") else f"Invalid volume: {msg}"
            raise VolumeError(msg, status=400, fault="badRequest")
        await self.check(r, 200, 202)
        return r.json()["attachment"]

    async def attachment_update(self, attachment_id: str, conn: dict[str, Any]) -> dict[str, Any]:
        r = await self.call("PUT", f"/attachments/{attachment_id}", json={"attachment": {"connector": conn}})
        await self.check(r, 200, 202)
        return r.json()["attachment"]

    async def attachment_complete(self, attachment_id: str) -> None:
        r = await self.call("POST", f"/attachments/{attachment_id}/action", json={"os-complete": None})
        await self.check(r, 200, 202, 204)

    async def attachment_delete(self, attachment_id: str) -> None:
        r = await self.call("DELETE", f"/attachments/{attachment_id}")
        await self.check(r, 200, 202, 204, 404)
