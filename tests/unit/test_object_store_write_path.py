"""The object write path's shortcuts keep its guarantees: group-committed listing rows (all or
nothing, crash-safe, visible once answered), the proxy's info cache (dropped by writes), the
coalesced account totals, and in-process node calls answering as HTTP would."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from kumo.common.config import ObjectStoreSettings
from kumo.object_store.app import make_cluster
from kumo.object_store.node.brokers import ContainerBroker
from kumo.object_store.node.updates import GroupCommit
from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.pipeline import build_pipeline
from kumo.object_store.proxy.types import Handler, Req
from kumo.object_store.ring import RingBuilder

A = "AUTH_test"


def _container(tmp_path) -> ContainerBroker:  # noqa: ANN001
    b = ContainerBroker(tmp_path / "c.db")
    b.create("a/c", "1")
    return b


def _rows(broker: ContainerBroker) -> list[str]:
    return [r["name"] for r in broker.listing(limit=1000)]


# ---- group commit --------------------------------------------------------------------------------


def test_group_commit_batches_concurrent_writers_and_answers_after_commit(tmp_path):
    broker = _container(tmp_path)
    batches: list[int] = []

    def apply(path, rows):  # noqa: ANN001, ANN202
        batches.append(len(rows))
        return ContainerBroker(path).apply_updates(rows)

    gc = GroupCommit(apply)

    async def writer(i: int) -> None:
        info = await gc.submit(broker.path, (f"o{i:03d}", f"2.{i:05d}", 10, "text/plain", "e", 0))
        assert info is not None
        # answered only after the commit: this writer's row is in the DB
        assert f"o{i:03d}" in _rows(ContainerBroker(broker.path))

    async def run() -> None:
        await asyncio.gather(*(writer(i) for i in range(60)))

    asyncio.run(run())
    assert sum(batches) == 60
    assert len(batches) < 60  # rows that arrived during a commit went together into the next one
    info = broker.info()
    assert info is not None and (info.object_count, info.bytes_used) == (60, 600)


def test_group_commit_failed_batch_rolls_back_and_fails_only_the_bad_row(tmp_path):
    broker = _container(tmp_path)
    broker.put_object("bad", "1", 1, "t", "e")
    batches: list[list[str]] = []

    def apply(path, rows):  # noqa: ANN001, ANN202
        batches.append([r[0] for r in rows])
        return ContainerBroker(path).apply_updates(rows)

    gc = GroupCommit(apply)

    async def run() -> list[object]:
        rows = [
            ("a", "2", 1, "t", "e", 0),
            ("bad", "not-a-timestamp", 1, "t", "e", 0),
            ("c", "2", 1, "t", "e", 0),
        ]
        return await asyncio.gather(*(gc.submit(broker.path, r) for r in rows), return_exceptions=True)

    results = asyncio.run(run())
    assert batches[0] == ["a", "bad", "c"]  # tried together, rolled back, then one by one
    assert isinstance(results[1], ValueError)
    assert results[0] is not None and not isinstance(results[0], Exception)
    assert results[2] is not None and not isinstance(results[2], Exception)
    assert _rows(broker) == ["a", "bad", "c"]
    info = broker.info()
    assert info is not None and (info.object_count, info.bytes_used) == (3, 3)


def test_group_commit_to_a_missing_or_deleted_container_is_refused(tmp_path):
    gc = GroupCommit(lambda path, rows: ContainerBroker(path).apply_updates(rows))
    assert asyncio.run(gc.submit(tmp_path / "none.db", ("o", "2", 1, "t", "e", 0))) is None
    broker = _container(tmp_path)
    broker.mark_deleted("5")
    assert asyncio.run(gc.submit(broker.path, ("o", "6", 1, "t", "e", 0))) is None
    assert broker.listing(limit=10) == []


def test_killed_in_the_middle_of_a_batch_leaves_the_db_as_before(tmp_path):
    """A process that dies inside a group commit (after some rows of the batch) loses the whole
    batch, none of whose writers had an answer, and the DB opens clean with the earlier rows."""
    broker = _container(tmp_path)
    broker.put_object("before", "2", 5, "t", "e")
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from kumo.object_store.node import brokers

        calls = []
        real = brokers.ContainerBroker._upsert_in

        def dying(conn, *args):
            calls.append(1)
            if len(calls) == 3:
                os._exit(9)
            return real(conn, *args)

        brokers.ContainerBroker._upsert_in = staticmethod(dying)
        rows = [(f"o{{i}}", "3", 1, "t", "e", 0) for i in range(5)]
        brokers.ContainerBroker(Path({str(broker.path)!r})).apply_updates(rows)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=False)
    assert proc.returncode == 9, proc.stderr
    after = ContainerBroker(broker.path)
    assert after.check_integrity() is None
    assert _rows(after) == ["before"]
    info = after.info()
    assert info is not None and (info.object_count, info.bytes_used) == (1, 5)
    after.apply_updates([("o1", "4", 1, "t", "e", 0)])  # and it takes writes again
    assert _rows(after) == ["before", "o1"]


# ---- proxy and in-process nodes ------------------------------------------------------------------


def _proxy(tmp_path) -> tuple[Handler, Backend]:  # noqa: ANN001
    """The whole proxy pipeline (quotas, versioning, ...) over one in-process node."""
    b = RingBuilder(part_power=4, replicas=1)
    b.hash_suffix = "sfx"
    b.add_dev("node0", "d1", zone=1)
    b.rebalance()
    b.get_ring().save(tmp_path / "object.ring.gz")
    backend = Backend(make_cluster(tmp_path, ObjectStoreSettings(run_daemons=False)))
    return build_pipeline(backend)[0], backend


def _req(method: str, c: str | None = None, o: str | None = None, body=None, **headers: str) -> Req:  # noqa: ANN001
    return Req(method, A, c, o, headers=dict(headers), body=body, environ={"authorized": True})


async def _text(resp) -> bytes:  # noqa: ANN001
    if isinstance(resp.body, bytes):
        return resp.body
    return b"".join([chunk async for chunk in resp.body])


def test_put_then_listing_head_and_account_totals_right_away(tmp_path):
    proxy, backend = _proxy(tmp_path)

    async def run() -> None:
        try:
            assert (await proxy(_req("PUT", "c"))).status == 201

            async def put(i: int) -> None:
                body = f"body {i}".encode()
                resp = await proxy(_req("PUT", "c", f"o{i:02d}", body))
                assert resp.status == 201
                assert resp.headers["etag"] == hashlib.md5(body).hexdigest()

            await asyncio.gather(*(put(i) for i in range(25)))
            listing = await proxy(_req("GET", "c"))
            names = (await _text(listing)).decode().split()
            assert names == [f"o{i:02d}" for i in range(25)]
            head = await proxy(_req("HEAD", "c", "o07"))
            assert head.status == 200 and head.headers["content-length"] == str(len(b"body 7"))
            get = await proxy(_req("GET", "c", "o07"))
            assert await _text(get) == b"body 7"
            acct = await proxy(_req("HEAD"))
            assert acct.headers["x-account-object-count"] == "25"
            assert acct.headers["x-account-bytes-used"] == str(sum(len(f"body {i}") for i in range(25)))
            bad = await proxy(_req("PUT", "c", "bad", b"abc", etag="0" * 32))
            assert bad.status == 422
            short = await proxy(_req("PUT", "c", "short", _chunks([b"ab"]), **{"content-length": "5"}))
            assert short.status == 499
            assert (await proxy(_req("HEAD", "c", "bad"))).status == 404
        finally:
            await backend.cluster.aclose()

    asyncio.run(run())


async def _chunks(parts: list[bytes]):  # noqa: ANN202
    for p in parts:
        yield p


def test_container_settings_changed_through_the_proxy_apply_to_the_next_object_write(tmp_path):
    proxy, backend = _proxy(tmp_path)

    async def run() -> None:
        try:
            assert (await proxy(_req("PUT", "c"))).status == 201
            assert (await proxy(_req("PUT", "c", "o1", b"12345"))).status == 201  # info now cached
            post = await proxy(_req("POST", "c", **{"x-container-meta-quota-count": "2"}))
            assert post.status == 204
            assert (await proxy(_req("PUT", "c", "o2", b"x"))).status == 201
            assert (await proxy(_req("PUT", "c", "o3", b"x"))).status == 413  # quota seen at once
            assert (await proxy(_req("DELETE", "c", "o1"))).status == 204
            assert (await proxy(_req("DELETE", "c", "o2"))).status == 204
            assert (await proxy(_req("DELETE", "c"))).status == 204
            assert (await proxy(_req("PUT", "c", "o4", b"x"))).status == 404  # deletion seen at once
        finally:
            await backend.cluster.aclose()

    asyncio.run(run())


def test_info_cache_keeps_found_answers_briefly_and_forgets_on_write(tmp_path, monkeypatch):
    proxy, backend = _proxy(tmp_path)
    calls: list[tuple[str, ...]] = []
    real_first = backend.first

    async def first(server, names, method, *args, **kwargs):  # noqa: ANN001, ANN202
        calls.append((server, *names, method))
        return await real_first(server, names, method, *args, **kwargs)

    monkeypatch.setattr(backend, "first", first)

    async def run() -> None:
        try:
            assert (await backend.info("container", (A, "c"))).status == 404
            assert (await backend.info("container", (A, "c"))).status == 404  # a 404 is not kept
            assert len(calls) == 2
            assert (await proxy(_req("PUT", "c"))).status == 201
            calls.clear()
            for _ in range(3):
                assert (await backend.info("container", (A, "c"))).status == 204
            assert len(calls) == 1
            assert (await backend.info("container", (A, "c"), fresh=True)).status == 204
            assert len(calls) == 2
            await proxy(_req("POST", "c", **{"x-container-meta-k": "v"}))
            n = len(calls)
            resp = await backend.info("container", (A, "c"))
            assert resp.headers.get("x-container-meta-k") == "v" and len(calls) == n + 1
            later = time.monotonic() + backend.info_cache.ttl + 1
            backend.info_cache.clock = lambda: later  # the entry expired
            await backend.info("container", (A, "c"))
            await backend.info("container", (A, "c"))
            assert len(calls) == n + 2  # fetched again once, then kept again
        finally:
            await backend.cluster.aclose()

    asyncio.run(run())


def test_in_process_node_answers_like_over_http(tmp_path):
    """The direct call and the HTTP transport to the same node give the same statuses, headers
    and bodies (object PUT, HEAD, GET, ranged GET, container GET, errors)."""
    _, backend = _proxy(tmp_path)
    cluster = backend.cluster
    dev = next(iter(cluster.ring.devs.values()))

    async def both(server, names, method, headers=None, query=None, content=b""):  # noqa: ANN001, ANN202
        part = backend.ring.partition(
            *names[: 3 if server == "object" else 2 if server == "container" else 1]
        )
        local = await backend._send_local(
            backend._local_node(dev), dev, server, part, names, method, headers, query, content, False
        )
        client = cluster.client(dev.node)
        resp = await client.request(method, backend._url(dev, server, part, names), headers=headers,
                                    params=query, content=content)  # fmt: skip
        assert local is not None
        assert local.status == resp.status_code
        skip = ("date", "server", "x-backend-timestamp", "last-modified", "x-timestamp", "x-put-timestamp")
        theirs = {k.lower(): v for k, v in resp.headers.items() if k.lower() not in skip}
        ours = {k: v for k, v in local.headers.items() if k not in skip}
        assert ours == theirs
        assert local.body == resp.content
        return local

    async def run() -> None:
        try:
            node = backend._local_node(dev)

            async def write(server, names, headers, body=b""):  # noqa: ANN001, ANN202 - writes once, here
                part = backend.ring.partition(*names[:3])
                resp = await backend._send_local(
                    node, dev, server, part, names, "PUT", headers, None, body, False
                )
                assert resp is not None and resp.status in (201, 202)

            await write("account", (A,), {"x-timestamp": "1700000000.00000"})
            await write("container", (A, "c"), {"x-timestamp": "1700000000.00001"})
            put = {"x-timestamp": "1700000001.00000", "content-length": "10", "content-type": "a/b",
                   **backend.listing_targets((A, "c", "o"))[0]}  # fmt: skip
            await write("object", (A, "c", "o"), put, b"0123456789")
            await both("object", (A, "c", "o"), "HEAD")
            await both("object", (A, "c", "o"), "GET")
            await both("object", (A, "c", "o"), "GET", {"range": "bytes=2-4"})
            await both("object", (A, "c", "o"), "GET", {"range": "bytes=50-60"})
            await both("object", (A, "c", "nothing"), "GET")
            await both("container", (A, "c"), "GET", query={"format": "json", "prefix": "o"})
            await both("container", (A, "c"), "HEAD")
            listing = await both("container", (A, "c"), "GET", query={"limit": "5"})
            assert [r["name"] for r in json.loads(listing.body)] == ["o"]
        finally:
            await cluster.aclose()

    asyncio.run(run())


@pytest.mark.parametrize("size", [4096, 300 * 1024])
def test_object_put_small_and_streamed_bodies_are_durable_files(tmp_path, size):
    proxy, backend = _proxy(tmp_path)
    body = os.urandom(size)

    async def run() -> None:
        try:
            assert (await proxy(_req("PUT", "c"))).status == 201
            resp = await proxy(
                _req(
                    "PUT",
                    "c",
                    "o",
                    _chunks([body[: size // 2], body[size // 2 :]]),
                    **{"content-length": str(size)},
                )  # fmt: skip
            )
            assert resp.status == 201
            assert await _text(await proxy(_req("GET", "c", "o"))) == body
        finally:
            await backend.cluster.aclose()

    asyncio.run(run())
    data = [p for p in (tmp_path / "node0" / "d1" / "objects").rglob("*.data")]
    assert len(data) == 1 and data[0].read_bytes() == body
    meta = json.loads(data[0].with_name(data[0].name + ".json").read_text())
    assert meta["etag"] == hashlib.md5(body).hexdigest() and meta["content-length"] == str(size)
    assert not list((tmp_path / "node0" / "d1" / "tmp").iterdir())  # nothing left half-written


def test_info_cache_does_not_keep_a_lookup_that_overlapped_a_write(tmp_path, monkeypatch):
    proxy, backend = _proxy(tmp_path)
    real_first = backend.first
    gate = asyncio.Event()
    slow = [False]

    async def first(server, names, method, *args, **kwargs):  # noqa: ANN001, ANN202
        resp = await real_first(server, names, method, *args, **kwargs)
        if slow[0]:
            slow[0] = False
            await gate.wait()  # the answer is read, then a write happens before it is kept
        return resp

    monkeypatch.setattr(backend, "first", first)

    async def run() -> None:
        try:
            assert (await proxy(_req("PUT", "c"))).status == 201
            slow[0] = True
            lookup = asyncio.ensure_future(backend.info("container", (A, "c")))
            await asyncio.sleep(0.05)
            assert (await proxy(_req("POST", "c", **{"x-container-meta-k": "new"}))).status == 204
            gate.set()
            old = await lookup
            assert old.headers.get("x-container-meta-k") is None  # what it read before the write
            assert (await backend.info("container", (A, "c"))).headers.get("x-container-meta-k") == "new"
        finally:
            await backend.cluster.aclose()

    asyncio.run(run())
