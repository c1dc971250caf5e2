"""Durability under load on three storage-node processes (issue 7): a node SIGKILLed by PID in the
middle of 500 concurrent writes loses no acknowledged write.  In e2e rather than functional for its
run time (about 1-2 min on a loaded 2-core machine); it needs no root."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.functional.test_object_store_durability import _container, durable_cloud


def test_node_killed_during_500_concurrent_writes_loses_no_acknowledged_write(tmp_path):
    """Three nodes, three replicas, 20 writers: SIGKILL one node by PID after 100 of the 500
    writes have been answered.  Every write answered 201 reads back with its ETag, both while the
    node is down and after it came back (the restarted node may miss objects: reads go on to a
    good replica and the replicator repairs it)."""
    with durable_cloud(tmp_path, count=3) as (nodes, _cloud, client, _account):
        c = _container(client)
        total, kill_after = 500, 100
        answered = 0
        lock = threading.Lock()
        killed = threading.Event()

        def write(i: int) -> tuple[str, int, str, str]:
            nonlocal answered
            name = f"w{i:03d}"
            body = f"write {i} ".encode() * (1 + i % 50)
            try:
                resp = client.put(f"/{c}/{name}", content=body)
                status, etag = resp.status_code, resp.headers.get("etag", "")
            except httpx.HTTPError:
                status, etag = 0, ""
            with lock:
                answered += 1
                fire = answered == kill_after
            if fire:
                nodes.kill("node1")
                killed.set()
            return name, status, etag, hashlib.md5(body).hexdigest()

        t0 = time.monotonic()
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(write, range(total)))
        print(f"500 writes in {time.monotonic() - t0:.1f}s")
        assert killed.is_set()
        ok = [(n, etag, md5) for n, status, etag, md5 in results if status == 201]
        others = {status for _n, status, _e, _m in results if status != 201}
        # quorum is 2 of 3: losing one node must not fail writes (a 503 would be allowed, a 500 not).
        # Never a 409 for a new name: a node that answers 409 with the request's own timestamp got
        # the write from a peer's replicator first, and the proxy counts it as stored.
        assert others <= {503}, others
        assert len(ok) >= total - 20, f"only {len(ok)} of {total} writes acknowledged"
        for _n, etag, md5 in ok:
            assert etag.strip('"') == md5

        def check(when: str, name: str, md5: str) -> None:
            resp = client.get(f"/{c}/{name}")
            assert resp.status_code == 200, f"{when}: {name} -> {resp.status_code}"
            assert hashlib.md5(resp.content).hexdigest() == md5, f"{when}: {name} bytes"
            assert resp.headers["etag"].strip('"') == md5, f"{when}: {name} etag"

        def check_all(when: str) -> None:
            with ThreadPoolExecutor(20) as pool:
                list(pool.map(lambda r: check(when, r[0], r[2]), ok))

        t0 = time.monotonic()
        check_all("node1 down")
        nodes.start("node1")
        check_all("node1 back")
        print(f"reads+restart in {time.monotonic() - t0:.1f}s")
        listed = {o["name"] for o in client.get(f"/{c}?format=json&limit=10000").json()}
        assert {n for n, _e, _m in ok} <= listed
