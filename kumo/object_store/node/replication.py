"""The storage node's side of replication: partition hashes, pushed objects and DB rows, the ring.

Paths (all internal, between nodes):

- ``POST /replicate/object/{dev}/{part}/hashes`` ``{"recalc": [suffix...]}`` -> ``{suffix: hash}``
- ``POST /replicate/object/{dev}/{part}/list`` ``{"suffixes": [...]}`` -> ``{hash: [ts, kind, meta_ts]}``
- ``PUT /replicate/object/{dev}/{part}/{hash}`` with ``X-Backend-Metadata`` (JSON) and the bytes,
  or with ``X-Backend-Tombstone: <ts>``: kept when newer than what the node has
- ``POST /replicate/object/{dev}/{part}/{hash}`` with ``X-Backend-Metadata``: newer metadata
- ``POST /replicate/{account|container}/{dev}/{part}/{hash}`` ``{"op": "info"}`` or
  ``{"op": "merge", "stat": {...}, "rows": [...]}``
- ``GET|PUT /ring``: the ring file (a newer version replaces this node's)
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request

from kumo.object_store.errors import SwiftError
from kumo.object_store.http import RawResponse
from kumo.object_store.node import partition as P
from kumo.object_store.node.diskfile import META_TS, ObjectDir
from kumo.object_store.node.updates import queue_expiring
from kumo.object_store.utils import normalize_ts

if TYPE_CHECKING:
    from kumo.object_store.node.app import StorageNode

_HASH = re.compile(r"^[0-9a-f]{32}$")


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> RawResponse:
    return RawResponse(
        status, {"content-type": "application/json", **(headers or {})}, json.dumps(data).encode()
    )


async def handle(node: StorageNode, request: Request, parts: list[str]) -> RawResponse:
    """``parts``: the path after ``/replicate/``."""
    if len(parts) < 4 or not parts[2].isdigit():
        raise SwiftError(400, "Invalid path")
    kind, device, part = parts[0], parts[1], int(parts[2])
    rest = parts[3]
    version = {"x-ring-version": str(node.cluster.ring.version)} if node.cluster is not None else {}
    if kind == "object":
        root = node.device(device)
        part_dir = root / "objects" / str(part)
        if rest == "hashes" and request.method == "POST":
            body = _body(await request.body())
            recalc = {s for s in body.get("recalc", []) if isinstance(s, str)}
            hashes = await anyio.to_thread.run_sync(
                lambda: P.get_hashes(part_dir, recalc, reclaim_age=node.reclaim_age)
            )
            return _json(200, hashes, version)
        if rest == "list" and request.method == "POST":
            body = _body(await request.body())
            listed = await anyio.to_thread.run_sync(P.list_suffixes, part_dir, list(body.get("suffixes", [])))
            return _json(200, listed, version)
        if not _HASH.match(rest):
            raise SwiftError(400, "Invalid hash")
        objdir = ObjectDir(root, part, rest)
        if request.method == "PUT":
            return await _put(node, request, objdir, part)
        if request.method == "POST":
            return await _post(request, objdir)
        raise SwiftError(405)
    if kind in ("account", "container") and request.method == "POST":
        if not _HASH.match(rest):
            raise SwiftError(400, "Invalid hash")
        body = _body(await request.body())
        broker = node.broker_by_hash(kind, device, str(part), rest)
        try:
            result = await anyio.to_thread.run_sync(_db_op, broker, body)
        except (KeyError, TypeError, ValueError, sqlite3.Error) as exc:
            raise SwiftError(400, f"Bad replication request: {exc}") from None
        return _json(200, result, version)
    raise SwiftError(400, "Invalid path")


def _body(raw: bytes) -> dict[str, Any]:
    body = json.loads(raw or b"{}")
    if not isinstance(body, dict):
        raise SwiftError(400, "A JSON object is required")
    return body


def _timestamp(value: str) -> str:
    try:
        ts = float(value)
    except (TypeError, ValueError):
        raise SwiftError(400, "Invalid timestamp") from None
    if not 0 < ts < 1e10:
        raise SwiftError(400, "Invalid timestamp")
    return normalize_ts(ts)


_STAT_KEYS = ("name", "created_at", "put_timestamp", "delete_timestamp")


def _db_op(broker: Any, body: dict[str, Any]) -> dict[str, Any]:
    op = body.get("op")
    if op == "info":
        if not broker.exists():
            return {"id": None}
        return {"id": broker.db_id(), "max_row": broker.max_row(), "stat": broker.stat_dump()}
    if op == "merge":
        stat = body.get("stat")
        if not isinstance(stat, dict) or not all(isinstance(stat.get(k), str) for k in _STAT_KEYS):
            raise SwiftError(400, "stat required")
        for k in _STAT_KEYS[1:]:
            float(stat[k])
        if not isinstance(stat.get("metadata", {}), dict):
            raise SwiftError(400, "stat metadata must be an object")
        rows = body.get("rows") or []
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 6 for r in rows):
            raise SwiftError(400, "rows must be lists of six values")
        broker.merge_stat(stat)
        if rows:
            broker.merge_items(rows)
        return {"id": broker.db_id()}
    raise SwiftError(400, "Unknown op")


async def _put(node: StorageNode, request: Request, objdir: ObjectDir, part: int) -> RawResponse:
    newest = await anyio.to_thread.run_sync(objdir.newest)
    tombstone = request.headers.get("x-backend-tombstone")
    if tombstone:
        tombstone = _timestamp(tombstone)
        if newest is not None and float(newest[0]) >= float(tombstone):
            return RawResponse(409, {"x-backend-timestamp": newest[0]})
        await anyio.to_thread.run_sync(objdir.delete, tombstone)
        return RawResponse(201, {})
    try:
        meta = json.loads(request.headers.get("x-backend-metadata", ""))
        ts = _timestamp(meta["x-timestamp"])
        if ts != meta["x-timestamp"] or not isinstance(meta.get("etag"), str):
            raise ValueError("bad metadata")
    except (ValueError, KeyError, TypeError, SwiftError):
        raise SwiftError(400, "X-Backend-Metadata required") from None
    if newest is not None and float(newest[0]) >= float(ts):
        return RawResponse(409, {"x-backend-timestamp": newest[0]})
    writer = await anyio.to_thread.run_sync(objdir.writer)
    try:
        async for chunk in request.stream():
            writer.write(chunk)
        if writer.md5.hexdigest() != meta.get("etag") or str(writer.size) != meta.get("content-length"):
            raise SwiftError(422)
        await anyio.to_thread.run_sync(writer.commit, meta)
    except BaseException:
        writer.abort()
        raise
    if meta.get("x-delete-at") and meta.get("name"):
        await anyio.to_thread.run_sync(
            queue_expiring, objdir.device_root, meta["x-delete-at"], part, meta["name"], objdir.hash
        )
    return RawResponse(201, {})


async def _post(request: Request, objdir: ObjectDir) -> RawResponse:
    try:
        meta = json.loads(request.headers.get("x-backend-metadata", ""))
        ts, meta_ts = meta["x-timestamp"], meta[META_TS]
    except (ValueError, KeyError, TypeError):
        raise SwiftError(400, "X-Backend-Metadata required") from None
    obj = await anyio.to_thread.run_sync(objdir.open)
    if obj is None or obj.timestamp != ts:
        return RawResponse(404, {})
    if float(obj.metadata.get(META_TS) or 0) >= float(meta_ts):
        return RawResponse(409, {})
    await anyio.to_thread.run_sync(objdir.update_metadata, obj, meta)
    return RawResponse(202, {})
