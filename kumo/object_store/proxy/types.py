"""The proxy's own small request/response model, shared by the core and the middlewares.

A handler is ``async (Req) -> Resp``; a middleware wraps a handler and may call it again
with sub-requests (SLO fetching segments, COPY reading a source), as Swift's WSGI
pipeline does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from kumo.common.context import RequestContext
from kumo.object_store.errors import SwiftError

Body = bytes | AsyncIterator[bytes]


@dataclass(slots=True)
class Req:
    method: str
    account: str
    container: str | None = None
    obj: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    query: dict[str, str] = field(default_factory=dict)
    body: Body | None = None
    ctx: RequestContext = field(default_factory=RequestContext)
    environ: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return "/v1/" + "/".join(p for p in (self.account, self.container, self.obj) if p is not None)

    @property
    def quoted_path(self) -> str:
        return "/v1/" + "/".join(
            quote(p, safe="") if i < 2 else quote(p)
            for i, p in enumerate((self.account, self.container, self.obj))
            if p is not None
        )

    def sub(
        self,
        method: str,
        container: str | None,
        obj: str | None,
        *,
        account: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        body: Body | None = None,
        authorized: bool = True,
    ) -> Req:
        """A sub-request made on behalf of this one (already authorized unless told otherwise)."""
        environ = {
            k: v for k, v in self.environ.items() if k in ("authorize", "remote_addr", "trans_id", "referer")
        }
        if authorized:
            environ["authorized"] = True
        environ["subrequest"] = True
        return replace(
            self,
            method=method,
            account=account or self.account,
            container=container,
            obj=obj,
            headers=dict(headers or {}),
            query=dict(query or {}),
            body=body,
            environ=environ,
        )

    async def read_body(self, limit: int | None = None) -> bytes:
        body = self.body
        if body is None:
            return b""
        if isinstance(body, bytes):
            data = body
        else:
            parts: list[bytes] = []
            size = 0
            async for chunk in body:
                parts.append(chunk)
                size += len(chunk)
                if limit is not None and size > limit:
                    raise SwiftError(413)
            data = b"".join(parts)
        self.body = data
        if limit is not None and len(data) > limit:
            raise SwiftError(413)
        return data


@dataclass(slots=True)
class Resp:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Body = b""

    async def read(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        parts = [c async for c in self.body]
        self.body = b"".join(parts)
        return self.body

    async def close(self) -> None:
        if not isinstance(self.body, bytes):
            aclose = getattr(self.body, "aclose", None)
            if aclose is not None:
                await aclose()

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


Handler = Callable[[Req], Awaitable[Resp]]
Middleware = Callable[[Handler], Handler]


def error(status: int, message: str | None = None, headers: dict[str, str] | None = None) -> Resp:
    err = SwiftError(status, message, headers)
    return Resp(status, {"content-type": "text/html; charset=UTF-8", **err.headers}, err.body())


def text(status: int, body: str | bytes, headers: dict[str, str] | None = None) -> Resp:
    data = body.encode() if isinstance(body, str) else body
    return Resp(status, {"content-type": "text/plain; charset=utf-8", **(headers or {})}, data)
