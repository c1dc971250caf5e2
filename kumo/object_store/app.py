"""Build the object store: the ring, the in-process storage nodes and the proxy app."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from kumo.common.asgi import create_service_app
from kumo.common.asgi.faults import plain
from kumo.common.service import Runtime
from kumo.object_store.node.app import create_node_app
from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.entry import build_routes
from kumo.object_store.proxy.pipeline import build_pipeline
from kumo.object_store.ring import Ring, RingBuilder
from kumo.object_store.transport import StreamingASGITransport

RING_FILE = "object.ring.gz"


def store_dir(runtime: Runtime) -> Path:
    return runtime.settings.data_dir / "object-store"


def default_ring(nodes: int) -> Ring:
    """N nodes with one device each, one zone per node, min(N, 3) replicas."""
    builder = RingBuilder(part_power=10, replicas=min(3, nodes))
    builder.hash_suffix = secrets.token_hex(8)
    for i in range(nodes):
        builder.add_dev(f"node{i}", "d1", zone=i + 1)
    builder.rebalance()
    return builder.get_ring()


def load_ring(runtime: Runtime) -> Ring:
    path = store_dir(runtime) / RING_FILE
    if not path.exists():
        nodes = int(runtime.extras.get("object_nodes") or os.environ.get("KUMO_OBJECT_NODES") or 1)
        default_ring(max(1, nodes)).save(path)
    return Ring.load(path)


def prepare(runtime: Runtime) -> None:
    store_dir(runtime).mkdir(parents=True, exist_ok=True, mode=0o700)
    load_ring(runtime)


def create_app(runtime: Runtime) -> Any:
    ring = load_ring(runtime)
    root = store_dir(runtime)
    clients: dict[str, httpx.AsyncClient] = {}
    for dev in ring.devs.values():
        if dev.node in clients:
            continue
        if dev.url:
            clients[dev.node] = httpx.AsyncClient(base_url=dev.url, timeout=60.0)
        else:
            node_app = create_node_app(root / dev.node, ring.hash_suffix)
            clients[dev.node] = httpx.AsyncClient(
                transport=StreamingASGITransport(node_app), base_url=f"http://{dev.node}", timeout=60.0
            )
    backend = Backend(ring, clients)
    pipeline, info = build_pipeline(backend)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for client in clients.values():
                await client.aclose()

    return create_service_app(
        api=build_routes(pipeline, info),
        renderer=plain,
        validator=runtime.token_validator(),
        lifespan=lifespan,
        auth_uri=runtime.identity_url,
        state={"backend": backend, "ring": ring},
    )
