"""Bulk operations: delete many objects/containers at once, and upload a tar archive."""

from __future__ import annotations

import json
import tarfile
import tempfile
from typing import Any
from urllib.parse import unquote

from kumo.object_store import constraints as C
from kumo.object_store.proxy.types import Handler, Req, Resp, error

MAX_DELETES = 10000
MAX_FAILED = 1000
INFO_DELETE = {"max_deletes_per_request": MAX_DELETES, "max_failed_deletes": MAX_FAILED}
INFO_UPLOAD = {"max_containers_per_extraction": 10000, "max_failed_extractions": 1000}
_STATUS = {200: "200 OK", 201: "201 Created", 400: "400 Bad Request", 413: "413 Request Entity Too Large"}


def _render(req: Req, result: dict[str, Any]) -> Resp:
    accept = req.headers.get("accept", "")
    if "application/json" in accept:
        return Resp(200, {"content-type": "application/json"}, json.dumps(result).encode())
    if "xml" in accept:
        items = "".join(
            f"<{k.lower().replace(' ', '_')}>{v}</{k.lower().replace(' ', '_')}>"
            for k, v in result.items()
            if k != "Errors"
        )
        return Resp(
            200,
            {"content-type": "application/xml"},
            f'<?xml version="1.0" encoding="UTF-8"?>\n<delete>{items}</delete>'.encode(),
        )
    lines = []
    for k, v in result.items():
        if k == "Errors":
            lines.append("Errors:")
            lines.extend(f"{name}, {status}" for name, status in v)
        else:
            lines.append(f"{k}: {v}")
    return Resp(200, {"content-type": "text/plain"}, ("\n".join(lines) + "\n").encode())


def bulk_middleware(app: Handler) -> Handler:
    async def handle(req: Req) -> Resp:
        if "bulk-delete" in req.query and req.method in ("POST", "DELETE"):
            return await _bulk_delete(app, req)
        if "extract-archive" in req.query and req.method == "PUT":
            return await _extract(app, req)
        return await app(req)

    return handle


async def _bulk_delete(app: Handler, req: Req) -> Resp:
    body = await req.read_body(MAX_DELETES * (C.MAX_OBJECT_NAME_LENGTH + C.MAX_CONTAINER_NAME_LENGTH + 2))
    names = [unquote(line.strip()) for line in body.decode("utf-8", "replace").splitlines() if line.strip()]
    if len(names) > MAX_DELETES:
        return error(413, f"Maximum Bulk Deletes: {MAX_DELETES} per request")
    deleted, not_found, errors = 0, 0, []
    # objects first, then their containers
    names.sort(key=lambda n: "/" not in n.strip("/"))
    for name in names:
        container, _, obj = name.strip("/").partition("/")
        sub = req.sub("DELETE", container, obj or None, authorized=False)
        resp = await app(sub)
        await resp.close()
        if resp.status == 404:
            not_found += 1
        elif resp.ok:
            deleted += 1
        else:
            errors.append([name, f"{resp.status}"])
    status = 200 if not errors else 400
    return _render(
        req,
        {
            "Number Deleted": deleted,
            "Number Not Found": not_found,
            "Response Status": _STATUS[status],
            "Response Body": "",
            "Errors": errors,
        },
    )


async def _extract(app: Handler, req: Req) -> Resp:
    fmt = req.query.get("extract-archive", "")
    mode = {"tar": "r|", "tar.gz": "r|gz", "tgz": "r|gz", "tar.bz2": "r|bz2", "tbz": "r|bz2"}.get(fmt)
    if mode is None:
        return error(400, "Unsupported archive format")
    created, errors = 0, []
    containers_made: set[str] = set()
    with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as spool:
        if isinstance(req.body, bytes):
            spool.write(req.body)
        elif req.body is not None:
            async for chunk in req.body:
                spool.write(chunk)
        spool.seek(0)
        try:
            tar = tarfile.open(fileobj=spool, mode=mode)  # noqa: SIM115
            members = []
            for member in tar:
                if member.isfile():
                    f = tar.extractfile(member)
                    members.append((member.name, f.read() if f else b""))
        except (tarfile.TarError, OSError, EOFError):
            return error(400, "Invalid Tar File")
    base_container = req.container
    base_prefix = (req.obj + "/") if req.obj else ""
    for name, data in members:
        path = name.lstrip("./").lstrip("/")
        if base_container is None:
            container, _, obj = path.partition("/")
        else:
            container, obj = base_container, base_prefix + path
        if not container or not obj:
            continue
        if base_container is None and container not in containers_made:
            r = await app(req.sub("PUT", container, None, authorized=False))
            if not r.ok:
                errors.append([f"/{container}", f"{r.status}"])
                continue
            containers_made.add(container)
        r = await app(
            req.sub(
                "PUT", container, obj, authorized=False, body=data, headers={"content-length": str(len(data))}
            )
        )
        if r.ok:
            created += 1
        else:
            errors.append([f"/{container}/{obj}", f"{r.status}"])
    status = 201 if not errors else 400
    return _render(
        req,
        {
            "Number Files Created": created,
            "Response Status": _STATUS[status],
            "Response Body": "",
            "Errors": errors,
        },
    )
