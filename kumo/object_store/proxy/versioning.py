"""Versioned writes: X-Versions-Location (stack) and X-History-Location (history).

Before an object is overwritten its current version is copied into the versions container
as ``<3-hex-digit name length><name>/<timestamp>``.  In stack mode a DELETE restores the
newest archived version; in history mode a DELETE archives the current one first.
"""

from __future__ import annotations

import json

from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.types import Handler, Req, Resp, error

INFO = {"allowed_flags": ["x-versions-location", "x-history-location"]}
_KEEP_HEADERS = (
    "content-type",
    "content-disposition",
    "content-encoding",
    "x-delete-at",
    "x-object-manifest",
    "x-static-large-object",
    "x-object-sysmeta-slo-size",
    "x-object-sysmeta-slo-etag",
)


def _prefix(obj: str) -> str:
    return f"{len(obj.encode()):03x}{obj}/"


def versioning_middleware(backend: Backend) -> object:
    def wrap(app: Handler) -> Handler:
        async def handle(req: Req) -> Resp:
            if req.container is not None and req.obj is None and req.method in ("PUT", "POST"):
                vl = req.headers.get("x-versions-location")
                hl = req.headers.get("x-history-location")
                if vl and hl:
                    return error(
                        400, "Only one of X-Versions-Location or X-History-Location may be specified"
                    )
                for name in ("x-versions-location", "x-history-location"):
                    value = req.headers.get(name)
                    if value is not None and value.strip():
                        cleaned = value.strip().strip("/")
                        if "/" in cleaned:
                            return error(412, f"{name} header must be a container name")
                        req.headers[name] = cleaned
                if vl:
                    req.headers.setdefault("x-history-location", "")
                if hl:
                    req.headers.setdefault("x-versions-location", "")
                return await app(req)
            if req.obj is None or req.method not in ("PUT", "DELETE") or req.environ.get("versioning_sub"):
                return await app(req)
            cont = await backend.info("container", (req.account, req.container))
            if cont.status >= 300:
                return await app(req)
            stack = cont.headers.get("x-versions-location")
            history = cont.headers.get("x-history-location")
            location = stack or history
            if not location:
                return await app(req)
            if req.method == "PUT":
                denied = await _archive(app, req, location)
                if denied is not None:
                    return denied
                return await app(req)
            if history:
                denied = await _archive(app, req, location)
                if denied is not None:
                    return denied
                return await app(req)
            return await _restore(app, req, location)

        return handle

    return wrap


async def _archive(app: Handler, req: Req, location: str) -> Resp | None:
    assert req.container is not None and req.obj is not None
    cur = await app(
        req.sub("GET", req.container, req.obj, authorized=False, query={"multipart-manifest": "get"})
    )
    if cur.status == 404:
        await cur.close()
        return None
    if not cur.ok:
        await cur.close()
        return cur if cur.status in (401, 403) else None
    ts = cur.headers.get("x-timestamp", "0")
    headers = {k: v for k, v in cur.headers.items() if k in _KEEP_HEADERS or k.startswith("x-object-meta-")}
    headers["content-length"] = cur.headers.get("content-length", "0")
    sub = req.sub("PUT", location, _prefix(req.obj) + ts, authorized=False, headers=headers, body=cur.body)
    sub.environ["versioning_sub"] = True
    put = await app(sub)
    await put.close()
    if not put.ok:
        return error(put.status if put.status in (401, 403, 404) else 503)
    return None


async def _restore(app: Handler, req: Req, location: str) -> Resp:
    assert req.container is not None and req.obj is not None
    lst = await app(
        req.sub(
            "GET",
            location,
            None,
            authorized=False,
            query={"format": "json", "prefix": _prefix(req.obj), "reverse": "true", "limit": "1"},
        )
    )
    rows = json.loads(await lst.read()) if lst.status == 200 else []
    if not rows:
        return await app(req)
    # authorize the delete itself before shuffling versions around
    version = rows[0]["name"]
    old = await app(req.sub("GET", location, version, authorized=False))
    if not old.ok:
        await old.close()
        return await app(req)
    headers = {k: v for k, v in old.headers.items() if k in _KEEP_HEADERS or k.startswith("x-object-meta-")}
    headers["content-length"] = old.headers.get("content-length", "0")
    sub = req.sub("PUT", req.container, req.obj, authorized=False, headers=headers, body=old.body)
    sub.environ["versioning_sub"] = True
    put = await app(sub)
    await put.close()
    if not put.ok:
        return put
    rm = await app(req.sub("DELETE", location, version, authorized=False))
    await rm.close()
    return Resp(204, {"content-type": "text/html; charset=UTF-8"}, b"")
