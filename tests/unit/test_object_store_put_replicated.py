"""A PUT whose replicas a peer's replicator delivered first: the nodes answer 409 with the
request's own timestamp; the proxy counts that as stored (issue 7's 409s under load)."""

from __future__ import annotations

import asyncio
import hashlib
import json

from kumo.common.config import ObjectStoreSettings
from kumo.object_store.app import make_cluster
from kumo.object_store.node.diskfile import ObjectDir
from kumo.object_store.proxy import core
from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.core import Proxy
from kumo.object_store.proxy.types import Req
from kumo.object_store.ring import RingBuilder
from kumo.object_store.utils import hash_path, now_ts

A, C = "AUTH_test", "c"


def _cloud(tmp_path):  # noqa: ANN001, ANN202
    b = RingBuilder(part_power=4, replicas=3)
    b.hash_suffix = "sfx"
    b.add_dev("node0", "d1", zone=1, url="http://127.0.0.1:9")  # nothing listens: a dead node
    b.add_dev("node1", "d1", zone=2)
    b.add_dev("node2", "d1", zone=3)
    b.rebalance()
    ring = b.get_ring()
    ring.save(tmp_path / "object.ring.gz")
    cluster = make_cluster(tmp_path, ObjectStoreSettings(run_daemons=False))
    return ring, cluster, Proxy(Backend(cluster))


def _req(method: str, obj: str | None = None, body: bytes | None = None, **query: str) -> Req:
    return Req(method, A, C, obj, body=body, query=dict(query), environ={"authorized": True})


def _replicated(tmp_path, ring, node: str, name: str, body: bytes, ts: str) -> None:  # noqa: ANN001
    """What a peer's replicator leaves: the committed object with the writer's timestamp."""
    part = ring.partition(A, C, name)
    objdir = ObjectDir(tmp_path / node / "d1", part, hash_path(A, C, name, suffix=ring.hash_suffix))
    writer = objdir.writer()
    writer.write(body)
    writer.commit({"name": f"/{A}/{C}/{name}", "x-timestamp": ts, "content-length": str(len(body)),
                   "etag": hashlib.md5(body).hexdigest(), "content-type": "text/plain"})  # fmt: skip


def test_put_already_replicated_with_same_timestamp_is_201_and_listed(tmp_path, monkeypatch):
    ring, cluster, proxy = _cloud(tmp_path)

    async def run() -> None:
        try:
            assert (await proxy(_req("PUT"))).status == 201
            body, ts = b"written once", now_ts()
            for node in ("node1", "node2"):
                _replicated(tmp_path, ring, node, "o", body, ts)
            monkeypatch.setattr(core, "now_ts", lambda: ts)
            resp = await proxy(_req("PUT", "o", body))
            monkeypatch.undo()
            assert resp.status == 201
            assert resp.headers["etag"] == hashlib.md5(body).hexdigest()
            listing = await proxy(_req("GET", format="json"))
            assert [r["name"] for r in json.loads(listing.body)] == ["o"]
            # an older timestamp is still a conflict, never counted as stored
            older = f"{float(ts) - 10:016.5f}"
            monkeypatch.setattr(core, "now_ts", lambda: older)
            assert (await proxy(_req("PUT", "o", b"stale"))).status == 409
        finally:
            monkeypatch.undo()
            await cluster.aclose()

    asyncio.run(run())
