"""Static large objects: a JSON manifest of segments, validated on upload.

``?multipart-manifest=put`` uploads a manifest (segments are checked: they must exist and
match the given etag and size), ``=get`` returns the stored manifest, ``=delete`` deletes
the manifest and its segments.  A GET of the manifest serves the segments' bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import unquote

from kumo.object_store import constraints as C
from kumo.object_store.proxy.dlo import IGNORE_RANGE, _add
from kumo.object_store.proxy.listing import iso
from kumo.object_store.proxy.segments import Segment, respond
from kumo.object_store.proxy.types import Handler, Req, Resp, error, text
from kumo.object_store.utils import parse_http_date, truthy

SYSMETA_SIZE = "x-object-sysmeta-slo-size"
SYSMETA_ETAG = "x-object-sysmeta-slo-etag"


def slo_middleware(app: Handler) -> Handler:
    async def handle(req: Req) -> Resp:
        if req.obj is None:
            return await app(req)
        mm = req.query.get("multipart-manifest")
        if req.method == "PUT":
            if mm == "put":
                return await _put_manifest(app, req)
            if "x-static-large-object" in req.headers and not req.environ.get("slo_raw_copy"):
                return error(
                    400,
                    "X-Static-Large-Object is a reserved header. To create a static large object "
                    "add query param multipart-manifest=put.",
                )
            return await app(req)
        if req.method == "DELETE" and mm == "delete":
            return await _delete(app, req)
        if req.method not in ("GET", "HEAD"):
            return await app(req)
        if mm != "get":
            req.headers[IGNORE_RANGE] = _add(req.headers.get(IGNORE_RANGE), "x-static-large-object")
        resp = await app(req)
        if not resp.ok or not truthy(resp.headers.get("x-static-large-object")):
            return resp
        if mm == "get":
            return await _manifest_listing(req, resp)
        headers = {
            k: v for k, v in resp.headers.items() if k not in ("content-length", "content-range", "etag")
        }
        if req.method == "HEAD" and SYSMETA_SIZE in resp.headers and SYSMETA_ETAG in resp.headers:
            headers["etag"] = f'"{resp.headers[SYSMETA_ETAG]}"'
            headers["content-length"] = resp.headers[SYSMETA_SIZE]
            return Resp(200, headers, b"")
        if req.method == "HEAD":
            resp = await app(
                req.sub("GET", req.container, req.obj, authorized=False, query={"multipart-manifest": "get"})
            )
        try:
            manifest = json.loads(await resp.read())
        except ValueError:
            return error(500, "Unreadable manifest")
        headers["etag"] = '"' + resp.headers.get(SYSMETA_ETAG, _slo_etag(manifest)) + '"'
        segs = [Segment(*_split(m["name"]), size=_seg_size(m), offset=_seg_offset(m)) for m in manifest]
        return respond(app, req, segs, headers)

    return handle


def _split(path: str) -> tuple[str, str]:
    container, _, obj = path.lstrip("/").partition("/")
    return container, obj


def _seg_size(m: dict[str, Any]) -> int:
    if "range" in m:
        start, _, end = m["range"].partition("-")
        return int(end) - int(start) + 1
    return int(m["bytes"])


def _seg_offset(m: dict[str, Any]) -> int:
    return int(m["range"].partition("-")[0]) if "range" in m else 0


def _slo_etag(manifest: list[dict[str, Any]]) -> str:
    md5 = hashlib.md5()
    for m in manifest:
        md5.update(m["hash"].encode())
        if "range" in m:
            md5.update(f":{m['range']};".encode())
    return md5.hexdigest()


async def _manifest_listing(req: Req, resp: Resp) -> Resp:
    data = await resp.read()
    headers = {k: v for k, v in resp.headers.items() if k not in ("content-length",)}
    if req.query.get("format") == "raw":
        manifest = json.loads(data)
        raw = [
            {
                "path": m["name"],
                "etag": m["hash"],
                "size_bytes": m["bytes"],
                **({"range": m["range"]} if "range" in m else {}),
            }
            for m in manifest
        ]
        data = json.dumps(raw).encode()
    headers["content-type"] = "application/json; charset=utf-8"
    headers["content-length"] = str(len(data))
    return Resp(200, headers, data if req.method == "GET" else b"")


async def _put_manifest(app: Handler, req: Req) -> Resp:
    raw = await req.read_body(C.MAX_MANIFEST_SIZE)
    try:
        parsed = json.loads(raw)
    except ValueError:
        return error(400, "Manifest must be valid JSON.\n")
    if not isinstance(parsed, list) or not parsed:
        return error(
            400,
            "Manifest must be a list.\n"
            if not isinstance(parsed, list)
            else "Manifest must have at least one segment.\n",
        )
    if len(parsed) > C.MAX_MANIFEST_SEGMENTS:
        return error(400, f"Too many segments; max {C.MAX_MANIFEST_SEGMENTS}.\n")
    problems: list[str] = []
    manifest: list[dict[str, Any]] = []
    for i, seg in enumerate(parsed):
        if (
            not isinstance(seg, dict)
            or not isinstance(seg.get("path"), str)
            or "/" not in seg["path"].strip("/")
        ):
            problems.append(f"Index {i}: invalid or missing path")
            continue
        path = unquote(seg["path"]) if "%" in seg["path"] else seg["path"]
        container, obj = _split(path)
        head = await app(req.sub("HEAD", container, obj, authorized=False))
        if head.status == 404:
            problems.append(f"/{container}/{obj}, 404 Not Found")
            continue
        if not head.ok:
            problems.append(f"/{container}/{obj}, {head.status}")
            continue
        size = int(head.headers.get("content-length", "0"))
        etag = head.headers.get("etag", "").strip('"')
        want_etag = seg.get("etag")
        want_size = seg.get("size_bytes")
        if want_etag and want_etag.strip('"') != etag:
            problems.append(f"/{container}/{obj}, Etag Mismatch")
        if want_size is not None and int(want_size) != size:
            problems.append(f"/{container}/{obj}, Size Mismatch")
        if size < C.MIN_SEGMENT_SIZE and i < len(parsed) - 1:
            problems.append(
                f"/{container}/{obj}, Too Small; each segment must be at least {C.MIN_SEGMENT_SIZE} byte."
            )
        entry = {
            "name": f"/{container}/{obj}",
            "bytes": size,
            "hash": etag,
            "content_type": head.headers.get("content-type", ""),
            "last_modified": iso(str(parse_http_date(head.headers.get("last-modified", "")) or 0)),
        }
        if seg.get("range"):
            start, _, end = str(seg["range"]).partition("-")
            try:
                s, e = int(start or 0), int(end) if end else size - 1
            except ValueError:
                problems.append(f"Index {i}: invalid range")
                continue
            if s > e or e >= size:
                problems.append(f"Index {i}: unsatisfiable range")
                continue
            entry["range"] = f"{s}-{e}"
        manifest.append(entry)
    if problems:
        return text(400, "Errors:\n" + "\n".join(problems))
    total = sum(_seg_size(m) for m in manifest)
    slo_etag = _slo_etag(manifest)
    if req.headers.get("etag") and req.headers["etag"].strip('"') != slo_etag:
        return error(422)
    body = json.dumps(manifest).encode()
    headers = {k: v for k, v in req.headers.items() if k not in ("etag", "transfer-encoding")}
    headers.update(
        {
            "content-length": str(len(body)),
            "x-static-large-object": "True",
            SYSMETA_SIZE: str(total),
            SYSMETA_ETAG: slo_etag,
        }
    )
    headers.setdefault("content-type", "application/octet-stream")
    put = Req("PUT", req.account, req.container, req.obj, headers, {}, body, req.ctx, dict(req.environ))
    put.environ["slo_raw_copy"] = True
    resp = await app(put)
    if resp.ok:
        resp.headers["etag"] = f'"{slo_etag}"'
    return resp


async def _delete(app: Handler, req: Req) -> Resp:
    get = req.sub("GET", req.container, req.obj, authorized=False, query={"multipart-manifest": "get"})
    resp = await app(get)
    deleted, not_found, errors = 0, 0, []
    if resp.ok and truthy(resp.headers.get("x-static-large-object")):
        for m in json.loads(await resp.read()):
            c, o = _split(m["name"])
            r = await app(req.sub("DELETE", c, o, authorized=False))
            if r.status == 404:
                not_found += 1
            elif r.ok:
                deleted += 1
            else:
                errors.append([m["name"], str(r.status)])
    else:
        await resp.close()
        if resp.status not in (200, 404):
            return resp
    r = await app(req.sub("DELETE", req.container, req.obj, authorized=False))
    if r.ok:
        deleted += 1
    elif r.status == 404:
        not_found += 1
    status = "200 OK" if not errors else "400 Bad Request"
    result = {
        "Number Deleted": deleted,
        "Number Not Found": not_found,
        "Response Status": status,
        "Response Body": "",
        "Errors": errors,
    }
    if "json" in req.headers.get("accept", ""):
        return Resp(200, {"content-type": "application/json"}, json.dumps(result).encode())
    lines = [f"{k}: {v if not isinstance(v, list) else ''}" for k, v in result.items()]
    return text(200, "\n".join(lines) + "\n")
