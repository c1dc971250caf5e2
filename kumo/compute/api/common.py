"""Shared API helpers: the negotiated microversion, links, the service object."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.common.asgi import Call
from kumo.common.errors import APIError
from kumo.common.microversion import APIVersion, negotiate, response_headers
from kumo.compute.errors import nova
from kumo.compute.service import ComputeService

MIN_VERSION = "2.1"
MAX_VERSION = "2.100"
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"


def svc(call: Call) -> ComputeService:
    return call.request.app.state.compute


def mv(call: Call) -> APIVersion:
    return call.request.scope.get("state", {}).get("mv") or APIVersion.parse(MIN_VERSION)


def link(call: Call, collection: str, item_id: str, project_id: str | None = None) -> list[dict[str, str]]:
    base = call.base_url  # .../compute
    return [
        {"rel": "self", "href": f"{base}/v2.1/{collection}/{item_id}"},
        {"rel": "bookmark", "href": f"{base}/{collection}/{item_id}"},
    ]


def next_link(call: Call, collection: str, marker: str) -> list[dict[str, str]]:
    from urllib.parse import urlencode

    params = [(k, v) for k, v in call.query.multi_items() if k != "marker"] + [("marker", marker)]
    return [{"rel": "next", "href": f"{call.base_url}/v2.1/{collection}?{urlencode(params)}"}]


def boolish(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on", "t", "y")


class MicroversionMiddleware:
    """Negotiates ``X-OpenStack-Nova-API-Version`` / ``OpenStack-API-Version: compute`` and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            version = negotiate(headers, "compute", MIN_VERSION, MAX_VERSION, legacy_header=LEGACY_HEADER)
        except APIError as err:
            body, media = nova(err)
            await send(
                {
                    "type": "http.response.start",
                    "status": err.status,
                    "headers": [
                        (b"content-type", media.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["mv"] = version
        extra = [
            (k.lower().encode(), v.encode())
            for k, v in response_headers("compute", version, LEGACY_HEADER).items()
        ]

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_version)
