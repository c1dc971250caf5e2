"""Dynamic large objects: a manifest (X-Object-Manifest: container/prefix) serves its segments."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import unquote

from kumo.object_store.proxy.segments import Segment, respond
from kumo.object_store.proxy.types import Handler, Req, Resp, error

IGNORE_RANGE = "x-backend-ignore-range-if-metadata-present"


def dlo_middleware(app: Handler) -> Handler:
    async def handle(req: Req) -> Resp:
        if req.obj is None:
            return await app(req)
        if req.method == "PUT" and "x-object-manifest" in req.headers:
            value = unquote(req.headers["x-object-manifest"])
            if "/" not in value.lstrip("/") or value.startswith("/"):
                return error(400, "X-Object-Manifest must be in the format container/prefix")
        if req.method not in ("GET", "HEAD") or req.query.get("multipart-manifest") == "get":
            return await app(req)
        req.headers[IGNORE_RANGE] = _add(req.headers.get(IGNORE_RANGE), "x-object-manifest")
        resp = await app(req)
        manifest = resp.headers.get("x-object-manifest")
        if not resp.ok or manifest is None or resp.headers.get("x-static-large-object"):
            return resp
        await resp.close()
        container, _, prefix = unquote(manifest).partition("/")
        segments, etags = await _list(app, req, container, prefix)
        if segments is None:
            return error(409)
        headers = {
            k: v for k, v in resp.headers.items() if k not in ("content-length", "content-range", "etag")
        }
        headers["etag"] = '"' + hashlib.md5("".join(etags).encode()).hexdigest() + '"'
        return respond(app, req, segments, headers)

    return handle


def _add(existing: str | None, name: str) -> str:
    return f"{existing},{name}" if existing else name


async def _list(
    app: Handler, req: Req, container: str, prefix: str
) -> tuple[list[Segment] | None, list[str]]:
    segments: list[Segment] = []
    etags: list[str] = []
    marker = ""
    while True:
        sub = req.sub(
            "GET",
            container,
            None,
            authorized=False,
            query={"format": "json", "prefix": prefix, "marker": marker},
        )
        resp = await app(sub)
        if resp.status in (204, 404):
            await resp.close()
            break
        if not resp.ok:
            await resp.close()
            return None, []
        rows = json.loads(await resp.read())
        if not rows:
            break
        for row in rows:
            if "name" not in row:
                continue
            segments.append(Segment(container, row["name"], int(row["bytes"])))
            etags.append(row["hash"])
        marker = rows[-1].get("name", marker)
        if len(rows) < 10000:
            break
    return segments, etags
