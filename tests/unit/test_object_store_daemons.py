"""Object-store daemons on three in-process nodes: replicator, auditor, updater, expirer; ring CLI."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from kumo.common.config import ObjectStoreSettings
from kumo.object_store.app import default_ring, make_cluster
from kumo.object_store.cli import app as cli_app
from kumo.object_store.daemons import NodeDaemons
from kumo.object_store.node import partition as P
from kumo.object_store.node.brokers import ContainerBroker
from kumo.object_store.node.diskfile import ObjectDir
from kumo.object_store.ring import RingBuilder
from kumo.object_store.utils import hash_path, normalize_ts, quote_path

A, C = "AUTH_t", "c"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    default_ring(3).save(tmp_path / "object.ring.gz")
    return tmp_path


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def _node_put(cluster, node: str, obj: str, body: bytes, ts: str, extra=None) -> httpx.Response:  # type: ignore[no-untyped-def]
    ring = cluster.ring
    part = ring.partition(A, C, obj)
    return await cluster.client(node).put(
        f"/object/d1/{part}/{quote_path(A, C, obj)}",
        content=body,
        headers={"x-timestamp": ts, "content-type": "text/plain", **(extra or {})},
    )


def _objdir(store: Path, cluster, node: str, obj: str) -> ObjectDir:  # type: ignore[no-untyped-def]
    ring = cluster.ring
    return ObjectDir(
        store / node / "d1", ring.partition(A, C, obj), hash_path(A, C, obj, suffix=ring.hash_suffix)
    )


def _daemons(store: Path, cluster, node: str) -> NodeDaemons:  # type: ignore[no-untyped-def]
    return NodeDaemons(node, store / node, cluster, ObjectStoreSettings(reclaim_age=3600))


def test_replicator_pushes_missing_objects_and_tombstones(store: Path):
    async def main() -> None:
        cluster = make_cluster(store, ObjectStoreSettings())
        ts1, ts2 = normalize_ts(time.time() - 10), normalize_ts(time.time() - 5)
        assert (await _node_put(cluster, "node0", "a", b"alpha", ts1)).status_code == 201
        assert (await _node_put(cluster, "node0", "b", b"beta", ts1)).status_code == 201
        assert (await _node_put(cluster, "node1", "b", b"beta", ts1)).status_code == 201
        await asyncio.to_thread(_objdir(store, cluster, "node0", "b").delete, ts2)
        stats = await _daemons(store, cluster, "node0").replicate_once()
        assert stats.counts["objects pushed"] == 2 and stats.counts["tombstones pushed"] == 2
        for node in ("node1", "node2"):
            obj = _objdir(store, cluster, node, "a").open()
            assert obj is not None and b"".join(obj.read()) == b"alpha"
            assert _objdir(store, cluster, node, "b").newest() == (ts2, "ts")
        again = await _daemons(store, cluster, "node0").replicate_once()
        assert "objects pushed" not in again.counts  # in sync: hashes agree, nothing moves
        await cluster.aclose()

    run(main())


def test_auditor_quarantines_and_replicator_restores(store: Path):
    async def main() -> None:
        cluster = make_cluster(store, ObjectStoreSettings())
        ts = normalize_ts(time.time())
        for node in ("node0", "node1", "node2"):
            assert (await _node_put(cluster, node, "x", b"good bytes", ts)).status_code == 201
        od = _objdir(store, cluster, "node2", "x")
        obj = od.open()
        assert obj is not None
        obj.path.write_bytes(b"evil bytes")  # same size
        stats = await _daemons(store, cluster, "node2").audit_once()
        assert stats.counts.get("quarantined") == 1
        assert od.open() is None and list((store / "node2" / "d1" / "quarantined" / "objects").iterdir())
        await _daemons(store, cluster, "node0").replicate_once()
        restored = od.open()
        assert restored is not None and b"".join(restored.read()) == b"good bytes"
        await cluster.aclose()

    run(main())


def test_updater_replays_async_pending_and_expirer_reaps(store: Path):
    async def main() -> None:
        cluster = make_cluster(store, ObjectStoreSettings())
        ring = cluster.ring
        cpart = ring.partition(A, C)
        ts = normalize_ts(time.time() - 1)
        for node in ("node0", "node1", "node2"):
            resp = await cluster.client(node).put(
                f"/container/d1/{cpart}/{A}/{C}", headers={"x-timestamp": ts}
            )
            assert resp.status_code == 201
        # a listing update aimed at a device that does not answer: kept as an async pending
        target = {"x-container-partition": str(cpart), "x-container-device": "node9/d1"}
        soon = str(int(time.time()) + 1)
        resp = await _node_put(
            cluster, "node0", "o", b"data", normalize_ts(time.time()), {**target, "x-delete-at": soon}
        )
        assert resp.headers["x-backend-container-update"] == "async"
        pending = list((store / "node0" / "d1" / "async_pending").glob("*/*"))
        assert len(pending) == 1 and json.loads(pending[0].read_text())["obj"] == "o"
        stats = await _daemons(store, cluster, "node0").update_once()
        assert stats.counts == {"replayed": 1}
        for node in ("node0", "node1", "node2"):
            rows = ContainerBroker(_db(store, cluster, node)).listing(limit=10)
            assert [r["name"] for r in rows] == ["o"]
        await asyncio.sleep(max(0.0, int(soon) - time.time()) + 0.05)
        stats = await _daemons(store, cluster, "node0").expire_once()
        assert stats.counts == {"expired": 1}
        assert _objdir(store, cluster, "node0", "o").newest()[1] == "ts"  # type: ignore[index]
        for node in ("node0", "node1", "node2"):
            assert ContainerBroker(_db(store, cluster, node)).listing(limit=10) == []
        await cluster.aclose()

    run(main())


def _db(store: Path, cluster, node: str) -> Path:  # type: ignore[no-untyped-def]
    ring = cluster.ring
    h = hash_path(A, C, suffix=ring.hash_suffix)
    return store / node / "d1" / "containers" / str(ring.partition(A, C)) / h[-3:] / h / f"{h}.db"


def test_db_merge_converges_without_ping_pong(tmp_path: Path):
    a, b = ContainerBroker(tmp_path / "a.db"), ContainerBroker(tmp_path / "b.db")
    a.create("AUTH_t/c", "1")
    a.put_object("x", "2", 3, "t", "e1")
    a.put_object("y", "2", 4, "t", "e2")
    a.delete_object("y", "3")
    b.merge_stat(a.stat_dump())
    b.merge_items([list(r[1:]) for r in a.item_rows(-1, 100)])
    assert [r["name"] for r in b.listing(limit=10)] == ["x"]
    assert (b.info().object_count, b.info().bytes_used) == (1, 3)  # type: ignore[union-attr]
    top = b.max_row()
    a.merge_items([list(r[1:]) for r in b.item_rows(-1, 100)])  # sending back changes nothing
    b.merge_items([list(r[1:]) for r in a.item_rows(-1, 100)])
    assert b.max_row() == top
    assert b.check_integrity() is None
    (tmp_path / "bad.db").write_bytes(b"not a database" * 100)
    assert ContainerBroker(tmp_path / "bad.db").check_integrity() is not None


def test_partition_hashes_follow_writes(tmp_path: Path):
    h = "0123456789abcdef0123456789abc123"
    od = ObjectDir(tmp_path, 5, h)
    w = od.writer()
    w.write(b"one")
    w.commit({"x-timestamp": normalize_ts(1), "content-length": "3", "etag": w.md5.hexdigest()})
    part_dir = tmp_path / "objects" / "5"
    first = P.get_hashes(part_dir)
    assert list(first) == ["123"]
    assert P.get_hashes(part_dir) == first  # cached
    od.delete(normalize_ts(2))
    second = P.get_hashes(part_dir)
    assert second["123"] != first["123"]
    assert P.list_suffixes(part_dir, ["123"]) == {h: [normalize_ts(2), "ts", ""]}
    assert P.get_hashes(part_dir, reclaim_age=0.0, full=True) == {}  # an old tombstone is reclaimed


def test_ring_cli_builds_rebalances_and_refuses_bad_input(tmp_path: Path):
    runner = CliRunner()

    def kumo(*args: str) -> tuple[int, str]:
        res = runner.invoke(cli_app, ["ring", *args, "--data-dir", str(tmp_path)])
        return res.exit_code, res.output

    assert kumo("rebalance")[0] == 1  # no ring yet
    assert kumo("create", "--part-power", "8", "--replicas", "3")[0] == 0
    assert kumo("create")[0] == 1  # exists
    for i in range(3):
        assert kumo("add", f"n{i}", "d1", "--zone", str(i + 1))[0] == 0
    code, out = kumo("add", "n0", "d1")
    assert code == 1 and "already in the ring" in out
    code, out = kumo("add", "bad/name", "d1")
    assert code == 1 and "names are" in out
    code, out = kumo("rebalance")
    assert code == 0 and "ring version 1" in out
    assert kumo("add", "n3", "d1", "--zone", "4")[0] == 0
    code, out = kumo("rebalance")
    assert code == 0 and "ring version 2: 192 of 768" in out
    assert kumo("set-weight", "9", "10")[0] == 1
    assert kumo("remove", "3")[0] == 0
    code, out = kumo("show")
    assert code == 0 and "n2" in out and "n3" not in out
    builder = RingBuilder.load(tmp_path / "object-store" / "object.builder.json")
    assert builder.version == 2 and len(builder.devs) == 3


def test_node_replication_endpoints_reject_bad_input_with_400(store: Path):
    import gzip

    async def main() -> None:
        cluster = make_cluster(store, ObjectStoreSettings())
        node = cluster.client("node0")
        h = "a" * 32
        bad = [
            ("PUT", "/ring", {}, b"junk"),
            ("PUT", "/ring", {}, gzip.compress(b"[1]")),
            ("PUT", "/ring", {}, gzip.compress(b"{}")),
            ("POST", "/replicate/object/d1/5/hashes", {}, b"{bad"),
            ("POST", "/replicate/container/d1/5/zz", {}, b"{}"),
            ("POST", f"/replicate/container/d1/5/{h}", {}, b"[]"),
            ("POST", f"/replicate/container/d1/5/{h}", {}, b'{"op": "merge", "stat": {}}'),
            ("POST", f"/replicate/container/d1/5/{h}", {}, b'{"op": "nope"}'),
            ("PUT", f"/replicate/object/d1/5/{h}", {"x-backend-metadata": "{}"}, b""),
            ("PUT", f"/replicate/object/d1/5/{h}", {"x-backend-tombstone": "abc"}, b""),
            ("PUT", f"/replicate/object/d1/x/{h}", {}, b""),
        ]
        for method, path, headers, body in bad:
            resp = await node.request(method, path, headers=headers, content=body)
            assert resp.status_code == 400, (method, path, body, resp.status_code, resp.text)
        assert not list((store / "node0").glob("d1/objects/5/*/*/*.ts"))  # nothing was written
        newer = default_ring(3)
        newer.version = 7
        newer.hash_suffix = cluster.ring.hash_suffix
        resp = await node.put("/ring", content=gzip.compress(json.dumps(newer.to_dict()).encode()))
        assert resp.status_code == 201 and resp.headers["x-ring-version"] == "7"
        assert cluster.ring.version == 7
        await cluster.aclose()

    run(main())
