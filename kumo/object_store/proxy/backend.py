"""The proxy's side of the backend protocol: find the nodes in the ring and ask them.

Writes go to every primary and succeed on a quorum; reads take the first good answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import unquote, urlencode

import httpx
from starlette.requests import Request

from kumo.object_store.cluster import Cluster
from kumo.object_store.ring import Device, Ring
from kumo.object_store.utils import quote_path

log = logging.getLogger("kumo.object_store.proxy")
_NODE_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")  # what a node's app routes (others: over HTTP)


class NodeResponse:
    """One node's answer; ``body`` is read for DB calls, streamed for object GETs (``stream`` is
    the httpx response of a remote node or the body iterator of an in-process one)."""

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes = b"",
        stream: httpx.Response | AsyncIterator[bytes] | None = None,
    ) -> None:
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.stream = stream

    async def iter(self) -> AsyncIterator[bytes]:
        if self.stream is None:
            if self.body:
                yield self.body
            return
        chunks = self.stream.aiter_raw() if isinstance(self.stream, httpx.Response) else self.stream
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            await self.close()

    async def close(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            await _aclose(stream)


async def _aclose(stream: object) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _receive_from(content: Any) -> Any:
    """An ASGI ``receive`` for an in-process call: the request body, then nothing more."""
    if content is None or isinstance(content, (bytes, bytearray)):
        body = bytes(content or b"")

        async def receive_bytes() -> dict[str, Any]:
            nonlocal body
            if body is None:
                await asyncio.Event().wait()  # a disconnect never comes in-process
            chunk, body = body, None
            return {"type": "http.request", "body": chunk, "more_body": False}

        return receive_bytes
    it = content.__aiter__()
    done = False

    async def receive_stream() -> dict[str, Any]:
        nonlocal done
        if done:
            await asyncio.Event().wait()
        try:
            chunk = await it.__anext__()
        except StopAsyncIteration:
            done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": bytes(chunk), "more_body": True}

    return receive_stream


async def _run_response(resp: Any, scope: dict[str, Any]) -> NodeResponse:
    start: dict[str, Any] = {}
    parts: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await resp(scope, _receive_from(b""), send)
    hdrs = {k.decode("latin-1"): v.decode("latin-1") for k, v in start.get("headers", [])}
    return NodeResponse(int(start.get("status", 500)), hdrs, b"".join(parts))


class InfoCache:
    """Account and container HEAD answers kept briefly for object requests (Swift keeps them in
    memcache): a PUT or GET of an object does not ask the DBs for the container's ACLs, quotas
    and versioning settings every time.  A write to the account or container through this
    proxy drops the entry; ``ttl`` bounds how long another proxy process's change goes unseen.
    Only found answers are kept, never a 404."""

    def __init__(self, ttl: float = 3.0, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = time.monotonic
        self.drops = 0  # counts drops: a lookup that overlapped one does not keep its answer
        self.entries: dict[tuple[str, ...], tuple[float, NodeResponse]] = {}

    def get(self, key: tuple[str, ...]) -> NodeResponse | None:
        hit = self.entries.get(key)
        if hit is None:
            return None
        if hit[0] <= self.clock():
            self.entries.pop(key, None)
            return None
        return hit[1]

    def put(self, key: tuple[str, ...], resp: NodeResponse, drops: int) -> None:
        """Keep a lookup's answer, unless a write dropped something since it began (``drops``)."""
        if self.ttl <= 0 or resp.status >= 300 or drops != self.drops:
            return
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[key] = (self.clock() + self.ttl, NodeResponse(resp.status, resp.headers, resp.body))

    def drop(self, key: tuple[str, ...]) -> None:
        self.drops += 1
        self.entries.pop(key, None)


def quorum(n: int) -> int:
    return n // 2 + 1


def best_status(statuses: list[int], n: int) -> int:
    """Swift's rule: a 2xx, 4xx or 3xx class that reaches quorum wins; anything else (no quorum,
    or a quorum of node failures) is 503 — a node's 500 is the cluster being unavailable."""
    q = quorum(n)
    for lo in (200, 400, 300):
        group = [s for s in statuses if lo <= s < lo + 100]
        if len(group) >= q:
            return Counter(group).most_common(1)[0][0]
    return 503


ERROR_LIMIT_SECONDS = 10.0  # a node that refused a connection is skipped this long


class Backend:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.down_until: dict[str, float] = {}
        self.info_cache = InfoCache()

    async def info(self, server: str, names: tuple[str, ...], *, fresh: bool = False) -> NodeResponse:
        """An account's or container's HEAD, from the short-lived cache unless ``fresh``."""
        key = (server, *names)
        if not fresh:
            hit = self.info_cache.get(key)
            if hit is not None:
                return hit
        drops = self.info_cache.drops
        resp = await self.first(server, names, "HEAD")
        self.info_cache.put(key, resp, drops)
        return resp

    def _written(self, server: str, names: tuple[str, ...], method: str) -> None:
        """A write to an account or a container (not a row in it) makes its cached HEAD stale."""
        if method in ("PUT", "POST", "DELETE") and len(names) == (1 if server == "account" else 2):
            self.info_cache.drop((server, *names))

    def is_down(self, dev: Device) -> bool:
        return self.down_until.get(dev.node, 0.0) > time.monotonic()

    def write_devs(self, part: int, devs: list[Device]) -> list[Device]:
        """The primaries, with a handoff in place of each one known to be down (Swift's error limiting)."""
        if not any(self.is_down(d) for d in devs):
            return devs
        spare = [h for h in self.ring.handoffs(part) if not self.is_down(h)]
        return [d if not self.is_down(d) or not spare else spare.pop(0) for d in devs]

    @property
    def ring(self) -> Ring:
        return self.cluster.ring

    def locate(self, *names: str) -> tuple[int, list[Device]]:
        part = self.ring.partition(*names)
        return part, self.ring.nodes(part)

    def _url(self, dev: Device, server: str, part: int, names: tuple[str, ...]) -> str:
        return f"/{server}/{dev.device}/{part}/{quote_path(*names)}"

    async def _send(
        self,
        dev: Device,
        server: str,
        part: int,
        names: tuple[str, ...],
        method: str,
        headers: Mapping[str, str] | None,
        query: Mapping[str, str] | None,
        content: Any,
        stream: bool,
    ) -> NodeResponse | None:
        if server not in ("account", "container"):
            return await self._send_one(dev, server, part, names, method, headers, query, content, stream)
        self._written(server, names, method)
        try:
            return await self._send_one(dev, server, part, names, method, headers, query, content, stream)
        finally:  # again: a lookup that raced with the write may have cached what it replaced
            self._written(server, names, method)

    async def _send_one(
        self,
        dev: Device,
        server: str,
        part: int,
        names: tuple[str, ...],
        method: str,
        headers: Mapping[str, str] | None,
        query: Mapping[str, str] | None,
        content: Any,
        stream: bool,
    ) -> NodeResponse | None:
        node = self._local_node(dev) if method in _NODE_METHODS else None
        if node is not None:
            return await self._send_local(
                node, dev, server, part, names, method, headers, query, content, stream
            )
        try:
            client = self.cluster.client(dev.node)
            req = client.build_request(
                method,
                self._url(dev, server, part, names),
                headers=dict(headers or {}),
                params=dict(query or {}),
                content=content,
            )
            resp = await client.send(req, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            self.down_until[dev.node] = time.monotonic() + ERROR_LIMIT_SECONDS
            return None
        except (httpx.HTTPError, LookupError):
            return None
        self.down_until.pop(dev.node, None)
        if stream and method == "GET" and resp.status_code < 300:
            return NodeResponse(resp.status_code, resp.headers, stream=resp)
        try:
            body = await resp.aread()
        except httpx.HTTPError:
            return None
        finally:
            await resp.aclose()
        return NodeResponse(resp.status_code, resp.headers, body)

    def _local_node(self, dev: Device) -> Any:
        """The storage node object of a device served in this process, else None."""
        if dev.url or self.cluster.local_app is None:
            return None
        app = self.cluster.local_apps.get(dev.node)
        if app is None:
            try:
                self.cluster.client(dev.node)  # builds the in-process node
            except LookupError:
                return None
            app = self.cluster.local_apps.get(dev.node)
        return getattr(getattr(app, "state", None), "node", None)

    async def _send_local(
        self,
        node: Any,
        dev: Device,
        server: str,
        part: int,
        names: tuple[str, ...],
        method: str,
        headers: Mapping[str, str] | None,
        query: Mapping[str, str] | None,
        content: Any,
        stream: bool,
    ) -> NodeResponse | None:
        """The same request to an in-process node, handed to it directly: no HTTP client, no
        routing, the same headers, body and answer as over a socket."""
        path = self._url(dev, server, part, names)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "headers": [
                (k.lower().encode("ascii"), str(v).encode("ascii")) for k, v in (headers or {}).items()
            ],
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode("ascii"),
            "query_string": urlencode(dict(query or {})).encode("ascii"),
            "server": (dev.node, 80),
            "client": ("127.0.0.1", 0),
            "root_path": "",
        }
        try:
            resp = await node.handle(Request(scope, _receive_from(content)))
        except asyncio.CancelledError:
            raise
        except Exception:  # a socket would have carried a 500
            log.exception("in-process storage node %s failed on %s %s", dev.node, method, path)
            return NodeResponse(500, {})
        body = getattr(resp, "body_source", None)
        if body is None:  # not a RawResponse: let it send itself
            return await _run_response(resp, scope)
        hdrs = {k.decode("latin-1"): v.decode("latin-1") for k, v in resp.raw_headers}
        quiet = resp.head or resp.status_code in (204, 304)
        if isinstance(body, bytes):
            return NodeResponse(resp.status_code, hdrs, b"" if quiet else body)
        if quiet:
            await _aclose(body)
            return NodeResponse(resp.status_code, hdrs)
        if stream and method == "GET" and resp.status_code < 300:
            return NodeResponse(resp.status_code, hdrs, stream=body)
        try:
            data = b"".join([chunk async for chunk in body])
        except Exception:
            return None
        finally:
            await _aclose(body)
        return NodeResponse(resp.status_code, hdrs, data)

    async def all(
        self,
        server: str,
        names: tuple[str, ...],
        method: str,
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
    ) -> list[NodeResponse | None]:
        part, devs = self.locate(
            *names[:3] if server == "object" else names[:2] if server == "container" else names[:1]
        )
        extra = self.listing_targets(names) if server == "object" and method == "DELETE" else None
        if method in ("PUT", "POST", "DELETE"):
            devs = self.write_devs(part, devs)
        return list(
            await asyncio.gather(
                *(
                    self._send(
                        d,
                        server,
                        part,
                        names,
                        method,
                        {**(headers or {}), **(extra[i] if extra else {})},
                        None,
                        content,
                        False,
                    )
                    for i, d in enumerate(devs)
                )
            )
        )

    def listing_targets(self, names: tuple[str, ...]) -> list[dict[str, str]]:
        """For each object replica, the container replica it tells about the write (Swift pairs them)."""
        part, devs = self.locate(names[0], names[1])
        n = len(self.ring.assignment)
        return [
            {
                "x-container-partition": str(part),
                "x-container-device": f"{devs[i % len(devs)].node}/{devs[i % len(devs)].device}",
            }
            for i in range(n)
        ]

    async def first(
        self,
        server: str,
        names: tuple[str, ...],
        method: str,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> NodeResponse:
        """The first good answer from the primaries (in random order), else the most telling failure."""
        key = names[:3] if server == "object" else names[:2] if server == "container" else names[:1]
        part, devs = self.locate(*key)
        devs = random.sample(devs, len(devs))
        devs.sort(key=self.is_down)  # nodes known to be down last
        failures: list[NodeResponse] = []
        unreachable = 0
        for dev in devs:
            resp = await self._send(
                dev, server, part, names, method, headers, query, None, server == "object"
            )
            if resp is None:
                unreachable += 1
                if unreachable == 1:  # what was written while it was down may sit on a handoff
                    devs.extend(self.ring.handoffs(part)[:2])
                continue
            if resp.status < 300 or resp.status in (304, 412, 416):
                for f in failures:
                    await f.close()
                return resp
            failures.append(resp)
        if not failures:
            return NodeResponse(503, {})
        # prefer a 404 that knows of a newer tombstone, else any 404, else the first answer
        failures.sort(key=lambda r: (r.status != 404, -float(r.headers.get("x-backend-timestamp") or 0)))
        return failures[0]

    async def put_stream(
        self, names: tuple[str, str, str], headers: Mapping[str, str], body: AsyncIterator[bytes] | bytes
    ) -> list[NodeResponse | None]:
        """Stream one body to every primary at once."""
        part, devs = self.locate(*names)
        devs = self.write_devs(part, devs)
        targets = self.listing_targets(names)
        per_node = [{**headers, **targets[i]} for i in range(len(devs))]
        if len(devs) == 1 or isinstance(body, bytes):
            return list(
                await asyncio.gather(
                    *(
                        self._send(d, "object", part, names, "PUT", per_node[i], None, body, False)
                        for i, d in enumerate(devs)
                    )
                )
            )
        queues: list[asyncio.Queue[bytes | None]] = [asyncio.Queue(maxsize=4) for _ in devs]
        alive = [True] * len(devs)

        async def feed(i: int) -> AsyncIterator[bytes]:
            while True:
                chunk = await queues[i].get()
                if chunk is None:
                    return
                yield chunk

        async def send(i: int) -> NodeResponse | None:
            try:
                return await self._send(
                    devs[i], "object", part, names, "PUT", per_node[i], None, feed(i), False
                )
            finally:
                alive[i] = False
                while not queues[i].empty():  # unblock a producer waiting on a full queue
                    queues[i].get_nowait()

        tasks = [asyncio.ensure_future(send(i)) for i in range(len(devs))]
        try:
            async for chunk in body:
                for i, q in enumerate(queues):
                    if alive[i]:
                        await q.put(chunk)
            for i, q in enumerate(queues):
                if alive[i]:
                    await q.put(None)
        except BaseException:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
            raise
        return list(await asyncio.gather(*tasks))
