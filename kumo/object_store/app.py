"""Build the object store: the ring, the in-process storage nodes, their daemons and the proxy app."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from kumo.common.asgi import create_service_app
from kumo.common.asgi.faults import plain
from kumo.common.config import ObjectStoreSettings
from kumo.common.service import Runtime
from kumo.object_store.cluster import Cluster
from kumo.object_store.daemons import NodeDaemons
from kumo.object_store.node.app import create_node_app
from kumo.object_store.node_server import ensure_logging
from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.entry import build_routes
from kumo.object_store.proxy.pipeline import build_pipeline
from kumo.object_store.ring import Ring, RingBuilder
from kumo.object_store.sync_realms import SyncRealms
from kumo.object_store.sync_realms import load as load_sync_realms

log = logging.getLogger("kumo.object_store")

RING_FILE = "object.ring.gz"
BUILDER_FILE = "object.builder.json"


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


def node_count(runtime: Runtime) -> int:
    """``object_store.nodes`` (KUMO_OBJECT_STORE__NODES, ``kumo up --object-nodes``); the older
    KUMO_OBJECT_NODES variable still counts when the setting is left at its default."""
    nodes = runtime.settings.object_store.nodes
    legacy = runtime.extras.get("object_nodes") or os.environ.get("KUMO_OBJECT_NODES")
    if nodes == 1 and legacy:
        nodes = int(legacy)
    return max(1, nodes)


def load_ring(runtime: Runtime) -> Ring:
    path = store_dir(runtime) / RING_FILE
    if not path.exists():
        default_ring(node_count(runtime)).save(path)
    return Ring.load(path)


def prepare(runtime: Runtime) -> None:
    store_dir(runtime).mkdir(parents=True, exist_ok=True, mode=0o700)
    ring = load_ring(runtime)
    nodes = len({d.node for d in ring.devs.values()})
    if nodes != node_count(runtime) and not (store_dir(runtime) / BUILDER_FILE).exists():
        log.warning(
            "the object ring has %d node(s), the settings ask for %d: the existing ring is kept "
            "(change it with `kumo object-store ring ...`)",
            nodes,
            node_count(runtime),
        )


def make_cluster(root: Path, settings: ObjectStoreSettings) -> Cluster:
    """The cluster view of this process: nodes without a URL in the ring run in-process under ``root``."""
    holder: dict[str, Cluster] = {}

    def local_app(node: str) -> Any:
        cluster = holder["cluster"]
        return create_node_app(
            root / node, cluster.ring.hash_suffix, cluster=cluster, reclaim_age=settings.reclaim_age
        )

    cluster = Cluster(root / RING_FILE, local_app=local_app, check_interval=settings.ring_check_interval)
    holder["cluster"] = cluster
    return cluster


@contextlib.asynccontextmanager
async def run_daemons(
    root: Path, cluster: Cluster, settings: ObjectStoreSettings, realms: SyncRealms | None = None
) -> AsyncIterator[dict[str, NodeDaemons]]:
    """Run the daemons of the in-process nodes, in one process only (a lock file picks it among
    workers); nodes that a new ring adds get theirs when the ring is reloaded."""
    daemons: dict[str, NodeDaemons] = {}
    lock_fh = None
    watcher: asyncio.Task[None] | None = None
    if settings.run_daemons and cluster.local_nodes():
        lock_fh = open(root / "daemons.lock", "a")  # noqa: SIM115 - closed below
        try:
            fcntl.flock(lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock_fh.close()
            lock_fh = None

    def start_new() -> None:
        for node in cluster.local_nodes():
            if node not in daemons:
                d = daemons[node] = NodeDaemons(node, root / node, cluster, settings, realms)
                d.start()

    async def watch() -> None:
        while True:
            await asyncio.sleep(settings.ring_check_interval)
            start_new()

    if lock_fh is not None:
        start_new()
        watcher = asyncio.create_task(watch(), name="object-store-daemons")
    try:
        yield daemons
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        for d in daemons.values():
            await d.stop()
        if lock_fh is not None:
            lock_fh.close()


def create_app(runtime: Runtime) -> Any:
    settings = runtime.settings.object_store
    load_ring(runtime)
    root = store_dir(runtime)
    cluster = make_cluster(root, settings)
    backend = Backend(cluster)
    realms = load_sync_realms(runtime.settings)
    pipeline, info = build_pipeline(backend, realms)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            ensure_logging(runtime.settings.log_level)
            async with run_daemons(root, cluster, settings, realms):
                yield
        finally:
            await cluster.aclose()

    return create_service_app(
        api=build_routes(pipeline, info),
        renderer=plain,
        validator=runtime.token_validator(),
        lifespan=lifespan,
        auth_uri=runtime.identity_url,
        state={"backend": backend, "cluster": cluster},
    )
