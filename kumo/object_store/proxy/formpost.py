"""FormPost: browsers upload objects with an HTML form signed by a TempURL key."""

from __future__ import annotations

import hmac
import re
import time
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import quote

from kumo.common.context import RequestContext
from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.tempurl import DIGESTS, _digest, _keys
from kumo.object_store.proxy.types import Handler, Req, Resp, error, text

MAX_FORM = 256 * 1024 * 1024


def formpost_middleware(backend: Backend) -> object:
    def wrap(app: Handler) -> Handler:
        async def handle(req: Req) -> Resp:
            ctype = req.headers.get("content-type", "")
            if req.method != "POST" or req.container is None or not ctype.startswith("multipart/form-data"):
                return await app(req)
            body = await req.read_body(MAX_FORM)
            try:
                msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            except Exception:  # noqa: BLE001 - any parse failure is the client's
                return error(400, "FormPost: invalid form")
            if not msg.is_multipart():
                return error(400, "FormPost: invalid starting boundary")
            fields: dict[str, str] = {}
            files: list[tuple[str, str, bytes]] = []
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_filename()
                payload = part.get_payload(decode=True) or b""
                if filename is not None:
                    files.append((filename, part.get_content_type(), payload))
                elif name:
                    fields[str(name)] = payload.decode("utf-8", "replace")
            try:
                expires = int(fields.get("expires", ""))
                max_size = int(fields.get("max_file_size", ""))
                max_count = int(fields.get("max_file_count", ""))
            except ValueError:
                return error(401, "FormPost: expired or invalid form")
            if expires < time.time():
                return error(401, "FormPost: Form Expired")
            parsed = _digest(fields.get("signature", ""))
            if parsed is None:
                return error(401, "FormPost: Invalid Signature")
            redirect = fields.get("redirect", "")
            path = f"/v1/{req.account}/{req.container}" + (f"/{req.obj}" if req.obj else "")
            root = req.environ.get("root_path", "")
            keys = []
            acct = await backend.first("account", (req.account,), "HEAD")
            if acct.status < 300:
                keys += _keys(acct.headers, "x-account-meta-")
            cont = await backend.first("container", (req.account, req.container), "HEAD")
            if cont.status < 300:
                keys += _keys(cont.headers, "x-container-meta-")
            ok = False
            for key in keys:
                for p in {path, root + path}:
                    msg_body = f"{p}\n{redirect}\n{fields.get('max_file_size')}\n{fields.get('max_file_count')}\n{expires}"
                    mac = hmac.new(key.encode(), msg_body.encode(), DIGESTS[parsed[0]]).digest()
                    ok = ok or hmac.compare_digest(mac, parsed[1])
            if not ok:
                return error(401, "FormPost: Invalid Signature")
            if len(files) > max_count:
                return _done(redirect, 400, "max_file_count exceeded")
            prefix = req.obj or ""
            for filename, content_type, data in files:
                if not filename:
                    continue
                if len(data) > max_size:
                    return _done(redirect, 400, "max_file_size exceeded")
                sub = req.sub(
                    "PUT",
                    req.container,
                    prefix + filename,
                    body=data,
                    headers={"content-length": str(len(data)), "content-type": content_type},
                )
                sub.ctx = RequestContext(request_id=req.ctx.request_id)
                resp = await app(sub)
                if not resp.ok:
                    return _done(redirect, resp.status, f"upload failed with {resp.status}")
            return _done(redirect, 201, "")

        return handle

    return wrap


def _done(redirect: str, status: int, message: str) -> Resp:
    if redirect:
        sep = "&" if "?" in redirect else "?"
        location = f"{redirect}{sep}status={status}&message={quote(message)}"
        return Resp(
            303,
            {"location": location, "content-type": "text/html; charset=UTF-8"},
            f'<html><body><p><a href="{location}">Click to continue...</a></p></body></html>'.encode(),
        )
    if status >= 400:
        return error(status, f"FormPost: {message}")
    return text(201, f"<html><h1>Created</h1><p>{re.escape('') or 'FormPost: upload done'}</p></html>")
