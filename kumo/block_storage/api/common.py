"""Shared API helpers: microversions, the optional project id in URLs, links, the service object."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.block_storage.errors import cinder
from kumo.block_storage.service import BlockStorageService
from kumo.common.asgi import Call
from kumo.common.errors import APIError, NotFound
from kumo.common.microversion import APIVersion, negotiate, response_headers

MIN_VERSION = "3.0"
MAX_VERSION = "3.70"

# First path segments after /v3 that name a collection (never a project id)
COLLECTIONS = {
    "volumes", "snapshots", "types", "qos-specs", "os-quota-sets", "os-quota-class-sets", "limits",
    "os-availability-zone", "os-services", "os-hosts", "scheduler-stats", "capabilities", "attachments",
    "os-volume-transfer", "volume-transfers", "backups", "messages", "extensions", "kumo-agent", "groups",
    "group_types", "group_snapshots", "manageable_volumes", "manageable_snapshots", "os-volume-manage",
    "os-snapshot-manage", "workers", "clusters", "default-types", "resource_filters",
}
_PROJECT = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def svc(call: Call) -> BlockStorageService:
    return call.request.app.state.volumes


def mv(call: Call) -> APIVersion:
    return call.request.scope.get("state", {}).get("mv") or APIVersion.parse(MIN_VERSION)


def url_project(call: Call) -> str | None:
    return call.request.scope.get("state", {}).get("url_project")


def api_base(call: Call) -> str:
    """``.../volume/v3[/{project_id}]`` as the client addressed it."""
    project = url_project(call)
    return call.base_url + "/v3" + (f"/{project}" if project else "")


def links(call: Call, collection: str, item_id: str) -> list[dict[str, str]]:
    project = url_project(call)
    bookmark = call.base_url + (f"/{project}" if project else "") + f"/{collection}/{item_id}"
    return [{"rel": "self", "href": f"{api_base(call)}/{collection}/{item_id}"},
            {"rel": "bookmark", "href": bookmark}]


def next_link(call: Call, path: str, marker: str, limit: int) -> list[dict[str, str]]:
    params = [(k, v) for k, v in call.query.multi_items() if k not in ("marker", "limit")]
    params += [("limit", str(limit)), ("marker", marker)]
    return [{"rel": "next", "href": f"{api_base(call)}/{path}?{urlencode(params)}"}]


def iso(dt: Any) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") if dt else None


class VolumeMiddleware:
    """Negotiates ``OpenStack-API-Version: volume 3.N`` (echoed on every answer) and accepts
    ``/v3/{project_id}/...`` as well as ``/v3/...`` (the id is remembered for links)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = dict(scope)
        state = dict(scope.get("state") or {})
        root = scope.get("root_path", "")
        path = scope["path"]
        route = path[len(root):] if root and path.startswith(root) else path
        parts = route.split("/")
        # ['', 'v3', '<project>', 'volumes', ...]
        if len(parts) >= 3 and parts[1] == "v3" and parts[2] and parts[2] not in COLLECTIONS and _PROJECT.match(parts[2]):
            state["url_project"] = parts[2]
            route = "/".join(parts[:2] + parts[3:]) or "/v3"
            path = (root + route) if root and path.startswith(root) else route
            scope["path"] = path
            scope["raw_path"] = path.encode()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if route.endswith("/") and route not in ("/", "/v3/"):
                # "volumes/" names no resource (Cinder answers 404, not a redirect to the list)
                raise NotFound("The resource could not be found.")
            version = negotiate(headers, "volume", MIN_VERSION, MAX_VERSION)
        except APIError as err:
            body, media = cinder(err)
            await send({"type": "http.response.start", "status": err.status,
                        "headers": [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        state["mv"] = version
        scope["state"] = state
        extra = [(k.lower().encode(), v.encode()) for k, v in response_headers("volume", version).items()]

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_version)
