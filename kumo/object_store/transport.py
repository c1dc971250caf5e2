"""An httpx transport that calls an in-process ASGI app and streams both ways.

httpx's own ASGITransport buffers the whole response; objects can be gigabytes, so the
proxy talks to in-process storage nodes through this one instead.  Requests and responses
are the same as over a socket: the proxy's code path does not change when nodes move out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx


class _Body(httpx.AsyncByteStream):
    def __init__(self, queue: asyncio.Queue[bytes | BaseException | None], task: asyncio.Task[None]) -> None:
        self.queue = queue
        self.task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise httpx.ReadError(str(item))
            yield item

    async def aclose(self) -> None:
        if not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port or 80),
            "client": ("127.0.0.1", 0),
            "root_path": "",
        }
        body_iter = request.stream.__aiter__()  # type: ignore[union-attr]
        body_done = False
        started: asyncio.Future[tuple[int, list[tuple[bytes, bytes]]]] = (
            asyncio.get_running_loop().create_future()
        )
        queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=8)

        async def receive() -> dict[str, Any]:
            nonlocal body_done
            if body_done:
                await asyncio.Event().wait()  # a disconnect never comes in-process
            try:
                chunk = await body_iter.__anext__()
            except StopAsyncIteration:
                body_done = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": bytes(chunk), "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.set_result((message["status"], message.get("headers", [])))
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    await queue.put(message["body"])
                if not message.get("more_body", False):
                    await queue.put(None)

        async def run() -> None:
            try:
                await self.app(scope, receive, send)
            except BaseException as exc:  # noqa: BLE001 - handed to the reader
                if not started.done():
                    started.set_exception(exc)
                else:
                    with contextlib.suppress(Exception):
                        queue.put_nowait(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
            else:
                if not started.done():
                    started.set_exception(RuntimeError("the app sent no response"))

        task = asyncio.get_running_loop().create_task(run())
        try:
            status, headers = await started
        except BaseException:
            task.cancel()
            raise
        return httpx.Response(status, headers=headers, stream=_Body(queue, task), request=request)
