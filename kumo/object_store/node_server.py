"""One storage node served on its own port, with its daemons (split deployments, tests).

``storage_node(data_dir, name, settings)`` builds the node app for ``<data_dir>/object-store/<name>``
with the ring file ``<data_dir>/object-store/object.ring.gz`` and runs the replicator, auditor,
updater and expirer of that node in the app's lifespan.  Peers are reached by the URLs in the ring.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette

from kumo.common.config import ObjectStoreSettings
from kumo.object_store.cluster import Cluster
from kumo.object_store.daemons import NodeDaemons
from kumo.object_store.node.app import create_node_app
from kumo.object_store.sync_realms import SyncRealms

RING_FILE = "object.ring.gz"


def storage_node_app(
    data_dir: Path, name: str, settings: ObjectStoreSettings, realms: SyncRealms | None = None
) -> Starlette:
    """The ASGI app of node ``name``; its lifespan runs the node's daemons (container sync too when
    given the sync realms)."""
    store = data_dir / "object-store"
    ring_file = store / RING_FILE
    if not ring_file.is_file():
        raise FileNotFoundError(
            f"no object ring in {ring_file} (kumo object-store ring ... or copy it there)"
        )
    root = store / name
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    cluster = Cluster(ring_file, check_interval=settings.ring_check_interval)
    app = create_node_app(root, cluster.ring.hash_suffix, cluster=cluster, reclaim_age=settings.reclaim_age)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        daemons = NodeDaemons(name, root, cluster, settings, realms)
        if settings.run_daemons:
            daemons.start()
        try:
            yield
        finally:
            await daemons.stop()
            await cluster.aclose()

    app.router.lifespan_context = lifespan
    app.state.cluster = cluster
    return app


def ensure_logging(level: str) -> None:
    """Pass summaries go to stderr when nothing else configured logging for kumo.object_store."""
    logger = logging.getLogger("kumo.object_store")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level.upper())
