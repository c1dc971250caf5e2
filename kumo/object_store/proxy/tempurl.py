"""TempURL: a signed, expiring URL that grants one method on one object (or a prefix).

Keys: X-Account-Meta-Temp-URL-Key(-2) and X-Container-Meta-Temp-URL-Key(-2).  Signature:
HMAC-SHA1/256/512 of "METHOD\\nEXPIRES\\nPATH" (PATH "prefix:/v1/a/c/p" for temp_url_prefix,
preceded by "ip=RANGE\\n" with temp_url_ip_range), hex or "<digest>:<base64>".
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import hmac
import ipaddress
import time
from urllib.parse import quote

from kumo.common.context import RequestContext
from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.types import Handler, Req, Resp, error

METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
_HEX_LEN = {40: "sha1", 64: "sha256", 128: "sha512"}
INFO = {
    "methods": list(METHODS),
    "incoming_remove_headers": ["x-timestamp"],
    "incoming_allow_headers": [],
    "outgoing_remove_headers": ["x-object-meta-*"],
    "outgoing_allow_headers": ["x-object-meta-public-*"],
    "allowed_digests": list(DIGESTS),
}


def _expires(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return None


def _digest(sig: str) -> tuple[str, bytes] | None:
    if ":" in sig:
        name, _, b64 = sig.partition(":")
        if name not in DIGESTS:
            return None
        try:
            return name, base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        except (binascii.Error, ValueError):
            return None
    name = _HEX_LEN.get(len(sig))
    if name is None:
        return None
    try:
        return name, bytes.fromhex(sig)
    except ValueError:
        return None


def _keys(meta: dict[str, str], prefix: str) -> list[str]:
    return [meta[k] for k in (f"{prefix}temp-url-key", f"{prefix}temp-url-key-2") if meta.get(k)]


def tempurl_middleware(backend: Backend) -> object:
    def wrap(app: Handler) -> Handler:
        async def handle(req: Req) -> Resp:
            sig = req.query.get("temp_url_sig")
            exp = req.query.get("temp_url_expires")
            if sig is None and exp is None:
                return await app(req)
            if req.method not in METHODS or req.obj is None or req.container is None:
                return _invalid()
            if sig is None or exp is None:
                return _invalid()
            expires = _expires(exp)
            parsed = _digest(sig)
            if expires is None or parsed is None or expires < time.time():
                return _invalid()
            algo, given = parsed
            prefix = req.query.get("temp_url_prefix")
            if prefix is not None and not req.obj.startswith(prefix):
                return _invalid()
            ip_range = req.query.get("temp_url_ip_range")
            if ip_range is not None:
                try:
                    net = ipaddress.ip_network(ip_range, strict=False)
                    if ipaddress.ip_address(req.environ.get("remote_addr") or "0.0.0.0") not in net:
                        return _invalid()
                except ValueError:
                    return _invalid()
            keys = []
            acct = await backend.first("account", (req.account,), "HEAD")
            if acct.status < 300:
                keys += _keys(acct.headers, "x-account-meta-")
            cont = await backend.first("container", (req.account, req.container), "HEAD")
            if cont.status < 300:
                keys += _keys(cont.headers, "x-container-meta-")
            if not keys:
                return _invalid()
            base = f"/v1/{req.account}/{req.container}/"
            path = f"prefix:{base}{prefix}" if prefix is not None else base + req.obj
            root = req.environ.get("root_path", "")
            paths = {
                path,
                path.replace("prefix:", "prefix:" + root, 1) if prefix is not None else root + path,
            }
            methods = [req.method] + (["GET", "PUT", "POST"] if req.method == "HEAD" else [])
            ok = False
            for key, m, p in ((k, m, p) for k in keys for m in methods for p in paths):
                body = f"{m}\n{exp}\n{p}"
                if ip_range is not None:
                    body = f"ip={ip_range}\n" + body
                mac = hmac.new(key.encode(), body.encode(), DIGESTS[algo]).digest()
                ok = ok or hmac.compare_digest(mac, given)
            if not ok:
                return _invalid()
            req.ctx = RequestContext(request_id=req.ctx.request_id)
            req.environ["authorized"] = True
            req.environ["tempurl"] = True
            req.headers.pop("x-timestamp", None)
            resp = await app(req)
            for k in [
                k
                for k in resp.headers
                if k.startswith("x-object-meta-") and not k.startswith("x-object-meta-public-")
            ]:
                del resp.headers[k]
            if req.method == "GET" and resp.ok:
                if "inline" in req.query:
                    name = req.query.get("filename")
                    resp.headers["content-disposition"] = f'inline; filename="{name}"' if name else "inline"
                else:
                    name = req.query.get("filename") or req.obj.rsplit("/", 1)[-1]
                    safe = name.replace('"', '\\"')
                    resp.headers["content-disposition"] = (
                        f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(name)}"
                    )
            return resp

        return handle

    return wrap


def _invalid() -> Resp:
    return error(401, "Temp URL invalid", {"www-authenticate": 'Temp URL realm="kumo"'})
