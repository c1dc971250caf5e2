"""Object-store durability on three storage-node processes: replication, auditing, updater, expirer.

The ring is built with ``kumo object-store ring ...``; each node is its own
``kumo object-store node`` process on a loopback port (stopped by PID to simulate a failure),
and a ``kumo up`` proxies to them.  Daemon intervals are a fraction of a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from kumo.object_store.ring import Ring
from kumo.object_store.utils import hash_path
from tests.support import KumoCloud, clean_env, free_port, unique

FAST = {
    "KUMO_OBJECT_STORE__REPLICATOR_INTERVAL": "0.3",
    "KUMO_OBJECT_STORE__AUDITOR_INTERVAL": "0.3",
    "KUMO_OBJECT_STORE__UPDATER_INTERVAL": "0.3",
    "KUMO_OBJECT_STORE__EXPIRER_INTERVAL": "0.3",
    "KUMO_OBJECT_STORE__RING_CHECK_INTERVAL": "0.3",
    "KUMO_OBJECT_STORE__AUDITOR_FILES_PER_SECOND": "10000",
    "KUMO_OBJECT_STORE__AUDITOR_BYTES_PER_SECOND": "1000000000",
}


def kumo(*args: str, data_dir: Path) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "kumo", "object-store", *args, "--data-dir", str(data_dir)],
        capture_output=True, text=True, env=clean_env(), timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, f"kumo object-store {' '.join(args)}: {res.stdout}{res.stderr}"
    return res.stdout


def wait_for(what: str, check: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


class StorageNodes:
    """Storage-node processes of one ring, started and stopped by PID."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    @property
    def store(self) -> Path:
        return self.data_dir / "object-store"

    def ring(self) -> Ring:
        return Ring.load(self.store / "object.ring.gz")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str) -> None:
        assert name not in self.procs
        self.logs[name] = self.data_dir.parent / f"{self.data_dir.name}-{name}.log"
        with open(self.logs[name], "ab") as log:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "kumo", "object-store", "node", "--name", name, "--data-dir",
                 str(self.data_dir), "--port", str(self.ports[name])],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=clean_env({**FAST, "PYTHONUNBUFFERED": "1"}), start_new_session=True,
            )  # fmt: skip

        def up() -> bool:
            assert self.procs[name].poll() is None, f"node {name} exited:\n{self.logs[name].read_text()}"
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url(name)}/ring", timeout=1).status_code == 200
            return False

        wait_for(f"node {name}", up, 30)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)

    # -- what is on disk ------------------------------------------------------------------
    def object_state(self, name: str, path: tuple[str, str, str]) -> tuple[str, Path] | None:
        """("data"|"ts", file) of an object's newest file on node ``name``, or None."""
        ring = self.ring()
        part = ring.partition(*path)
        h = hash_path(*path, suffix=ring.hash_suffix)
        d = self.store / name / "d1" / "objects" / str(part) / h[-3:] / h
        with contextlib.suppress(FileNotFoundError):
            for f in sorted(os.listdir(d), reverse=True):
                if f.endswith(".ts"):
                    return "ts", d / f
                if f.endswith(".data"):
                    return "data", d / f
        return None

    def listing(self, name: str, account: str, container: str) -> list[str] | None:
        """The object names in node ``name``'s copy of a container DB (None: no copy)."""
        ring = self.ring()
        part = ring.partition(account, container)
        resp = httpx.get(f"{self.url(name)}/container/d1/{part}/{account}/{container}", timeout=5)
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        return [row["name"] for row in resp.json()]

    def async_pendings(self) -> list[Path]:
        return sorted(self.store.glob("node*/d1/async_pending/*/*"))


def _build_ring(data_dir: Path, nodes: StorageNodes, count: int, part_power: int = 6) -> None:
    kumo("ring", "create", "--part-power", str(part_power), "--replicas", "3", data_dir=data_dir)
    for i in range(count):
        name = f"node{i}"
        nodes.ports[name] = free_port()
        kumo("ring", "add", name, "d1", "--zone", str(i + 1), "--url", nodes.url(name), data_dir=data_dir)
    out = kumo("ring", "rebalance", data_dir=data_dir)
    assert "ring version 1" in out


@contextlib.contextmanager
def durable_cloud(
    tmp_path: Path, count: int = 3
) -> Iterator[tuple[StorageNodes, KumoCloud, httpx.Client, str]]:
    data_dir = tmp_path / "kd"
    data_dir.mkdir()
    nodes = StorageNodes(data_dir)
    cloud = KumoCloud(data_dir, env=FAST)
    try:
        _build_ring(data_dir, nodes, count)
        for name in nodes.ports:
            nodes.start(name)
        cloud.start()
        token, body = cloud.issue()
        account = f"AUTH_{body['token']['project']['id']}"
        with httpx.Client(
            base_url=f"{cloud.url}/object-store/v1/{account}", headers={"X-Auth-Token": token}, timeout=30
        ) as client:
            yield nodes, cloud, client, account
    finally:
        cloud.stop()
        nodes.stop_all()


@pytest.fixture(scope="module")
def durable(tmp_path_factory: pytest.TempPathFactory):
    # four nodes, three replicas: a node is a primary for some partitions only, and an object
    # replica's listing update often goes to a container replica on another node
    with durable_cloud(tmp_path_factory.mktemp("durable"), count=4) as env:
        yield env


def _container(client: httpx.Client) -> str:
    name = unique("dur")
    assert client.put(f"/{name}").status_code == 201
    return name


def _primaries(nodes: StorageNodes, *path: str) -> list[str]:
    ring = nodes.ring()
    return [d.node for d in ring.nodes(ring.partition(*path))]


def _named_on(nodes: StorageNodes, account: str, container: str, node: str, prefix: str) -> str:
    return next(
        f"{prefix}{i}" for i in range(1000) if node in _primaries(nodes, account, container, f"{prefix}{i}")
    )


def _kind(nodes: StorageNodes, node: str, path: tuple[str, str, str]) -> str:
    state = nodes.object_state(node, path)
    return state[0] if state else ""


def test_node_down_writes_continue_and_replication_catches_up(durable):
    nodes, _cloud, client, account = durable
    c = unique("dur")
    while "node1" not in _primaries(nodes, account, c):
        c = unique("dur")
    assert client.put(f"/{c}").status_code == 201
    keep, new, gone, later = (
        _named_on(nodes, account, c, "node1", p) for p in ("keep", "new", "gone", "later")
    )
    ring = nodes.ring()
    handoff = ring.handoffs(ring.partition(account, c, later))[0].node
    assert client.put(f"/{c}/{keep}", content=b"kept").status_code == 201
    assert client.put(f"/{c}/{gone}", content=b"to delete").status_code == 201
    nodes.kill("node1")
    try:
        # quorum (2 of 3): writes and deletes go on while one node is down
        assert client.put(f"/{c}/{new}", content=b"written while node1 was down").status_code == 201
        assert client.delete(f"/{c}/{gone}").status_code == 204
        assert client.get(f"/{c}/{new}").content == b"written while node1 was down"
        assert client.get(f"/{c}/{gone}").status_code == 404
        assert nodes.object_state("node1", (account, c, new)) is None
        assert _kind(nodes, "node1", (account, c, gone)) == "data"
        # the proxy now knows node1 is down: the next write goes to a handoff node instead
        assert client.put(f"/{c}/{later}", content=b"on a handoff").status_code == 201
        assert _kind(nodes, handoff, (account, c, later)) == "data"
    finally:
        nodes.start("node1")
    # the replicator brings node1 up to date: the new object and the tombstone
    wait_for("node1 to get the new object", lambda: _kind(nodes, "node1", (account, c, new)) == "data")
    wait_for("node1 to get the tombstone", lambda: _kind(nodes, "node1", (account, c, gone)) == "ts")
    # the handoff's copy goes to node1, then leaves the handoff
    wait_for(
        "node1 to get the handoff's object", lambda: _kind(nodes, "node1", (account, c, later)) == "data"
    )
    wait_for("the handoff to drop its copy", lambda: nodes.object_state(handoff, (account, c, later)) is None)
    path = nodes.object_state("node1", (account, c, new))[1]  # type: ignore[index]
    assert path.read_bytes() == b"written while node1 was down"
    # and its copy of the container DB has every row (DB replication)
    wait_for("node1's listing", lambda: nodes.listing("node1", account, c) == sorted([keep, new, later]))


def test_corrupt_object_is_served_from_a_good_replica_then_quarantined_and_restored(durable):
    nodes, _cloud, client, account = durable
    c = _container(client)
    body = os.urandom(2048)
    assert client.put(f"/{c}/obj", content=body).status_code == 201
    holder = _primaries(nodes, account, c, "obj")[0]
    state = nodes.object_state(holder, (account, c, "obj"))
    assert state is not None and state[0] == "data"
    bad = bytearray(state[1].read_bytes())
    bad[100] ^= 0xFF  # same length, different bytes: only the MD5 tells
    state[1].write_bytes(bytes(bad))
    for _ in range(6):  # whichever replica the proxy asks first, the client gets the right bytes
        resp = client.get(f"/{c}/obj")
        assert resp.status_code == 200
        assert hashlib.md5(resp.content).hexdigest() == hashlib.md5(body).hexdigest()
    quarantined = nodes.store / holder / "d1" / "quarantined" / "objects"
    wait_for(
        "the corrupt copy to be quarantined", lambda: quarantined.is_dir() and any(quarantined.iterdir())
    )

    def restored() -> bool:
        s = nodes.object_state(holder, (account, c, "obj"))
        return s is not None and s[0] == "data" and s[1].read_bytes() == body

    wait_for("replication to restore a good copy", restored)
    assert client.get(f"/{c}/obj").content == body


def _pick_object(nodes: StorageNodes, account: str, container: str, down: str) -> str:
    """An object name whose listing update, from a live object node, goes to node ``down``."""
    ring = nodes.ring()
    cdevs = ring.nodes(ring.partition(account, container))
    for i in range(1000):
        name = f"o{i}"
        odevs = ring.nodes(ring.partition(account, container, name))
        if down not in {d.node for d in odevs} and any(cdevs[k].node == down for k in range(len(odevs))):
            return name
    raise AssertionError("no suitable object name")


def test_listing_update_made_while_the_container_node_was_down_arrives_via_the_updater(durable):
    nodes, _cloud, client, account = durable
    c = _container(client)
    owners = _primaries(nodes, account, c)
    wait_for("the container's replicas", lambda: all(nodes.listing(n, account, c) == [] for n in owners))
    down = owners[0]
    obj = _pick_object(nodes, account, c, down)
    before = set(nodes.async_pendings())
    nodes.kill(down)
    try:
        assert client.put(f"/{c}/{obj}", content=b"x").status_code == 201
        pending = set(nodes.async_pendings()) - before
        assert pending, "the object node kept no async pending for the container that was down"
        assert json.loads(next(iter(pending)).read_text())["obj"] == obj
    finally:
        nodes.start(down)
    wait_for("the updater to replay the pending update", lambda: not (set(nodes.async_pendings()) & pending))
    wait_for("the listing of the node that was down", lambda: nodes.listing(down, account, c) == [obj])
    assert client.head(f"/{c}").headers["x-container-object-count"] == "1"


def test_expired_object_leaves_get_and_listings_after_the_expirer_pass(durable):
    nodes, _cloud, client, account = durable
    c = _container(client)
    t0 = time.time()
    assert client.put(f"/{c}/short", content=b"brief", headers={"X-Delete-After": "3"}).status_code == 201
    assert client.put(f"/{c}/long", content=b"stays").status_code == 201
    listed = [o["name"] for o in client.get(f"/{c}?format=json").json()]
    if time.time() - t0 < 2.5:  # (a loaded machine may already be past the expiry)
        assert listed == ["long", "short"]
    time.sleep(max(0.0, t0 + 3.2 - time.time()))
    # nobody GETs the object: the expirer alone removes it from every listing and writes tombstones
    wait_for(
        "the expirer to remove it from every container replica",
        lambda: all(nodes.listing(n, account, c) == ["long"] for n in _primaries(nodes, account, c)),
    )
    assert all(_kind(nodes, n, (account, c, "short")) == "ts" for n in _primaries(nodes, account, c, "short"))
    assert client.get(f"/{c}/short").status_code == 404
    assert [o["name"] for o in client.get(f"/{c}?format=json").json()] == ["long"]


def test_weight_change_and_rebalance_move_partitions_minimally_and_data_follows(tmp_path):
    """All-in-one with three in-process nodes (``object_store.nodes = 3``); a fourth joins by the CLI."""
    data_dir = tmp_path / "kd"
    cloud = KumoCloud(data_dir, env={**FAST, "KUMO_OBJECT_STORE__NODES": "3"})
    nodes = StorageNodes(data_dir)  # for its on-disk helpers: these nodes run inside the cloud
    try:
        cloud.start()
        token, body = cloud.issue()
        account = f"AUTH_{body['token']['project']['id']}"
        client = httpx.Client(
            base_url=f"{cloud.url}/object-store/v1/{account}", headers={"X-Auth-Token": token}, timeout=30
        )
        c = _container(client)
        names = [f"obj{i}" for i in range(16)]
        for n in names:
            r = client.put(f"/{c}/{n}", content=n.encode())
            assert r.status_code == 201, f"PUT {n}: {r.status_code} {r.text}\n{cloud.log()[-6000:]}"
        before = nodes.ring()
        assert sorted({d.node for d in before.devs.values()}) == ["node0", "node1", "node2"]
        # a fourth node joins; rebalance moves about a quarter of the partition replicas
        kumo("ring", "add", "node3", "d1", "--zone", "4", data_dir=data_dir)
        out = kumo("ring", "rebalance", data_dir=data_dir)
        assert "ring version 2" in out
        after = nodes.ring()
        total = after.partition_count * after.replicas
        moved = sum(
            1
            for r in range(after.replicas)
            for p in range(after.partition_count)
            if before.assignment[r][p] != after.assignment[r][p]
        )
        assert 0.2 * total <= moved <= 0.3 * total
        all_nodes = ["node0", "node1", "node2", "node3"]

        def placed() -> bool:  # every object on exactly its new primaries, handoffs gone
            ring = nodes.ring()
            for n in names:
                owners = {d.node for d in ring.nodes(ring.partition(account, c, n))}
                for node in all_nodes:
                    if (_kind(nodes, node, (account, c, n)) == "data") != (node in owners):
                        return False
            return True

        wait_for("data to follow the ring (handoffs pushed and removed)", placed, 40)
        for n in names:
            assert client.get(f"/{c}/{n}").content == n.encode()
        # lowering node3's weight moves only node3's surplus
        kumo("ring", "set-weight", "3", "50", data_dir=data_dir)
        kumo("ring", "rebalance", data_dir=data_dir)
        third = nodes.ring()
        moved = sum(
            1
            for r in range(third.replicas)
            for p in range(third.partition_count)
            if after.assignment[r][p] != third.assignment[r][p]
        )
        held = [sum(1 for row in ring.assignment for d in row if d == 3) for ring in (after, third)]
        assert moved == held[0] - held[1] > 0
        wait_for("data to follow the second rebalance", placed, 40)
        for n in names:
            assert client.get(f"/{c}/{n}").content == n.encode()
        assert [o["name"] for o in client.get(f"/{c}?format=json").json()] == sorted(names)
        client.close()
    finally:
        cloud.stop()
