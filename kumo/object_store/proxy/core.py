"""The proxy server proper: Swift's account, container and object operations over the ring."""

from __future__ import annotations

import asyncio
import json
import mimetypes
from typing import Any

from kumo.object_store import constraints as C
from kumo.object_store.errors import SwiftError
from kumo.object_store.proxy import checks, listing
from kumo.object_store.proxy.backend import Backend, NodeResponse, best_status
from kumo.object_store.proxy.types import Req, Resp, error, text
from kumo.object_store.utils import http_date, normalize_ts, now_ts, parse_http_date, truthy

_OBJ_PASS = (
    "content-type",
    "content-disposition",
    "content-encoding",
    "x-delete-at",
    "x-object-manifest",
    "x-static-large-object",
    "etag",
    "content-length",
    "transfer-encoding",
    "if-none-match",
    "x-symlink-target",
    "x-symlink-target-account",
)
_DB_PASS_PREFIX = (
    "x-container-meta-",
    "x-account-meta-",
    "x-container-sysmeta-",
    "x-account-sysmeta-",
    "x-object-meta-",
    "x-object-sysmeta-",
    "x-object-transient-sysmeta-",
)
_DB_PASS = (
    "x-container-read",
    "x-container-write",
    "x-versions-location",
    "x-history-location",
    "x-storage-policy",
    "x-account-access-control",
    "x-container-sync-to",
    "x-container-sync-key",
)
_HIDDEN_FOR_OTHERS = ("x-container-read", "x-container-write", "x-container-sync-key", "x-container-sync-to")


def _pass(headers: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k in names or k.startswith(_DB_PASS_PREFIX)}


class _Totals:
    """A container's account update in flight, and the writes waiting for the next one."""

    def __init__(self) -> None:
        self.running = False
        self.stats: dict[str, str] = {}
        self.waiters: list[asyncio.Future[None]] = []


class Proxy:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._tasks: set[asyncio.Task[Any]] = set()
        self._totals: dict[tuple[str, str], _Totals] = {}

    async def __call__(self, req: Req) -> Resp:
        try:
            if req.obj is not None:
                return await self.object(req)
            if req.container is not None:
                return await self.container(req)
            return await self.account(req)
        except SwiftError as err:
            return error(err.status, err.message, err.headers)

    # ---- shared lookups ------------------------------------------------------------------------

    async def account_info(self, account: str) -> dict[str, str] | None:
        resp = await self.backend.first("account", (account,), "HEAD")
        return resp.headers if resp.status < 300 else None

    async def container_info(
        self, account: str, container: str, *, cached: bool = False
    ) -> dict[str, str] | None:
        """The container's HEAD; ``cached`` (object requests) may take it from the proxy's short-lived
        cache, which counts do not matter for, only ACLs and settings."""
        resp = await self.backend.info("container", (account, container), fresh=not cached)
        return resp.headers if resp.status < 300 else None

    def authorize(self, req: Req, container_info: dict[str, str] | None = None) -> Resp | None:
        if req.environ.get("authorized"):
            return None
        fn = req.environ.get("authorize")
        if fn is None:
            return error(401)
        return fn(req, container_info)

    async def ensure_account(self, account: str) -> None:
        if await self.account_info(account) is None:
            resps = await self.backend.all("account", (account,), "PUT", {"x-timestamp": now_ts()})
            status = best_status([r.status for r in resps if r], len(resps))
            if status >= 300:
                raise SwiftError(503)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- accounts ------------------------------------------------------------------------------

    async def account(self, req: Req) -> Resp:
        denied = self.authorize(req)
        if denied is not None:
            return denied
        a = req.account
        if req.method in ("GET", "HEAD"):
            query = {}
            if req.method == "GET":
                fmt = listing.pick_format(req.query, req.headers.get("accept"))
                limit = checks.limit(req.query, C.ACCOUNT_LISTING_LIMIT)
                query = {
                    k: req.query[k]
                    for k in ("marker", "end_marker", "prefix", "delimiter", "reverse")
                    if k in req.query
                }
                query["limit"] = str(limit)
            resp = await self.backend.first("account", (a,), req.method, query=query)
            if resp.status == 404:
                headers = {
                    "x-account-container-count": "0",
                    "x-account-object-count": "0",
                    "x-account-bytes-used": "0",
                    "x-timestamp": now_ts(),
                    "x-put-timestamp": now_ts(),
                }
                rows: list[dict[str, Any]] = []
            elif resp.status >= 300:
                return error(resp.status)
            else:
                headers = _db_headers(resp.headers)
                rows = json.loads(resp.body) if req.method == "GET" else []
            count = headers.get("x-account-container-count", "0")
            pol = C.DEFAULT_POLICY.lower()
            headers.update(
                {
                    f"x-account-storage-policy-{pol}-container-count": count,
                    f"x-account-storage-policy-{pol}-object-count": headers["x-account-object-count"],
                    f"x-account-storage-policy-{pol}-bytes-used": headers["x-account-bytes-used"],
                }
            )
            if req.method == "HEAD":
                headers["content-type"] = "text/plain; charset=utf-8"
                return Resp(204, headers)
            body, ctype = listing.render("account", a, listing.account_rows(rows), fmt)
            headers["content-type"] = ctype
            if not rows and fmt == "plain":
                return Resp(204, headers)
            return Resp(200, headers, body)
        if req.method == "POST":
            headers = checks.removals(req.headers, "account")
            checks.metadata(headers, "account")
            await self.ensure_account(a)
            fwd = _pass(headers, _DB_PASS)
            fwd["x-timestamp"] = now_ts()
            resps = await self.backend.all("account", (a,), "POST", fwd)
            status = best_status([r.status for r in resps if r], len(resps))
            return text(204 if status < 300 else status, b"")
        if req.method in ("PUT", "DELETE"):
            return error(405, headers={"allow": "GET, HEAD, POST"})
        return error(405)

    # ---- containers ----------------------------------------------------------------------------

    async def container(self, req: Req) -> Resp:
        a, c = req.account, req.container
        assert c is not None
        if req.method == "PUT":
            checks.container_name(c)
            if not c:
                return error(400, "Container name cannot be empty")
            denied = self.authorize(req)
            if denied is not None:
                return denied
            headers = checks.removals(req.headers, "container")
            checks.metadata(headers, "container")
            policy = headers.get("x-storage-policy")
            if policy is not None and policy.strip().lower() != C.DEFAULT_POLICY.lower():
                return error(400, f'Invalid X-Storage-Policy "{policy}"')
            info = await self.container_info(a, c)
            if (
                info is not None
                and policy is not None
                and info.get("x-backend-storage-policy") not in ("", None, C.DEFAULT_POLICY)
            ):
                return error(409)
            await self.ensure_account(a)
            fwd = _pass(headers, _DB_PASS)
            fwd["x-timestamp"] = now_ts()
            fwd["x-storage-policy"] = C.DEFAULT_POLICY
            resps = await self.backend.all("container", (a, c), "PUT", fwd)
            status = best_status([r.status for r in resps if r], len(resps))
            if status >= 300:
                return error(status)
            good = [r for r in resps if r and r.status < 300]
            await self._account_update(a, c, good[0].headers)
            return text(201 if any(r.status == 201 for r in good) else 202, b"")
        info = await self.container_info(a, c)
        denied = self.authorize(req, info)
        if denied is not None:
            return denied
        if info is None:
            return error(404)
        if req.method in ("GET", "HEAD"):
            return await self._container_get(req, info)
        if req.method == "POST":
            headers = checks.removals(req.headers, "container")
            checks.metadata(headers, "container")
            fwd = _pass(headers, _DB_PASS)
            fwd.pop("x-storage-policy", None)
            fwd["x-timestamp"] = now_ts()
            resps = await self.backend.all("container", (a, c), "POST", fwd)
            status = best_status([r.status for r in resps if r], len(resps))
            return text(204, b"") if status < 300 else error(status)
        if req.method == "DELETE":
            resps = await self.backend.all("container", (a, c), "DELETE", {"x-timestamp": now_ts()})
            status = best_status([r.status for r in resps if r], len(resps))
            if status >= 300:
                return error(status)
            good = [r for r in resps if r and r.status < 300]
            await self._account_update(a, c, good[0].headers)
            return text(204, b"")
        return error(405)

    async def _container_get(self, req: Req, info: dict[str, str]) -> Resp:
        a, c = req.account, req.container
        assert c is not None
        rows: list[dict[str, Any]] = []
        fmt = "plain"
        passthrough: bytes | None = None
        if req.method == "GET":
            fmt = listing.pick_format(req.query, req.headers.get("accept"))
            limit = checks.limit(req.query, C.CONTAINER_LISTING_LIMIT)
            query = {
                k: req.query[k]
                for k in ("marker", "end_marker", "prefix", "delimiter", "reverse")
                if k in req.query
            }
            if "path" in req.query:
                path = req.query["path"]
                query["prefix"] = path.rstrip("/") + "/" if path else ""
                query["delimiter"] = "/"
            query["limit"] = str(limit)
            resp = await self.backend.first("container", (a, c), "GET", query=query,
                                            headers={listing.READY: "swift"})  # fmt: skip
            if resp.status >= 300:
                return error(resp.status)
            ready = resp.headers.get(listing.READY) == "swift"
            if ready and fmt == "json" and "path" not in req.query:
                passthrough = resp.body  # the node's rows are the answer as they are
            else:
                rows = json.loads(resp.body)
                if not ready:
                    rows = listing.container_rows(rows)
                if "path" in req.query:
                    rows = [r for r in rows if "subdir" not in r]
            info = resp.headers
        headers = _db_headers(info)
        headers["x-storage-policy"] = C.DEFAULT_POLICY
        if not req.environ.get("is_owner"):
            for h in _HIDDEN_FOR_OTHERS:
                headers.pop(h, None)
        if req.method == "HEAD":
            headers["content-type"] = "text/plain; charset=utf-8"
            return Resp(204, headers)
        if passthrough is not None:
            body, ctype = passthrough, "application/json; charset=utf-8"
        else:
            body, ctype = listing.render("container", c, rows, fmt)
        headers["content-type"] = ctype
        if not rows and fmt == "plain":
            return Resp(204, headers)
        return Resp(200, headers, body)

    async def _account_update(self, a: str, c: str, stats: dict[str, str]) -> None:
        fwd = {
            "x-put-timestamp": stats.get("x-put-timestamp", "0"),
            "x-delete-timestamp": stats.get("x-delete-timestamp", "0"),
            "x-object-count": stats.get("x-container-object-count", "0"),
            "x-bytes-used": stats.get("x-container-bytes-used", "0"),
            "x-timestamp": now_ts(),
        }
        await self.backend.all("account", (a, c), "PUT", fwd)

    async def listing_updated(self, a: str, c: str, resps: list[NodeResponse | None]) -> None:
        """The object nodes told the container; pass its new totals on to the account.

        When no container replica took the update (they are down), the object nodes keep it
        as an async pending and their updater sends it, and the account totals, later.
        """
        for r in resps:
            if r is not None and r.headers.get("x-backend-container-update") == "ok":
                stats = {
                    k: r.headers.get("x-backend-container-" + k[2:], "0")
                    for k in (
                        "x-put-timestamp",
                        "x-delete-timestamp",
                        "x-container-object-count",
                        "x-container-bytes-used",
                    )
                }
                await self._account_totals(a, c, stats)
                return

    async def _account_totals(self, a: str, c: str, stats: dict[str, str]) -> None:
        """Pass a container's totals to the account, coalesced: while one update of this container
        is on its way, the writes that finish meanwhile wait for the next one, which carries the
        newest totals (they are absolute figures, so the newest covers all of them).  Each caller
        still returns only once the account has totals at least as new as its own write's."""
        key = (a, c)
        pending = self._totals.get(key)
        if pending is None:
            pending = self._totals[key] = _Totals()
        waiter = asyncio.get_running_loop().create_future()
        pending.stats = stats
        pending.waiters.append(waiter)
        if not pending.running:
            pending.running = True
            self._spawn(self._send_totals(key, pending))
        await waiter

    async def _send_totals(self, key: tuple[str, str], pending: _Totals) -> None:
        try:
            while pending.waiters:
                waiters, pending.waiters = pending.waiters, []
                try:
                    await self._account_update(key[0], key[1], pending.stats)
                finally:
                    for w in waiters:
                        if not w.done():
                            w.set_result(None)
        finally:
            pending.running = False
            for w in pending.waiters:  # cancelled midway (shutdown): release whoever still waits
                if not w.done():
                    w.set_result(None)
            pending.waiters = []
            if self._totals.get(key) is pending:
                del self._totals[key]

    # ---- objects -------------------------------------------------------------------------------

    async def object(self, req: Req) -> Resp:
        a, c, o = req.account, req.container, req.obj
        assert c is not None and o is not None
        checks.object_name(o)
        info = await self.container_info(a, c, cached=True)
        denied = self.authorize(req, info)
        if denied is not None:
            return denied
        if info is None:
            return error(404)
        method = req.method
        if method in ("GET", "HEAD"):
            return await self.get_object(req)
        if method == "PUT":
            return await self.put_object(req, info)
        if method == "POST":
            headers = checks.removals(req.headers, "object")
            checks.metadata(headers, "object")
            checks.delete_at(headers)
            fwd = _pass(headers, _OBJ_PASS)
            for h in (
                "etag",
                "content-length",
                "transfer-encoding",
                "if-none-match",
                "x-static-large-object",
            ):
                fwd.pop(h, None)
            fwd["x-timestamp"] = now_ts()
            resps = await self.backend.all("object", (a, c, o), "POST", fwd)
            status = best_status([r.status for r in resps if r], len(resps))
            if status >= 300:
                return error(status)
            return Resp(
                202,
                {"content-type": "text/html; charset=UTF-8"},
                b"<html><h1>Accepted</h1><p>The request is accepted for processing.</p></html>",
            )
        if method == "DELETE":
            ts = req.environ.get("sync_timestamp") or now_ts()  # container sync keeps the sender's
            resps = await self.backend.all("object", (a, c, o), "DELETE", {"x-timestamp": ts})
            statuses = [r.status for r in resps if r]
            await self.listing_updated(a, c, resps)
            if any(s == 204 for s in statuses):
                return text(204, b"")
            status = best_status(statuses, len(resps))
            if status == 404 or 404 in statuses:
                return error(404)
            return error(status)
        return error(405)

    async def get_object(self, req: Req) -> Resp:
        a, c, o = req.account, req.container, req.obj
        assert c is not None and o is not None
        fwd = {
            k: v
            for k, v in req.headers.items()
            if k in ("range", "x-backend-ignore-range-if-metadata-present")
        }
        node = await self.backend.first("object", (a, c, o), req.method, fwd)
        if node.status == 404 and node.headers.get("x-backend-expired"):
            self._spawn(self._reap(a, c, o, node.headers.get("x-delete-at", "")))
        if node.status == 416:
            await node.close()
            return Resp(
                416,
                {
                    "content-type": "text/html; charset=UTF-8",
                    "content-range": node.headers.get("content-range", ""),
                },
                b"<html><h1>Requested Range Not Satisfiable</h1>"
                b"<p>The Range requested is not available.</p></html>",
            )
        if node.status >= 300:
            await node.close()
            return error(node.status)
        headers = _object_headers(node)
        cond = conditional(req, headers)
        if cond is not None:
            await node.close()
            return cond
        return Resp(node.status, headers, node.iter() if req.method == "GET" else b"")

    async def _reap(self, a: str, c: str, o: str, delete_at: str) -> None:
        ts = now_ts()
        resps = await self.backend.all(
            "object", (a, c, o), "DELETE", {"x-timestamp": ts, "x-if-delete-at": delete_at}
        )
        await self.listing_updated(a, c, resps)

    async def put_object(self, req: Req, info: dict[str, str]) -> Resp:
        a, c, o = req.account, req.container, req.obj
        assert c is not None and o is not None
        headers = checks.removals(dict(req.headers), "object")
        inm = headers.get("if-none-match")
        if inm is not None and inm.strip() != "*":
            return error(400, "If-None-Match only supports *")
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if length is None and not chunked and not isinstance(req.body, bytes):
            return error(411, "Missing Content-Length header.")
        if isinstance(req.body, bytes) and not chunked:
            length = headers["content-length"] = str(len(req.body))
        if length is not None and not chunked:
            if not length.isdigit():
                return error(400, "Invalid Content-Length header value")
            if int(length) > C.MAX_FILE_SIZE:
                return error(413, "Your request is too large.")
        checks.metadata(headers, "object")
        checks.delete_at(headers)
        ctype = headers.get("content-type")
        if not ctype or truthy(headers.get("x-detect-content-type")):
            ctype = mimetypes.guess_type(o)[0] or "application/octet-stream"
        if ";" in ctype and "swift_bytes" in ctype:
            ctype = ";".join(p for p in ctype.split(";") if "swift_bytes" not in p)
        headers["content-type"] = ctype
        fwd = _pass(headers, _OBJ_PASS)
        if chunked:
            fwd.pop("content-length", None)
        ts = req.environ.get("sync_timestamp") or now_ts()  # container sync keeps the sender's
        fwd["x-timestamp"] = ts
        listed_type = ctype + req.environ.get("symlink_ctype_suffix", "")
        if listed_type != ctype:
            fwd["x-backend-container-content-type"] = listed_type
        body = req.body if req.body is not None else b""
        resps = await self.backend.put_stream((a, c, o), fwd, body)
        # A node that answers 409 with this very X-Timestamp already holds this write: a peer's
        # replicator copied it there before the proxy's own PUT reached that node.  It counts
        # as a success for that node, not as a conflict.
        dups = [i for i, r in enumerate(resps) if r is not None and _same_write(r, ts)]
        for i in dups:
            resps[i] = NodeResponse(201, {"x-backend-timestamp": ts})
        statuses = [r.status for r in resps if r]
        status = best_status(statuses, len(resps))
        if status >= 300:
            if 422 in statuses:
                return error(422)
            if 412 in statuses:
                return error(412)
            if 499 in statuses:
                return error(499)
            return error(status)
        good = [r for r in resps if r and r.status < 300]
        etag = next((r.headers["etag"] for r in good if r.headers.get("etag")), "")
        await self.listing_updated(a, c, good)
        if dups:
            etag = await self._duplicate_write(a, c, o, ts, listed_type) or etag
        return Resp(
            201,
            {
                "content-type": "text/html; charset=UTF-8",
                "etag": etag,
                "last-modified": http_date(ts),
                "x-timestamp": normalize_ts(ts),
            },
            b"",
        )

    async def _duplicate_write(self, a: str, c: str, o: str, ts: str, listed_type: str) -> str:
        """After nodes reported this write as already there: its ETag, and the container rows.

        Those nodes sent no listing update for it (the replicated copy carries none), so the
        proxy tells the container replicas itself; rows merge by timestamp, a repeat is harmless.
        """
        head = await self.backend.first("object", (a, c, o), "HEAD")
        if head.status >= 300 or not _same_ts(head.headers.get("x-backend-timestamp", ""), ts):
            return ""  # a newer write already replaced it: that one updates the listing
        etag = head.headers.get("etag", "")
        update = {
            "x-timestamp": ts,
            "x-size": head.headers.get("content-length", "0"),
            "x-content-type": listed_type,
            "x-etag": etag,
        }
        resps = await self.backend.all("container", (a, c, o), "PUT", update)
        good = [r for r in resps if r is not None and r.status < 300]
        if good:
            await self._account_update(a, c, good[0].headers)
        return etag


def _same_ts(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _same_write(resp: NodeResponse, ts: str) -> bool:
    return resp.status == 409 and _same_ts(resp.headers.get("x-backend-timestamp", ""), ts)


def _db_headers(headers: dict[str, str]) -> dict[str, str]:
    out = {
        k: v
        for k, v in headers.items()
        if not k.startswith("x-backend-")
        and k not in ("content-length", "content-type", "x-delete-timestamp", "date", "server")
    }
    return out


def _object_headers(node: NodeResponse) -> dict[str, str]:
    return {k: v for k, v in node.headers.items() if k not in ("date", "server", "x-backend-timestamp")}


def conditional(req: Req, headers: dict[str, str]) -> Resp | None:
    """If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since for GET/HEAD."""
    etag = headers.get("etag", "").strip('"')
    lm = parse_http_date(headers.get("last-modified", "")) or 0
    keep = {
        k: v
        for k, v in headers.items()
        if k in ("etag", "last-modified", "x-timestamp", "content-type") or k.startswith("x-object-meta-")
    }
    if_match = req.headers.get("if-match")
    if if_match is not None:
        tags = [t.strip().strip('"') for t in if_match.split(",")]
        if "*" not in tags and etag not in tags:
            return Resp(
                412,
                {**keep, "content-type": "text/html; charset=UTF-8"},
                b"<html><h1>Precondition Failed</h1><p>A precondition for this request was not met.</p></html>",
            )
    inm = req.headers.get("if-none-match")
    if inm is not None:
        tags = [t.strip().strip('"') for t in inm.split(",")]
        if "*" in tags or etag in tags:
            return Resp(304, keep)
    ims = req.headers.get("if-modified-since")
    if ims is not None and inm is None:
        when = parse_http_date(ims)
        if when is not None and lm <= when:
            return Resp(304, keep)
    ius = req.headers.get("if-unmodified-since")
    if ius is not None and if_match is None:
        when = parse_http_date(ius)
        if when is not None and lm > when:
            return Resp(
                412,
                {**keep, "content-type": "text/html; charset=UTF-8"},
                b"<html><h1>Precondition Failed</h1><p>A precondition for this request was not met.</p></html>",
            )
    return None
