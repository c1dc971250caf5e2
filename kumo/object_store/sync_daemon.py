"""The container-sync daemon of a storage node: sends what its containers list to their sync target.

For every container DB on this node that is a primary copy and has ``X-Container-Sync-To`` and
``X-Container-Sync-Key``, one pass walks the listing rows after the copy's sync points (kept in
the DB, see ``ContainerBroker.sync_points``):

- its own share first: the rows after point1 whose name hashes to this copy's place among the
  container's primaries (so N copies do not all send every object);
- then, next pass, every row between point2 and point1, whoever owned it, in case another copy
  failed to send it; a failure here keeps point2 where it was, so the row is tried again.

A live row is sent as a PUT of the object (read from a storage node that holds exactly that
version) with its metadata and its X-Timestamp, unless the target already has it or something
newer (a HEAD says); a deleted row as a DELETE with its timestamp.  Realm targets sign each
request (X-Container-Sync-Auth), full-URL targets carry the user key (X-Container-Sync-Key).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import anyio.to_thread
import httpx

from kumo.object_store.cluster import Cluster
from kumo.object_store.node.brokers import ContainerBroker
from kumo.object_store.sync_realms import InvalidSyncTo, SyncRealms, SyncTarget, auth_header
from kumo.object_store.utils import hash_path, quote_path

log = logging.getLogger("kumo.object_store.sync")

BATCH = 200
MAX_ROWS_PER_PASS = 5000  # per container and walk, so one big container does not hold up the others
TIMEOUT = 60.0
_COPY = (
    "content-type",
    "content-encoding",
    "content-disposition",
    "etag",
    "x-delete-at",
    "x-object-manifest",
    "x-static-large-object",
    "x-symlink-target",
    "x-symlink-target-account",
)
_COPY_PREFIX = ("x-object-meta-", "x-object-sysmeta-")  # sysmeta: an SLO manifest's size and etag
Row = tuple[Any, ...]  # (rowid, name, created_at, size, content_type, etag, deleted)


class ContainerSyncer:
    def __init__(self, node: str, cluster: Cluster, realms: SyncRealms, stop: threading.Event) -> None:
        self.node = node
        self.cluster = cluster
        self.realms = realms
        self.stop = stop
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=TIMEOUT)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def run(self, dbs: list[tuple[str, int, Path]], stats: Any) -> None:
        """One pass over the container DBs ``(device, partition, path)`` of this node."""
        for device, part, path in dbs:
            if self.stop.is_set():
                return
            try:
                await self.sync_container(device, part, path, stats)
            except (OSError, ValueError) as exc:  # a DB gone or unreadable meanwhile: next pass
                log.warning("container sync of %s failed: %s", path, exc)
                stats.add("containers failed")

    async def sync_container(self, device: str, part: int, path: Path, stats: Any) -> None:
        broker = ContainerBroker(path)
        info = await anyio.to_thread.run_sync(broker.info)
        if info is None or info.deleted:
            return
        sync_to = info.metadata.get("x-container-sync-to", ["", ""])[0]
        user_key = info.metadata.get("x-container-sync-key", ["", ""])[0]
        if not sync_to:
            return
        if not user_key:
            stats.add("containers without a sync key")
            return
        primaries = self.cluster.ring.nodes(part)
        ordinal = next(
            (i for i, d in enumerate(primaries) if d.node == self.node and d.device == device), None
        )
        if ordinal is None:
            return  # a handoff copy: the primaries sync
        try:
            target = self.realms.validate(sync_to)
        except InvalidSyncTo as exc:
            log.warning("container sync: %s has an unusable X-Container-Sync-To: %s", info.name, exc)
            stats.add("containers with a bad target")
            return
        if target is None:
            return
        account, container = info.name.split("/", 1)
        job = _Job(self, broker, sync_to, account, container, target, user_key, stats)
        point1, point2 = await anyio.to_thread.run_sync(broker.sync_points, sync_to)
        await job.catch_up(point1, point2)
        await job.own_share(point1, ordinal, len(primaries))

    # ---- one row -------------------------------------------------------------------------------

    def _headers(self, job: _Job, method: str, url: str, ts: str) -> dict[str, str]:
        headers = {"x-timestamp": ts}
        target = job.target
        if target.realm and target.realm_key:
            path = urlsplit(url).path
            headers["x-container-sync-auth"] = auth_header(
                target.realm, target.realm_key, job.user_key, method, path, ts, uuid.uuid4().hex
            )
        else:
            headers["x-container-sync-key"] = job.user_key
        return headers

    async def sync_row(self, job: _Job, row: Row) -> bool:
        """Send one row; True when the target has it (or never needs it)."""
        _rowid, name, ts, _size, _ctype, _etag, deleted = row
        url = f"{job.target.url}/{quote(name.encode('utf-8', 'surrogateescape'))}"
        try:
            if deleted:
                resp = await self.http.delete(url, headers=self._headers(job, "DELETE", url, ts))
                if resp.status_code < 300 or resp.status_code in (404, 409):
                    job.stats.add("deletes")
                    return True
                return self._failed(job, "DELETE", name, resp)
            head = await self.http.head(url, headers=self._headers(job, "HEAD", url, ts))
            if head.status_code < 300 and _newer_or_same(head.headers.get("x-timestamp"), ts):
                job.stats.add("already there")
                return True
            if head.status_code in (401, 403):
                return self._failed(job, "HEAD", name, head)
            return await self._put(job, name, ts, url)
        except httpx.HTTPError as exc:
            log.warning("container sync %s/%s -> %s: %s", job.account, job.container, url, exc)
            job.stats.add("errors")
            return False

    async def _put(self, job: _Job, name: str, ts: str, url: str) -> bool:
        ring = self.cluster.ring
        part = ring.partition(job.account, job.container, name)
        path = f"/{part}/{quote_path(job.account, job.container, name)}"
        unreachable = False
        for dev in ring.nodes(part):
            async with contextlib.AsyncExitStack() as stack:
                try:
                    client = self.cluster.client(dev.node)
                    src = await stack.enter_async_context(client.stream("GET", f"/object/{dev.device}{path}"))
                except (LookupError, httpx.HTTPError):
                    unreachable = True  # this storage node is down: another one may have the object
                    continue
                have = src.headers.get("x-backend-timestamp", "")
                if src.status_code == 200 and _same(have, ts):
                    return await self._send(job, name, ts, url, src)
                if have and _newer(have, ts):
                    job.stats.add("superseded")  # a newer write or delete has a row of its own
                    return True
        if unreachable:
            job.stats.add("source unreachable")
            return False
        job.stats.add("not found")  # gone without a trace (reclaimed): nothing to send
        return True

    async def _send(self, job: _Job, name: str, ts: str, url: str, src: httpx.Response) -> bool:
        headers = {k: v for k, v in src.headers.items() if k in _COPY or k.startswith(_COPY_PREFIX)}
        headers["content-length"] = src.headers.get("content-length", "0")
        headers.update(self._headers(job, "PUT", url, ts))
        resp = await self.http.put(url, headers=headers, content=src.aiter_raw())
        if resp.status_code < 300 or resp.status_code == 409:
            job.stats.add("puts")
            return True
        return self._failed(job, "PUT", name, resp)

    @staticmethod
    def _failed(job: _Job, method: str, name: str, resp: httpx.Response) -> bool:
        log.warning(
            "container sync %s/%s: %s of %r to %s answered %s",
            job.account,
            job.container,
            method,
            name,
            job.target.url,
            resp.status_code,
        )
        job.stats.add(f"refused {resp.status_code}")
        return False


class _Job:
    """The sync of one container copy in one pass."""

    def __init__(self, syncer: ContainerSyncer, broker: ContainerBroker, sync_to: str, account: str,
                 container: str, target: SyncTarget, user_key: str, stats: Any) -> None:  # fmt: skip
        self.syncer = syncer
        self.broker = broker
        self.sync_to = sync_to
        self.account = account
        self.container = container
        self.target = target
        self.user_key = user_key
        self.stats = stats

    async def _rows(self, after: int) -> list[Row]:
        return await anyio.to_thread.run_sync(self.broker.item_rows, after, BATCH)

    async def catch_up(self, point1: int, point2: int) -> None:
        """Every row in (point2, point1]: what other copies owned, and what failed before."""
        failed_at: int | None = None
        done = 0
        while point2 < point1 and done < MAX_ROWS_PER_PASS and not self.syncer.stop.is_set():
            rows = [r for r in await self._rows(point2) if int(r[0]) <= point1]
            if not rows:
                break
            for row in rows:
                if not await self.syncer.sync_row(self, row) and failed_at is None:
                    failed_at = point2
                point2 = int(row[0])
                done += 1
            await anyio.to_thread.run_sync(
                lambda p=(point2 if failed_at is None else failed_at): self.broker.set_sync_points(
                    self.sync_to, point2=p
                )
            )

    async def own_share(self, point1: int, ordinal: int, copies: int) -> None:
        """The new rows after point1 that hash to this copy; the others' are left to the catch-up."""
        done = 0
        while done < MAX_ROWS_PER_PASS and not self.syncer.stop.is_set():
            rows = await self._rows(point1)
            if not rows:
                return
            for row in rows:
                h = hash_path(self.account, self.container, row[1])
                if int(h[:8], 16) % copies == ordinal:
                    await self.syncer.sync_row(self, row)
                point1 = int(row[0])
                done += 1
            await anyio.to_thread.run_sync(
                lambda p=point1: self.broker.set_sync_points(self.sync_to, point1=p)
            )
            if len(rows) < BATCH:
                return


def _same(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _newer(a: str, b: str) -> bool:
    try:
        return float(a) > float(b)
    except ValueError:
        return False


def _newer_or_same(a: str | None, b: str) -> bool:
    return bool(a) and (_same(a or "", b) or _newer(a or "", b))
