"""The storage node's ASGI app: Swift's backend protocol for accounts, containers, objects.

Paths: ``/{server}/{device}/{partition}/{account}[/{container}[/{object}]]`` where server is
``account``, ``container`` or ``object``.  Every write carries ``X-Timestamp``; the proxy
makes all decisions about users and policy, the node only stores.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.object_store import listing_rows, ranges
from kumo.object_store.errors import SwiftError
from kumo.object_store.http import RawResponse
from kumo.object_store.node import replication
from kumo.object_store.node.brokers import AccountBroker, Broker, ContainerBroker, Info
from kumo.object_store.node.diskfile import META_TS, ObjectDir, ObjectFile, ObjectWriter, expired
from kumo.object_store.node.updates import (
    STAT_HEADERS,
    GroupCommit,
    ListingUpdate,
    queue_expiring,
    save_async_pending,
    send_update,
)
from kumo.object_store.utils import hash_path, http_date, now_ts

if TYPE_CHECKING:
    from kumo.object_store.cluster import Cluster

log = logging.getLogger("kumo.object_store.node")

VERIFY_MAX = 4 * 1024 * 1024  # whole GETs up to this size are checked before the first byte
SMALL_PUT = 256 * 1024  # bodies up to this size are gathered first and stored in one worker-thread call
_DEVICE = re.compile(r"^[A-Za-z0-9_.-]+$")
# headers kept as an object's metadata, besides the ones the node computes
_OBJECT_META = ("x-object-meta-", "x-object-sysmeta-", "x-object-transient-sysmeta-")
_OBJECT_KEEP = (
    "content-type",
    "content-disposition",
    "content-encoding",
    "x-delete-at",
    "x-object-manifest",
    "x-static-large-object",
    "x-symlink-target",
    "x-symlink-target-account",
)
_POST_KEEP = ("content-length", "etag", "x-timestamp", "name", "x-static-large-object")
_DB_META = ("x-container-meta-", "x-account-meta-", "x-container-sysmeta-", "x-account-sysmeta-")
_DB_KEEP = (
    "x-container-read",
    "x-container-write",
    "x-versions-location",
    "x-history-location",
    "x-account-access-control",
    "x-container-sync-to",
    "x-container-sync-key",
)


def _meta_from(headers: Any, prefixes: tuple[str, ...], keep: tuple[str, ...]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(prefixes) or k.lower() in keep}


class StorageNode:
    def __init__(
        self,
        root: Path,
        hash_suffix: str = "",
        *,
        cluster: Cluster | None = None,
        reclaim_age: float = 604800.0,
    ) -> None:
        self.root = root
        self.hash_suffix = hash_suffix
        self.cluster = cluster  # the ring and the peers: for listing updates and replication
        self.reclaim_age = reclaim_age
        # object rows bound for one container DB, written a batch per transaction
        self.rows: GroupCommit[tuple[str, str, int, str, str, int], Info | None] = GroupCommit(
            lambda path, rows: ContainerBroker(path).apply_updates(rows)
        )
        self._devices: set[str] = set()

    def device(self, name: str) -> Path:
        path = self.root / name
        if name in self._devices:
            return path
        if not _DEVICE.match(name):
            raise SwiftError(400, "Invalid device")
        path.mkdir(parents=True, exist_ok=True)
        self._devices.add(name)
        return path

    def broker(self, kind: str, device: str, part: str, *names: str) -> Broker:
        return self.broker_by_hash(kind, device, part, hash_path(*names, suffix=self.hash_suffix))

    def broker_by_hash(self, kind: str, device: str, part: str, h: str) -> Broker:
        path = self.device(device) / (kind + "s") / part / h[-3:] / h / f"{h}.db"
        return (AccountBroker if kind == "account" else ContainerBroker)(path)

    async def handle(self, request: Request) -> Response:
        raw = request.scope.get("raw_path") or request.url.path.encode()
        parts = (
            unquote(raw.decode("latin-1"), encoding="utf-8", errors="surrogateescape")
            .lstrip("/")
            .split("/", 5)
        )
        try:
            if parts[0] == "replicate":
                return await replication.handle(
                    self, request, unquote(request.url.path).lstrip("/").split("/")[1:]
                )
            if parts[0] == "ring" and len(parts) == 1:
                return await self.ring_file(request)
            if len(parts) < 4 or not parts[2].isdigit():
                raise SwiftError(400, "Invalid path")
            server, device, part, names = parts[0], parts[1], parts[2], parts[3:]
            if server == "object" and len(names) == 3:
                return await self.object(request, device, part, *names)
            if server == "container" and len(names) == 3 and request.method in ("PUT", "DELETE"):
                return await self.container_row(request, device, part, names)
            if server == "container" and len(names) in (2, 3):
                return await anyio.to_thread.run_sync(
                    self.container, request, device, part, names, await request.body()
                )
            if server == "account" and len(names) in (1, 2):
                return await anyio.to_thread.run_sync(
                    self.account, request, device, part, names, await request.body()
                )
            raise SwiftError(400, "Invalid path")
        except (ValueError, UnicodeDecodeError):
            return RawResponse(400, {"content-type": "text/html; charset=UTF-8"}, b"Bad request body")
        except SwiftError as err:
            return RawResponse(
                err.status, {"content-type": "text/html; charset=UTF-8", **err.headers}, err.body()
            )

    # ---- objects -------------------------------------------------------------------------------

    async def ring_file(self, request: Request) -> Response:
        if self.cluster is None:
            raise SwiftError(404)
        if request.method == "GET":
            data = await anyio.to_thread.run_sync(self.cluster.ring_path.read_bytes)
            return RawResponse(200, {"x-ring-version": str(self.cluster.ring.version)}, data)
        if request.method == "PUT":
            body = await request.body()
            try:
                taken = await anyio.to_thread.run_sync(self.cluster.accept, body)
            except (ValueError, OSError, KeyError, TypeError, EOFError, zlib.error) as exc:
                raise SwiftError(400, f"Bad ring file: {exc}") from None
            return RawResponse(201 if taken else 202, {"x-ring-version": str(self.cluster.ring.version)})
        raise SwiftError(405)

    async def _listing_update(
        self, request: Request, objdir: ObjectDir, op: str, names: tuple[str, str, str], meta: dict[str, str]
    ) -> dict[str, str]:
        """Tell the container replica the proxy named; keep the update as an async pending if it fails."""
        part = request.headers.get("x-container-partition", "")
        target = request.headers.get("x-container-device", "")
        if not part.isdigit() or "/" not in target:
            return {}
        update = ListingUpdate(op, *names, meta)
        stats = None
        node, _, dev = target.partition("/")
        peer = self._local_peer(node)
        if peer is not None:  # the container replica lives in this process: no HTTP on the way
            stats = await peer.local_update(dev, part, update)
        elif self.cluster is not None:
            try:
                client = self.cluster.client(node)
            except LookupError:
                client = None
            if client is not None:
                stats = await send_update(client, dev, part, update)
        if stats is None:
            await anyio.to_thread.run_sync(
                save_async_pending, objdir.device_root, update, self.hash_suffix, []
            )
            return {"x-backend-container-update": "async"}
        out = {"x-backend-container-update": "ok"}
        out.update({"x-backend-container-" + k[2:]: v for k, v in stats.items()})
        return out

    def _local_peer(self, node: str) -> StorageNode | None:
        """The storage node ``node`` when it runs in this process (it has no URL in the ring)."""
        cluster = self.cluster
        if cluster is None or cluster.local_app is None:
            return None
        dev = next((d for d in cluster.ring.devs.values() if d.node == node), None)
        if dev is None or dev.url:
            return None
        app = cluster.local_apps.get(node)
        if app is None:
            try:
                cluster.client(node)  # builds the in-process node
            except LookupError:
                return None
            app = cluster.local_apps.get(node)
        peer = getattr(getattr(app, "state", None), "node", None)
        return peer if isinstance(peer, StorageNode) else None

    async def local_update(self, device: str, part: str, update: ListingUpdate) -> dict[str, str] | None:
        """A listing update from an object node in this process: the container's totals, or None
        when it was not taken (the sender keeps it as an async pending, as after an HTTP failure)."""
        try:
            info = await self.container_update(device, part, update.account, update.container,
                                               _row(update.op, update.obj, update.headers))  # fmt: skip
        except Exception:  # noqa: BLE001 - over HTTP this would have been a 5xx: keep it for later
            log.exception("listing update of /%s/%s failed", update.account, update.container)
            return None
        if info is None:
            return None
        return {k: v for k, v in self._db_headers(info, "container").items() if k in STAT_HEADERS}

    async def container_update(
        self, device: str, part: str, a: str, c: str, row: tuple[str, str, int, str, str, int]
    ) -> Info | None:
        """Put one object row into the container's DB (group-committed with concurrent ones)."""
        broker = self.broker("container", device, part, a, c)
        return await self.rows.submit(broker.path, row)

    async def container_row(self, request: Request, device: str, part: str, names: list[str]) -> Response:
        """A row update after an object write (PUT or DELETE of /container/dev/part/a/c/o)."""
        info = await self.container_update(
            device, part, names[0], names[1], _row(request.method, names[2], request.headers)
        )
        if info is None:
            return RawResponse(404, {})
        return RawResponse(201 if request.method == "PUT" else 204, self._db_headers(info, "container"))

    async def object(self, request: Request, device: str, part: str, a: str, c: str, o: str) -> Response:
        objdir = ObjectDir(self.device(device), int(part), hash_path(a, c, o, suffix=self.hash_suffix))
        method = request.method
        if method == "PUT":
            return await self._put_object(request, objdir, (a, c, o))
        obj = await anyio.to_thread.run_sync(objdir.open)
        if obj is not None and expired(obj.metadata):
            if method == "DELETE" and request.headers.get("x-if-delete-at"):
                pass
            else:
                return RawResponse(
                    404,
                    {
                        "x-backend-expired": "true",
                        "x-backend-timestamp": obj.timestamp,
                        "x-delete-at": obj.metadata.get("x-delete-at", ""),
                    },
                )
        if method == "DELETE":
            ts = request.headers.get("x-timestamp") or now_ts()
            if_delete_at = request.headers.get("x-if-delete-at")
            if if_delete_at and (obj is None or obj.metadata.get("x-delete-at") != if_delete_at):
                return RawResponse(412 if obj is not None else 404, {})
            if obj is not None and float(obj.timestamp) >= float(ts):
                return RawResponse(409, {"x-backend-timestamp": obj.timestamp})
            newest = objdir.newest()
            if newest is not None and float(newest[0]) >= float(ts):
                return RawResponse(404 if obj is None else 409, {"x-backend-timestamp": newest[0]})
            await anyio.to_thread.run_sync(objdir.delete, ts)
            extra = await self._listing_update(request, objdir, "DELETE", (a, c, o), {"x-timestamp": ts})
            return RawResponse(204 if obj is not None else 404, {"x-backend-timestamp": ts, **extra})
        if obj is None:
            newest = objdir.newest()
            return RawResponse(404, {"x-backend-timestamp": newest[0]} if newest else {})
        if method == "POST":
            ts = request.headers.get("x-timestamp") or now_ts()
            meta = {
                k: v for k, v in obj.metadata.items() if k in _POST_KEEP or k.startswith("x-object-sysmeta-")
            }
            meta["content-type"] = obj.metadata.get("content-type", "application/octet-stream")
            meta.update(_meta_from(request.headers, _OBJECT_META, _OBJECT_KEEP))
            meta = {k: v for k, v in meta.items() if v != "" or k.startswith("x-object-meta-")}
            meta[META_TS] = ts
            await anyio.to_thread.run_sync(objdir.update_metadata, obj, meta)
            if meta.get("x-delete-at"):
                await anyio.to_thread.run_sync(
                    queue_expiring,
                    objdir.device_root,
                    meta["x-delete-at"],
                    int(part),
                    meta["name"],
                    objdir.hash,
                )
            return RawResponse(202, {"x-backend-timestamp": ts})
        if method in ("GET", "HEAD"):
            if method == "GET" and not request.headers.get("range") and obj.size <= VERIFY_MAX:
                data = await anyio.to_thread.run_sync(_read_verified, objdir, obj)
                if data is None:  # corrupt: quarantined; the proxy asks another replica
                    return RawResponse(404, {"x-backend-quarantined": "true"})
                return self._get_object(request, obj, data)
            return self._get_object(request, obj)
        raise SwiftError(405)

    async def _put_object(self, request: Request, objdir: ObjectDir, names: tuple[str, str, str]) -> Response:
        name = "/" + "/".join(names)
        headers = request.headers
        ts = headers.get("x-timestamp") or now_ts()
        if headers.get("if-none-match", "").strip() == "*":
            cur = await anyio.to_thread.run_sync(objdir.open)
            if cur is not None and not expired(cur.metadata):
                return RawResponse(412, {})
        length = headers.get("content-length")
        small = length is not None and length.isdigit() and int(length) <= SMALL_PUT
        if not small:  # a small PUT checks in its worker-thread call
            cur_newest = objdir.newest()
            if cur_newest is not None and float(cur_newest[0]) >= float(ts):
                return RawResponse(409, {"x-backend-timestamp": cur_newest[0]})
        meta = _meta_from(headers, _OBJECT_META, _OBJECT_KEEP)
        meta = {k: v for k, v in meta.items() if v != "" or k.startswith("x-object-meta-")}
        meta.update({"name": name, "x-timestamp": ts})
        meta.setdefault("content-type", "application/octet-stream")
        expected = headers.get("etag", "").strip('"').lower()
        if small:
            # a small body: gather it, then check, write, fsync and commit it in one worker-thread call
            chunks = [chunk async for chunk in request.stream()]
            writer = await anyio.to_thread.run_sync(_store, objdir, chunks, int(str(length)), expected, meta)
            if isinstance(writer, str):  # a newer (or this very) write is there already
                return RawResponse(409, {"x-backend-timestamp": writer})
        else:
            writer = await anyio.to_thread.run_sync(objdir.writer)
            try:
                async for chunk in request.stream():
                    writer.write(chunk)
                size = int(length) if length is not None and length.isdigit() else None
                await anyio.to_thread.run_sync(_finish_commit, objdir, writer, size, expected, meta)
            except BaseException:
                writer.abort()
                raise
        etag = meta["etag"]
        update = {
            "x-timestamp": ts,
            "x-size": str(writer.size),
            "x-content-type": headers.get("x-backend-container-content-type") or meta["content-type"],
            "x-etag": etag,
        }
        extra = await self._listing_update(request, objdir, "PUT", names, update)
        return RawResponse(
            201, {"etag": etag, "x-backend-timestamp": ts, "last-modified": http_date(ts), **extra}
        )

    def _get_object(self, request: Request, obj: ObjectFile, data: bytes | None = None) -> Response:
        meta = obj.metadata
        headers = {k: v for k, v in meta.items() if k not in ("name", "content-length", "etag", META_TS)}
        headers.update(
            {
                "etag": meta["etag"],
                "last-modified": http_date(obj.timestamp),
                "accept-ranges": "bytes",
                "x-backend-timestamp": obj.timestamp,
            }
        )
        size = obj.size
        ignore = {
            h.strip().lower()
            for h in request.headers.get("x-backend-ignore-range-if-metadata-present", "").split(",")
            if h.strip()
        }
        spec = None if ignore & set(meta) else request.headers.get("range")
        head = request.method == "HEAD"
        try:
            wanted = ranges.parse(spec, size)
        except ranges.RangeNotSatisfiable as err:
            return RawResponse(
                416,
                {**headers, **err.headers, "content-type": "text/html; charset=UTF-8"},
                err.body(),
                head=head,
            )

        read = obj.aread  # read(start, end): a worker thread reads ahead while a chunk is sent

        if wanted is None:
            headers["content-length"] = str(size)
            if data is not None:
                return RawResponse(200, headers, data, head=head)
            return RawResponse(
                200,
                headers,
                verified(obj.aread(0, size - 1, md5 := hashlib.md5()), objdir_of(obj), meta["etag"], md5)
                if size
                else b"",
                head=head,
            )
        if len(wanted) == 1:
            start, end = wanted[0]
            headers["content-length"] = str(end - start + 1)
            headers["content-range"] = f"bytes {start}-{end}/{size}"
            return RawResponse(206, headers, read(start, end), head=head)
        bound = ranges.boundary()
        ctype = meta.get("content-type", "application/octet-stream")
        headers["content-type"] = f"multipart/byteranges;boundary={bound}"
        headers["content-length"] = str(ranges.multipart_length(wanted, size, ctype, bound))
        return RawResponse(206, headers, ranges.multipart(wanted, size, ctype, bound, read), head=head)

    # ---- containers ----------------------------------------------------------------------------

    def container(self, request: Request, device: str, part: str, names: list[str], body: bytes) -> Response:
        a, c = names[0], names[1]
        broker = self.broker("container", device, part, a, c)
        headers = request.headers
        ts = headers.get("x-timestamp") or now_ts()
        method = request.method
        if len(names) == 3:  # a row update from the proxy after an object write
            info = broker.info()
            if info is None or info.deleted:
                return RawResponse(404, {})
            assert isinstance(broker, ContainerBroker)
            if method == "PUT":
                broker.put_object(
                    names[2],
                    ts,
                    int(headers.get("x-size", "0")),
                    headers.get("x-content-type", ""),
                    headers.get("x-etag", ""),
                )
            elif method == "DELETE":
                broker.delete_object(names[2], ts)
            else:
                raise SwiftError(405)
            return RawResponse(201 if method == "PUT" else 204, self._db_headers(broker.info(), "container"))
        if method == "PUT":
            meta = _meta_from(headers, _DB_META, _DB_KEEP)
            if not broker.exists():
                broker.create(f"{a}/{c}", ts, headers.get("x-storage-policy", ""))
                broker.update_metadata(ts, meta)
                created = True
            else:
                created = broker.put(ts, meta)
            return RawResponse(201 if created else 202, self._db_headers(broker.info(), "container"))
        info = broker.info()
        if info is None or info.deleted:
            return RawResponse(404, {})
        if method == "POST":
            broker.update_metadata(ts, _meta_from(headers, _DB_META, _DB_KEEP))
            return RawResponse(204, {})
        if method == "DELETE":
            if info.object_count > 0:
                return RawResponse(409, {})
            broker.mark_deleted(ts)
            return RawResponse(204, self._db_headers(broker.info(), "container"))
        if method in ("GET", "HEAD"):
            return self._listing(request, broker, info, "container")
        raise SwiftError(405)

    # ---- accounts ------------------------------------------------------------------------------

    def account(self, request: Request, device: str, part: str, names: list[str], body: bytes) -> Response:
        a = names[0]
        broker = self.broker("account", device, part, a)
        assert isinstance(broker, AccountBroker)
        headers = request.headers
        ts = headers.get("x-timestamp") or now_ts()
        method = request.method
        if len(names) == 2:  # a container's totals, sent by the proxy
            if method != "PUT":
                raise SwiftError(405)
            if not broker.exists():
                broker.create(a, ts)
            broker.put_container(
                names[1],
                headers.get("x-put-timestamp", "0"),
                headers.get("x-delete-timestamp", "0"),
                int(headers.get("x-object-count", "0")),
                int(headers.get("x-bytes-used", "0")),
            )
            return RawResponse(201, {})
        if method == "PUT":
            if not broker.exists():
                broker.create(a, ts)
                broker.update_metadata(ts, _meta_from(headers, _DB_META, _DB_KEEP))
                return RawResponse(201, {})
            return RawResponse(
                202 if not broker.put(ts, _meta_from(headers, _DB_META, _DB_KEEP)) else 201, {}
            )
        info = broker.info()
        if info is None or info.deleted:
            return RawResponse(404, {})
        if method == "POST":
            broker.update_metadata(ts, _meta_from(headers, _DB_META, _DB_KEEP))
            return RawResponse(204, {})
        if method in ("GET", "HEAD"):
            return self._listing(request, broker, info, "account")
        raise SwiftError(405)

    # ---- shared --------------------------------------------------------------------------------

    @staticmethod
    def _db_headers(info: Info | None, kind: str) -> dict[str, str]:
        if info is None:
            return {}
        out = {k: v[0] for k, v in info.metadata.items()}
        out.update(
            {
                "x-timestamp": info.created_at,
                "x-put-timestamp": info.put_timestamp,
                "x-delete-timestamp": info.delete_timestamp,
                "x-backend-storage-policy": info.storage_policy,
                f"x-{kind}-object-count": str(info.object_count),
                f"x-{kind}-bytes-used": str(info.bytes_used),
            }
        )
        if kind == "account":
            out["x-account-container-count"] = str(info.item_count)
        return out

    def _listing(self, request: Request, broker: Broker, info: Info, kind: str) -> Response:
        headers = self._db_headers(info, kind)
        if request.method == "HEAD":
            return RawResponse(204, headers)
        q = request.query_params
        try:
            limit = int(q.get("limit", "10000"))
        except ValueError:
            raise SwiftError(412, "Value of limit must be an integer") from None
        reverse = q.get("reverse", "") in ("1", "true", "True", "yes", "on")
        if request.headers.get(listing_rows.READY) == "swift" and kind == "container" and not q.get("delimiter"):
            assert isinstance(broker, ContainerBroker)
            body = broker.swift_json(limit=limit, marker=q.get("marker", ""), end_marker=q.get("end_marker", ""),
                                     prefix=q.get("prefix", ""), reverse=reverse)  # fmt: skip
            if body is not None:
                headers.update({"content-type": "application/json", listing_rows.READY: "swift"})
                return RawResponse(200, headers, body)
        rows = broker.listing(
            limit=limit,
            marker=q.get("marker", ""),
            end_marker=q.get("end_marker", ""),
            prefix=q.get("prefix", ""),
            delimiter=q.get("delimiter", ""),
            reverse=reverse,
        )
        headers["content-type"] = "application/json"
        if request.headers.get(listing_rows.READY) == "swift":  # the proxy passes these rows through
            rows = listing_rows.container_rows(rows) if kind == "container" else listing_rows.account_rows(rows)
            headers[listing_rows.READY] = "swift"
        return RawResponse(200, headers, json.dumps(rows).encode())


def _row(method: str, obj: str, headers: Any) -> tuple[str, str, int, str, str, int]:
    """A container row from a listing update's headers (ValueError on a bad timestamp or size)."""
    ts = headers.get("x-timestamp") or now_ts()
    float(ts)
    if method == "DELETE":
        return (obj, ts, 0, "", "", 1)
    if method != "PUT":
        raise SwiftError(405)
    size = int(headers.get("x-size", "0"))
    return (obj, ts, size, headers.get("x-content-type", ""), headers.get("x-etag", ""), 0)


def _finish(writer: ObjectWriter, length: int | None, expected_etag: str, meta: dict[str, str]) -> None:
    """Check the received body against Content-Length and ETag; complete the metadata."""
    if length is not None and length != writer.size:
        raise SwiftError(499)
    etag = writer.md5.hexdigest()
    if expected_etag and expected_etag != etag:
        raise SwiftError(422)
    meta.update({"content-length": str(writer.size), "etag": etag})


def _finish_commit(
    objdir: ObjectDir, writer: ObjectWriter, length: int | None, expected_etag: str, meta: dict[str, str]
) -> None:
    _finish(writer, length, expected_etag, meta)  # waits for the writer's queued blocks: off the loop
    _commit(objdir, writer, meta)


def _commit(objdir: ObjectDir, writer: ObjectWriter, meta: dict[str, str]) -> None:
    writer.commit(meta)
    if meta.get("x-delete-at"):
        queue_expiring(objdir.device_root, meta["x-delete-at"], objdir.part, meta["name"], objdir.hash)


def _store(
    objdir: ObjectDir, chunks: list[bytes], length: int, expected_etag: str, meta: dict[str, str]
) -> ObjectWriter | str:
    """Store a small object; the newest timestamp instead when the object has one this new."""
    newest = objdir.newest()
    if newest is not None and float(newest[0]) >= float(meta["x-timestamp"]):
        return newest[0]
    writer = objdir.writer()
    try:
        for chunk in chunks:
            writer.write(chunk)
        _finish(writer, length, expected_etag, meta)
        _commit(objdir, writer, meta)
    except BaseException:
        writer.abort()
        raise
    return writer


def _read_verified(objdir: ObjectDir, obj: ObjectFile) -> bytes | None:
    """A small object's bytes, checked against its ETag; a mismatch quarantines it."""
    try:
        data = obj.path.read_bytes()
    except FileNotFoundError:
        return None
    if hashlib.md5(data).hexdigest() != obj.metadata.get("etag"):
        objdir.quarantine("etag mismatch on read")
        return None
    return data


def objdir_of(obj: ObjectFile) -> ObjectDir:
    d = obj.path.parent
    return ObjectDir(d.parent.parent.parent.parent, int(d.parent.parent.name), d.name)


async def verified(
    chunks: AsyncIterator[bytes], objdir: ObjectDir, etag: str, md5: Any = None
) -> AsyncIterator[bytes]:
    """Stream a whole object, quarantining it afterwards if its bytes do not match its ETag.

    The reader has the bytes by then; the connection is cut so that it sees a short read
    rather than a clean end, and the next reader gets a good replica.  ``md5``: the chunks
    were hashed into it already (by the thread that read them).
    """
    hashed = md5 is not None
    md5 = md5 if hashed else hashlib.md5()
    async for chunk in chunks:
        if not hashed:
            md5.update(chunk)
        yield chunk
    if md5.hexdigest() != etag:
        await anyio.to_thread.run_sync(objdir.quarantine, "etag mismatch on read")
        raise SwiftError(500, "object corrupt")


def create_node_app(
    root: Path, hash_suffix: str = "", *, cluster: Cluster | None = None, reclaim_age: float = 604800.0
) -> Starlette:
    if cluster is None and (root.parent / "object.ring.gz").is_file():
        # a node built without the cluster view still finds its peers through the ring beside it
        from kumo.object_store.cluster import Cluster

        cluster = Cluster(root.parent / "object.ring.gz")
    node = StorageNode(root, hash_suffix, cluster=cluster, reclaim_age=reclaim_age)
    methods = ["GET", "HEAD", "PUT", "POST", "DELETE"]
    app = Starlette(routes=[Route("/{path:path}", node.handle, methods=methods)])
    app.state.node = node
    return app
