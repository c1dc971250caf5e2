"""Server-side copy: COPY with Destination, and PUT with X-Copy-From (incl. other containers/accounts)."""

from __future__ import annotations

from urllib.parse import quote, unquote

from kumo.object_store.errors import SwiftError
from kumo.object_store.proxy.types import Handler, Req, Resp, error
from kumo.object_store.utils import truthy

_COPIED = (
    "content-type",
    "content-disposition",
    "content-encoding",
    "x-delete-at",
    "x-object-manifest",
    "x-static-large-object",
)


def _split(value: str, what: str) -> tuple[str, str]:
    path = unquote(value).lstrip("/")
    container, _, obj = path.partition("/")
    if not container or not obj:
        raise SwiftError(412, f"{what} header must be of the form <container name>/<object name>")
    return container, obj


def copy_middleware(app: Handler) -> Handler:
    async def handle(req: Req) -> Resp:
        if req.obj is None:
            return await app(req)
        if req.method == "COPY":
            dest = req.headers.get("destination")
            if not dest:
                return error(412, "You must provide a Destination header.")
            try:
                dc, do = _split(dest, "Destination")
            except SwiftError as err:
                return error(err.status, err.message)
            headers = {
                k: v for k, v in req.headers.items() if k not in ("destination", "destination-account")
            }
            headers["x-copy-from"] = f"/{req.container}/{req.obj}"
            headers["x-copy-from-account"] = req.account
            headers["content-length"] = "0"
            put = Req(
                "PUT",
                req.headers.get("destination-account") or req.account,
                dc,
                do,
                headers,
                dict(req.query),
                b"",
                req.ctx,
                dict(req.environ),
            )
            return await _copy(app, put)
        if req.method == "PUT" and "x-copy-from" in req.headers:
            return await _copy(app, req)
        return await app(req)

    return handle


async def _copy(app: Handler, req: Req) -> Resp:
    try:
        sc, so = _split(req.headers["x-copy-from"], "X-Copy-From")
    except SwiftError as err:
        return error(err.status, err.message)
    length = req.headers.get("content-length")
    if length not in (None, "", "0"):
        return error(400, "Copy requests require a zero byte body")
    src_account = req.headers.get("x-copy-from-account") or req.account
    query = {"multipart-manifest": "get"} if req.query.get("multipart-manifest") == "get" else {}
    src_req = req.sub(
        "GET",
        sc,
        so,
        account=src_account,
        query=query,
        authorized=False,
        headers={
            k: v
            for k, v in req.headers.items()
            if k in ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
        },
    )
    src = await app(src_req)
    if src.status >= 300:
        await src.close()
        return src if src.status != 416 else error(416)
    fresh = truthy(req.headers.get("x-fresh-metadata"))
    headers: dict[str, str] = {}
    for k, v in src.headers.items():
        if k.startswith("x-object-meta-") and not fresh or k in _COPIED:
            headers[k] = v
    if query and src.headers.get("x-static-large-object"):
        headers["x-static-large-object"] = "True"
    else:
        headers.pop("x-static-large-object", None)
        if "x-object-manifest" in headers and not query:
            headers.pop("x-object-manifest")
    for k, v in req.headers.items():
        if k in (
            "x-copy-from",
            "x-copy-from-account",
            "x-fresh-metadata",
            "content-length",
            "etag",
            "transfer-encoding",
        ):
            continue
        headers[k] = v
    if "content-length" in src.headers:
        headers["content-length"] = src.headers["content-length"]
    else:
        headers["transfer-encoding"] = "chunked"
    put = Req("PUT", req.account, req.container, req.obj, headers, {}, src.body, req.ctx, dict(req.environ))
    if query:
        put.environ["slo_raw_copy"] = True
    resp = await app(put)
    if resp.ok:
        for k, v in headers.items():
            if k.startswith("x-object-meta-") or k in (
                "content-type",
                "content-disposition",
                "content-encoding",
            ):
                resp.headers.setdefault(k, v)
        resp.headers["x-copied-from"] = quote(f"{sc}/{so}")
        resp.headers["x-copied-from-account"] = quote(src_account)
        if "last-modified" in src.headers:
            resp.headers["x-copied-from-last-modified"] = src.headers["last-modified"]
    return resp
