"""The view of the storage cluster that proxies and nodes share: the ring and a client per node.

The ring file is re-read when a newer version appears on disk (looked at no more often than
``check_interval``), so ``kumo object-store ring rebalance`` or a ring pushed by a peer takes
effect without a restart.  A node with a URL is reached over HTTP; a node without one runs in
this process and is reached through an in-process ASGI transport (same requests, no socket).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from kumo.object_store.ring import Device, Ring
from kumo.object_store.transport import StreamingASGITransport

log = logging.getLogger("kumo.object_store.cluster")

TIMEOUT = httpx.Timeout(60.0, connect=2.0)


class Cluster:
    def __init__(
        self,
        ring_path: Path,
        *,
        local_app: Callable[[str], Any] | None = None,
        check_interval: float = 5.0,
    ) -> None:
        """``local_app(node)`` builds the ASGI app of an in-process node (None: every node is remote)."""
        self.ring_path = ring_path
        self.local_app = local_app
        self.check_interval = check_interval
        self._ring = Ring.load(ring_path)
        self._mtime = _mtime(ring_path)
        self._checked = time.monotonic()
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.local_apps: dict[str, Any] = {}

    @property
    def ring(self) -> Ring:
        now = time.monotonic()
        if now - self._checked >= self.check_interval:
            self._checked = now
            self.reload()
        return self._ring

    def reload(self) -> bool:
        """Take the ring file if it is newer than the ring in memory; True if it changed."""
        mtime = _mtime(self.ring_path)
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            ring = Ring.load(self.ring_path)
        except (OSError, ValueError) as exc:
            log.warning(
                "ring file %s unreadable, keeping version %s: %s", self.ring_path, self._ring.version, exc
            )
            return False
        if ring.version <= self._ring.version and ring.hash_suffix == self._ring.hash_suffix:
            return False
        log.info("ring version %s -> %s", self._ring.version, ring.version)
        old_urls = {d.node: d.url for d in self._ring.devs.values()}
        self._ring = ring
        for dev in ring.devs.values():  # a node that moved gets a new client
            if dev.node in self.clients and old_urls.get(dev.node) != dev.url:
                self.clients.pop(dev.node)
        return True

    def accept(self, data: bytes) -> bool:
        """A ring file pushed by a peer: keep it when its version is newer."""
        import gzip
        import json

        ring = Ring.from_dict(json.loads(gzip.decompress(data)))
        if ring.version <= self._ring.version:
            return False
        if self._ring.hash_suffix and ring.hash_suffix != self._ring.hash_suffix:
            raise ValueError("the ring's hash suffix differs from this cluster's")
        ring.save(self.ring_path)
        self._mtime = None
        self.reload()
        return True

    def client(self, node: str) -> httpx.AsyncClient:
        client = self.clients.get(node)
        if client is not None:
            return client
        dev = next((d for d in self._ring.devs.values() if d.node == node), None)
        if dev is not None and dev.url:
            client = httpx.AsyncClient(base_url=dev.url.rstrip("/"), timeout=TIMEOUT)
        elif self.local_app is not None:
            app = self.local_apps.get(node)
            if app is None:
                app = self.local_apps[node] = self.local_app(node)
            client = httpx.AsyncClient(
                transport=StreamingASGITransport(app), base_url=f"http://{node}", timeout=TIMEOUT
            )
        else:
            raise LookupError(f"storage node {node!r} has no URL in the ring")
        self.clients[node] = client
        return client

    def local_nodes(self) -> list[str]:
        """Nodes of the ring that run in this process."""
        if self.local_app is None:
            return []
        return sorted({d.node for d in self.ring.devs.values() if not d.url})

    def primaries(self, part: int) -> list[Device]:
        return self.ring.nodes(part)

    async def aclose(self) -> None:
        clients, self.clients = self.clients, {}
        for client in clients.values():
            await client.aclose()


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
