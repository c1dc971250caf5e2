"""The proxy's side of the backend protocol: find the nodes in the ring and ask them.

Writes go to every primary and succeed on a quorum; reads take the first good answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from kumo.object_store.cluster import Cluster
from kumo.object_store.ring import Device, Ring
from kumo.object_store.utils import quote_path


class NodeResponse:
    """One node's answer; ``body`` is read for DB calls, streamed for object GETs."""

    def __init__(
        self, status: int, headers: Mapping[str, str], body: bytes = b"", stream: httpx.Response | None = None
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
        try:
            async for chunk in self.stream.aiter_raw():
                yield chunk
        finally:
            await self.stream.aclose()

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()


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
