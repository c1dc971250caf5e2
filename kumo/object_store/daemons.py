"""The background daemons of a storage node: replicator, auditor, updater, expirer.

Each runs as an asyncio task of the process that serves the node (the object service in
all-in-one, ``kumo object-store node`` per node in split mode), one pass every interval, and
logs a one-line summary per pass.  Disk walks run in threads; peers are reached over the
node protocol (``/replicate/...``, ``/container/...``) through the cluster's clients.

- replicator: per partition, compare suffix hashes with the other primaries, push objects and
  tombstones they lack (data with its metadata, or metadata alone), then DB rows since the last
  sync point; a partition this node holds but is no primary for (a handoff) is pushed to its
  primaries and removed.  Newer ring files travel the same way.
- auditor: re-reads objects and checks size and MD5 against the metadata, and asks SQLite to
  check each DB; what is corrupt is quarantined, and replication brings back a good copy.
- updater: replays the container updates kept as async pendings while a container was down,
  then sends the container's totals to the account.
- expirer: deletes this node's copy of objects whose X-Delete-At has passed and removes them
  from the container listing.
- container-sync (when given the sync realms): sends the objects of containers with
  X-Container-Sync-To to their target (kumo/object_store/sync_daemon.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx

from kumo.common.config import ObjectStoreSettings
from kumo.object_store.cluster import Cluster
from kumo.object_store.node import partition as P
from kumo.object_store.node.brokers import AccountBroker, Broker, ContainerBroker
from kumo.object_store.node.diskfile import CHUNK, ObjectDir
from kumo.object_store.node.updates import (
    ListingUpdate,
    async_pendings,
    due_expiring,
    save_async_pending,
    send_update,
)
from kumo.object_store.ring import Device
from kumo.object_store.sync_daemon import ContainerSyncer
from kumo.object_store.sync_realms import SyncRealms
from kumo.object_store.utils import normalize_ts, now_ts, quote_path

log = logging.getLogger("kumo.object_store.daemons")

ROW_BATCH = 1000
FULL_EVERY = 20


@dataclass
class Stats:
    name: str
    started: float = field(default_factory=time.monotonic)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return f"{self.name} pass: {parts or 'nothing to do'} in {time.monotonic() - self.started:.2f}s"


class NodeDaemons:
    def __init__(
        self,
        node: str,
        root: Path,
        cluster: Cluster,
        settings: ObjectStoreSettings,
        realms: SyncRealms | None = None,
    ) -> None:
        self.node = node
        self.root = root  # the node's devices are its subdirectories
        self.cluster = cluster
        self.settings = settings
        self.stop_flag = threading.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.passes: dict[str, int] = {}
        self.last: dict[str, dict[str, int]] = {}
        self.syncer = ContainerSyncer(node, cluster, realms, self.stop_flag) if realms is not None else None

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        loops: list[tuple[str, float, Callable[[], Awaitable[Stats]]]] = [
            ("replicator", s.replicator_interval, self.replicate_once),
            ("auditor", s.auditor_interval, self.audit_once),
            ("updater", s.updater_interval, self.update_once),
            ("expirer", s.expirer_interval, self.expire_once),
        ]
        if self.syncer is not None:
            loops.append(("container-sync", s.container_sync_interval, self.container_sync_once))
        for name, interval, fn in loops:
            self.tasks.append(asyncio.create_task(self._loop(name, interval, fn), name=f"{self.node}-{name}"))

    async def stop(self) -> None:
        self.stop_flag.set()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.tasks = []
        if self.syncer is not None:
            await self.syncer.aclose()

    async def _loop(self, name: str, interval: float, fn: Callable[[], Awaitable[Stats]]) -> None:
        await asyncio.sleep(min(interval, 1.0))
        while not self.stop_flag.is_set():
            try:
                stats = await fn()
            except asyncio.CancelledError:
                raise
            except Exception:  # a pass that fails is logged and the next one tries again
                log.exception("%s %s pass failed", self.node, name)
            else:
                self.passes[name] = self.passes.get(name, 0) + 1
                self.last[name] = dict(stats.counts)
                level = logging.INFO if stats.counts else logging.DEBUG
                log.log(level, "%s %s", self.node, stats.summary())
            await asyncio.sleep(interval)

    def devices(self) -> list[Path]:
        try:
            return sorted(p for p in self.root.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []

    def _is_me(self, dev: Device, device: str) -> bool:
        return dev.node == self.node and dev.device == device

    async def _call(
        self, dev: Device, method: str, path: str, *, json_body: Any = None, **kw: Any
    ) -> httpx.Response | None:
        try:
            client = self.cluster.client(dev.node)
            if json_body is not None:
                kw["content"] = json.dumps(json_body).encode()
                kw.setdefault("headers", {})["content-type"] = "application/json"
            resp = await client.request(method, path, **kw)
        except (httpx.HTTPError, LookupError):
            return None
        return resp

    # ---- replicator ----------------------------------------------------------------------------

    async def replicate_once(self) -> Stats:
        stats = Stats("replicator")
        ring = self.cluster.ring
        sem = asyncio.Semaphore(self.settings.replicator_concurrency)

        async def one(fn: Callable[..., Awaitable[None]], *args: Any) -> None:
            async with sem:
                if not self.stop_flag.is_set():
                    await fn(*args)

        jobs = []
        for dev_dir in self.devices():
            for part in await anyio.to_thread.run_sync(P.partitions, dev_dir):
                if part < ring.partition_count:
                    jobs.append(one(self._replicate_partition, dev_dir, part, stats))
            for kind in ("account", "container"):
                for part, h, path in await anyio.to_thread.run_sync(_db_files, dev_dir, kind):
                    if part < ring.partition_count:
                        jobs.append(one(self._replicate_db, dev_dir, kind, part, h, path, stats))
        await asyncio.gather(*jobs)
        return stats

    async def _replicate_partition(self, dev_dir: Path, part: int, stats: Stats) -> None:
        device = dev_dir.name
        primaries = self.cluster.ring.nodes(part)
        is_primary = any(self._is_me(d, device) for d in primaries)
        targets = [d for d in primaries if not self._is_me(d, device)]
        part_dir = dev_dir / "objects" / str(part)
        # every FULL_EVERY passes the cache is ignored: quiet suffixes get their old tombstones reclaimed
        full = self.passes.get("replicator", 0) % FULL_EVERY == FULL_EVERY - 1
        local = await anyio.to_thread.run_sync(
            lambda: P.get_hashes(part_dir, full=full, reclaim_age=self.settings.reclaim_age)
        )
        stats.add("partitions")
        ok = True
        for target in targets:
            ok = await self._sync_partition(dev_dir, part, part_dir, local, target, stats) and ok
        if not is_primary:
            if ok:
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(part_dir, ignore_errors=True))
                stats.add("handoffs removed")
            else:
                stats.add("handoffs kept")

    async def _sync_partition(
        self, dev_dir: Path, part: int, part_dir: Path, local: dict[str, str], target: Device, stats: Stats
    ) -> bool:
        base = f"/replicate/object/{target.device}/{part}"
        resp = await self._call(target, "POST", f"{base}/hashes", json_body={"recalc": []})
        if resp is None or resp.status_code != 200:
            stats.add("peers unreachable")
            return False
        await self._ring_gossip(target, resp.headers.get("x-ring-version"))
        remote = resp.json()
        diff = [s for s, h in local.items() if remote.get(s) != h]
        if not diff:
            return True
        resp = await self._call(target, "POST", f"{base}/hashes", json_body={"recalc": diff})
        if resp is None or resp.status_code != 200:
            return False
        remote = resp.json()
        diff = [s for s in diff if remote.get(s) != local[s]]
        if not diff:
            return True
        stats.add("suffixes synced", len(diff))
        resp = await self._call(target, "POST", f"{base}/list", json_body={"suffixes": diff})
        if resp is None or resp.status_code != 200:
            return False
        theirs: dict[str, list[str]] = resp.json()
        mine = await anyio.to_thread.run_sync(P.list_suffixes, part_dir, diff)
        ok = True
        for name_hash, (ts, kind, meta_ts) in mine.items():
            other = theirs.get(name_hash)
            objdir = ObjectDir(dev_dir, part, name_hash)
            if other is None or float(other[0]) < float(ts):
                ok = await self._push(target, base, objdir, ts, kind, stats) and ok
            elif other[0] == ts and kind == "data" and float(meta_ts or 0) > float(other[2] or 0):
                ok = await self._push_meta(target, base, objdir, stats) and ok
        return ok

    async def _push(
        self, target: Device, base: str, objdir: ObjectDir, ts: str, kind: str, stats: Stats
    ) -> bool:
        url = f"{base}/{objdir.hash}"
        if kind == "ts":
            resp = await self._call(target, "PUT", url, headers={"x-backend-tombstone": ts})
            stats.add("tombstones pushed")
        else:
            obj = await anyio.to_thread.run_sync(objdir.open)
            if obj is None:
                return True  # gone meanwhile (quarantined or replaced): the next pass sees why
            headers = {
                "x-backend-metadata": json.dumps(obj.metadata),
                "content-length": str(obj.size),
            }
            resp = await self._call(target, "PUT", url, headers=headers, content=_file_chunks(obj.path))
            stats.add("objects pushed")
        return resp is not None and resp.status_code in (201, 409)

    async def _push_meta(self, target: Device, base: str, objdir: ObjectDir, stats: Stats) -> bool:
        obj = await anyio.to_thread.run_sync(objdir.open)
        if obj is None:
            return True
        resp = await self._call(
            target, "POST", f"{base}/{objdir.hash}", headers={"x-backend-metadata": json.dumps(obj.metadata)}
        )
        stats.add("metadata pushed")
        return resp is not None and resp.status_code in (202, 404, 409)

    async def _ring_gossip(self, target: Device, their_version: str | None) -> None:
        """A peer with an older ring gets ours; a newer one we fetch."""
        if not their_version or not their_version.isdigit():
            return
        mine = self.cluster.ring.version
        theirs = int(their_version)
        if theirs < mine:
            data = await anyio.to_thread.run_sync(self.cluster.ring_path.read_bytes)
            await self._call(target, "PUT", "/ring", content=data)
        elif theirs > mine:
            resp = await self._call(target, "GET", "/ring")
            if resp is not None and resp.status_code == 200:
                with contextlib.suppress(ValueError, OSError):
                    await anyio.to_thread.run_sync(self.cluster.accept, resp.content)

    async def _replicate_db(
        self, dev_dir: Path, kind: str, part: int, h: str, path: Path, stats: Stats
    ) -> None:
        device = dev_dir.name
        primaries = self.cluster.ring.nodes(part)
        is_primary = any(self._is_me(d, device) for d in primaries)
        broker: Broker = (AccountBroker if kind == "account" else ContainerBroker)(path)
        stats.add(f"{kind} dbs")
        ok = True
        for target in primaries:
            if not self._is_me(target, device):
                ok = await self._sync_db(broker, kind, part, h, target, stats) and ok
        if not is_primary and ok:
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(path.parent, ignore_errors=True))
            stats.add("handoffs removed")

    async def _sync_db(
        self, broker: Broker, kind: str, part: int, h: str, target: Device, stats: Stats
    ) -> bool:
        url = f"/replicate/{kind}/{target.device}/{part}/{h}"
        resp = await self._call(target, "POST", url, json_body={"op": "info"})
        if resp is None or resp.status_code != 200:
            stats.add("peers unreachable")
            return False
        info = resp.json()
        stat = await anyio.to_thread.run_sync(broker.stat_dump)
        remote_id = info.get("id")
        point = await anyio.to_thread.run_sync(broker.sync_point, remote_id) if remote_id else -1
        max_row = await anyio.to_thread.run_sync(broker.max_row)
        if remote_id and point >= max_row and info.get("stat") == stat:
            return True
        while True:
            rows = await anyio.to_thread.run_sync(broker.item_rows, point, ROW_BATCH)
            body = {"op": "merge", "stat": stat, "rows": [list(r[1:]) for r in rows]}
            resp = await self._call(target, "POST", url, json_body=body)
            if resp is None or resp.status_code != 200:
                return False
            remote_id = resp.json().get("id")
            stats.add("db rows pushed", len(rows))
            if rows:
                point = int(rows[-1][0])
                await anyio.to_thread.run_sync(broker.set_sync_point, remote_id, point)
            if len(rows) < ROW_BATCH:
                return True

    # ---- auditor -------------------------------------------------------------------------------

    async def audit_once(self) -> Stats:
        stats = Stats("auditor")
        await anyio.to_thread.run_sync(self._audit, stats)
        return stats

    def _audit(self, stats: Stats) -> None:
        limiter = _RateLimiter(self.settings.auditor_files_per_second, self.settings.auditor_bytes_per_second)
        for dev_dir in self.devices():
            for part in P.partitions(dev_dir):
                part_dir = dev_dir / "objects" / str(part)
                for suffix in _listdir(part_dir):
                    for name_hash in _listdir(part_dir / suffix):
                        if self.stop_flag.is_set():
                            return
                        objdir = ObjectDir(dev_dir, part, name_hash)
                        if objdir.newest() is None or objdir.newest()[1] != "data":  # type: ignore[index]
                            continue
                        stats.add("objects")
                        obj = objdir.open()  # a size mismatch quarantines here
                        if obj is None:
                            if objdir.newest() is None:
                                stats.add("quarantined")
                            continue
                        limiter.wait(obj.size, self.stop_flag)
                        if not _md5_matches(obj.path, obj.metadata.get("etag", "")):
                            objdir.quarantine("etag mismatch (auditor)")
                            stats.add("quarantined")
                            log.warning("%s: quarantined object %s (etag mismatch)", self.node, obj.path)
            for kind in ("account", "container"):
                for _part, h, path in _db_files(dev_dir, kind):
                    limiter.wait(0, self.stop_flag)
                    stats.add(f"{kind} dbs")
                    broker = (AccountBroker if kind == "account" else ContainerBroker)(path)
                    problem = broker.check_integrity()
                    if problem is not None:
                        dest = dev_dir / "quarantined" / f"{kind}s" / f"{h}-{time.time():.5f}"
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        with contextlib.suppress(FileNotFoundError):
                            os.replace(path.parent, dest)
                        stats.add("quarantined")
                        log.warning("%s: quarantined %s DB %s: %s", self.node, kind, path, problem)

    # ---- updater -------------------------------------------------------------------------------

    async def update_once(self) -> Stats:
        stats = Stats("updater")
        for dev_dir in self.devices():
            for path in await anyio.to_thread.run_sync(async_pendings, dev_dir):
                if self.stop_flag.is_set():
                    break
                try:
                    data = json.loads(await anyio.to_thread.run_sync(path.read_bytes))
                    update = ListingUpdate(
                        data["op"], data["account"], data["container"], data["obj"], data["headers"]
                    )
                except (ValueError, KeyError, FileNotFoundError):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    stats.add("unreadable dropped")
                    continue
                done, left = await self._send_listing_update(update, list(data.get("done", [])), stats)
                if left:
                    await anyio.to_thread.run_sync(
                        save_async_pending, dev_dir, update, self.cluster.ring.hash_suffix, done
                    )
                    stats.add("still pending")
                else:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    stats.add("replayed")
        return stats

    async def _send_listing_update(
        self, update: ListingUpdate, done: list[str], stats: Stats
    ) -> tuple[list[str], list[str]]:
        """Send to every container primary not yet done; then the totals to the account."""
        ring = self.cluster.ring
        part = ring.partition(update.account, update.container)
        result: dict[str, str] | None = None
        left: list[str] = []
        for dev in ring.nodes(part):
            key = f"{dev.node}/{dev.device}"
            if key in done:
                continue
            try:
                client = self.cluster.client(dev.node)
            except LookupError:
                left.append(key)
                continue
            answer = await send_update(client, dev.device, part, update)
            if answer is None:
                left.append(key)
            else:
                done.append(key)
                result = answer
        if result is not None:
            await self._account_update(update.account, update.container, result)
        return done, left

    async def _account_update(self, a: str, c: str, stats: dict[str, str]) -> None:
        ring = self.cluster.ring
        part = ring.partition(a)
        headers = {
            "x-put-timestamp": stats.get("x-put-timestamp", "0"),
            "x-delete-timestamp": stats.get("x-delete-timestamp", "0"),
            "x-object-count": stats.get("x-container-object-count", "0"),
            "x-bytes-used": stats.get("x-container-bytes-used", "0"),
            "x-timestamp": now_ts(),
        }
        for dev in ring.nodes(part):
            await self._call(dev, "PUT", f"/account/{dev.device}/{part}/{quote_path(a, c)}", headers=headers)

    # ---- container sync ------------------------------------------------------------------------

    async def container_sync_once(self) -> Stats:
        stats = Stats("container-sync")
        if self.syncer is None:
            return stats
        dbs = []
        for dev_dir in self.devices():
            for part, _h, path in await anyio.to_thread.run_sync(_db_files, dev_dir, "container"):
                dbs.append((dev_dir.name, part, path))
        await self.syncer.run(dbs, stats)
        return stats

    # ---- expirer -------------------------------------------------------------------------------

    async def expire_once(self) -> Stats:
        stats = Stats("expirer")
        now = time.time()
        for dev_dir in self.devices():
            for qpath, delete_at, entry in await anyio.to_thread.run_sync(due_expiring, dev_dir, now):
                if self.stop_flag.is_set():
                    break
                name = str(entry.get("name", ""))
                names = name.split("/", 3)[1:]
                if len(names) != 3:
                    await anyio.to_thread.run_sync(_unlink, qpath)
                    continue
                objdir = ObjectDir(dev_dir, int(entry.get("partition", 0)), qpath.name.split("-", 1)[1])
                deleted = await anyio.to_thread.run_sync(self._expire_local, objdir, delete_at)
                if deleted:
                    ts = normalize_ts(delete_at)
                    update = ListingUpdate("DELETE", names[0], names[1], names[2], {"x-timestamp": ts})
                    done, left = await self._send_listing_update(update, [], stats)
                    if left:
                        await anyio.to_thread.run_sync(
                            save_async_pending, dev_dir, update, self.cluster.ring.hash_suffix, done
                        )
                    stats.add("expired")
                else:
                    stats.add("stale entries")
                await anyio.to_thread.run_sync(_unlink, qpath)
        return stats

    @staticmethod
    def _expire_local(objdir: ObjectDir, delete_at: str) -> bool:
        obj = objdir.open()
        if obj is None or obj.metadata.get("x-delete-at") != delete_at:
            return False  # gone, overwritten or given another expiry since
        ts = normalize_ts(delete_at)
        if float(obj.timestamp) >= float(ts):
            ts = normalize_ts(float(obj.timestamp) + 0.00001)
        objdir.delete(ts)
        return True


# ---- helpers ----------------------------------------------------------------------------------


class _RateLimiter:
    def __init__(self, files_per_second: float, bytes_per_second: float) -> None:
        self.fps = files_per_second
        self.bps = bytes_per_second
        self.start = time.monotonic()
        self.files = 0
        self.bytes = 0

    def wait(self, size: int, stop: threading.Event) -> None:
        self.files += 1
        self.bytes += size
        due = max(self.files / self.fps, self.bytes / self.bps)
        delay = self.start + due - time.monotonic()
        if delay > 0:
            stop.wait(delay)


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _db_files(dev_dir: Path, kind: str) -> list[tuple[int, str, Path]]:
    """(partition, hash, path) of every DB of a kind on a device."""
    out = []
    root = dev_dir / f"{kind}s"
    for part in _listdir(root):
        if not part.isdigit():
            continue
        for suffix in _listdir(root / part):
            for h in _listdir(root / part / suffix):
                path = root / part / suffix / h / f"{h}.db"
                if path.exists():
                    out.append((int(part), h, path))
    return out


def _md5_matches(path: Path, etag: str) -> bool:
    import hashlib

    md5 = hashlib.md5()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                md5.update(chunk)
    except FileNotFoundError:
        return True  # replaced meanwhile
    return md5.hexdigest() == etag


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    fh = await anyio.to_thread.run_sync(path.open, "rb")
    try:
        while True:
            chunk = await anyio.to_thread.run_sync(fh.read, CHUNK * 4)
            if not chunk:
                return
            yield chunk
    finally:
        fh.close()
