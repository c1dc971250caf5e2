"""A response that sends exactly the headers it is given (HEAD keeps its Content-Length)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Body = bytes | AsyncIterator[bytes]


class RawResponse(Response):
    def __init__(
        self,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: Body = b"",
        *,
        head: bool = False,
    ) -> None:
        self.status_code = status
        self.body_source = body
        self.head = head
        items = headers.items() if isinstance(headers, Mapping) else headers
        self.raw_headers = [(k.lower().encode("latin-1"), _header_value(v)) for k, v in items]
        if (
            isinstance(body, bytes)
            and not any(k == b"content-length" for k, _ in self.raw_headers)
            and status not in (204, 304)
            and status >= 200
        ):
            self.raw_headers.append((b"content-length", str(len(body)).encode()))
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        body = self.body_source
        if self.head or self.status_code in (204, 304):
            if not isinstance(body, bytes):
                await _close(body)
            await send({"type": "http.response.body", "body": b""})
            return
        if isinstance(body, bytes):
            await send({"type": "http.response.body", "body": body})
            return
        try:
            async for chunk in body:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await _close(body)
        await send({"type": "http.response.body", "body": b""})


def _header_value(value: str) -> bytes:
    try:
        return str(value).encode("latin-1")
    except UnicodeEncodeError:
        return str(value).encode("utf-8")


async def _close(body: object) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()
