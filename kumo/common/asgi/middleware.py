"""Pure-ASGI middleware: request ids and token authentication."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from kumo.common.context import RequestContext
from kumo.common.errors import APIError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from kumo.common.auth import TokenValidator

log = logging.getLogger("kumo.http")


class RequestIdMiddleware:
    """Gives every request an ``X-Openstack-Request-Id`` and echoes it in the response."""

    def __init__(self, app: ASGIApp, extra_header: str | None = None) -> None:
        self.app = app
        self.extra = extra_header.lower().encode() if extra_header else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req-" + str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        rid = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-openstack-request-id", rid))
                if self.extra:
                    headers.append((self.extra, rid))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


class AuthMiddleware:
    """Validates ``X-Auth-Token`` and puts a :class:`RequestContext` in the scope.

    Like keystonemiddleware with ``delay_auth_decision``: a missing or invalid
    token gives an anonymous context, and each handler decides whether it needs
    authentication (most do; version documents and token issue do not).
    """

    def __init__(self, app: ASGIApp, validator: TokenValidator) -> None:
        self.app = app
        self.validator = validator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            token = None
            for name, value in scope["headers"]:
                if name == b"x-auth-token":
                    token = value.decode("latin-1").strip()
                    break
            state = scope.setdefault("state", {})
            request_id = state.get("request_id", "")
            ctx = RequestContext(request_id=request_id)
            if token:
                try:
                    body = await self.validator.validate(token)
                except APIError as err:  # identity unreachable: say so instead of 401
                    state["auth_error"] = err
                    body = None
                if body is not None:
                    ctx = RequestContext.from_token(body, token, request_id)
                else:
                    state["auth_invalid"] = True
            state["context"] = ctx
        await self.app(scope, receive, send)
