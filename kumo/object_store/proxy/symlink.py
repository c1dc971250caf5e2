"""Symlinks: an empty object with X-Symlink-Target that GET and HEAD follow."""

from __future__ import annotations

from urllib.parse import quote, unquote

from kumo.object_store.proxy.types import Handler, Req, Resp, error

MAX_HOPS = 2
INFO = {"symloop_max": MAX_HOPS}


def symlink_middleware(app: Handler) -> Handler:
    async def handle(req: Req) -> Resp:
        if req.obj is None:
            return await app(req)
        if req.method == "PUT" and "x-symlink-target" in req.headers:
            target = unquote(req.headers["x-symlink-target"]).lstrip("/")
            container, _, obj = target.partition("/")
            if not container or not obj:
                return error(
                    412, "X-Symlink-Target header must be of the form <container name>/<object name>"
                )
            if req.headers.get("content-length") not in (None, "0") or (
                isinstance(req.body, bytes) and req.body
            ):
                return error(400, "Symlink requests require a zero byte body")
            req.headers["x-symlink-target"] = f"{container}/{obj}"
            acct = req.headers.get("x-symlink-target-account") or req.account
            req.environ["symlink_ctype_suffix"] = (
                f";symlink_target={quote(container + '/' + obj)};symlink_target_account={quote(acct)}"
            )
            return await app(req)
        if req.method not in ("GET", "HEAD") or req.query.get("symlink") == "get":
            return await app(req)
        resp = await app(req)
        hops = 0
        while resp.ok and "x-symlink-target" in resp.headers and hops < MAX_HOPS:
            hops += 1
            await resp.close()
            target = resp.headers["x-symlink-target"]
            account = resp.headers.get("x-symlink-target-account") or req.account
            container, _, obj = target.partition("/")
            sub = req.sub(
                req.method,
                container,
                obj,
                account=account,
                authorized=False,
                headers={
                    k: v
                    for k, v in req.headers.items()
                    if k in ("range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
                },
            )
            resp = await app(sub)
            resp.headers["content-location"] = f"/v1/{account}/{quote(target)}"
        if resp.ok and "x-symlink-target" in resp.headers:
            await resp.close()
            return error(409, "Too many levels of symbolic links")
        return resp

    return handle
