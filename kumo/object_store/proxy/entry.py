"""From ASGI to the proxy pipeline and back: path parsing, trans ids, /info, error safety net."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

from starlette.requests import Request

from kumo.common.asgi import API, Call
from kumo.object_store import constraints as C
from kumo.object_store.errors import SwiftError
from kumo.object_store.http import RawResponse
from kumo.object_store.proxy.types import Handler, Req, Resp, error
from kumo.object_store.utils import trans_id

log = logging.getLogger("kumo.object_store")

METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "OPTIONS"]
_STRIP_PREFIX = (
    "x-backend-",
    "x-object-sysmeta-",
    "x-container-sysmeta-",
    "x-account-sysmeta-",
    "x-object-transient-sysmeta-",
)
_STRIP = ("date", "server", "x-put-timestamp", "x-delete-timestamp", "transfer-encoding")


def _split_path(request: Request) -> tuple[str, list[str]]:
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    root = request.scope.get("root_path", "").encode()
    if root and raw.startswith(root):
        raw = raw[len(root) :]
    decoded = unquote_to_bytes(raw)
    try:
        path = decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise SwiftError(412, "Invalid UTF8 or contains NULL") from None
    if "\x00" in path:
        raise SwiftError(412, "Invalid UTF8 or contains NULL")
    parts = path.lstrip("/").split("/", 3)
    return parts[0], parts[1:]


def _query(request: Request) -> dict[str, str]:
    raw = request.scope.get("query_string", b"")
    out: dict[str, str] = {}
    for k, v in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        try:
            k2 = k.encode("latin-1").decode("utf-8")
            v2 = v.encode("latin-1").decode("utf-8")
        except UnicodeError:
            raise SwiftError(400, "Invalid UTF8 in query") from None
        if "\x00" in v2:
            raise SwiftError(412, "Invalid UTF8 or contains NULL")
        out.setdefault(k2, v2)
    return out


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def to_asgi(resp: Resp, method: str, tid: str) -> RawResponse:
    headers = {
        k.lower(): v
        for k, v in resp.headers.items()
        if not k.lower().startswith(_STRIP_PREFIX) and k.lower() not in _STRIP
    }
    headers.setdefault("content-type", "text/html; charset=UTF-8")
    headers["x-trans-id"] = tid
    if resp.status in (204, 304):
        headers.pop("content-length", None)
    elif isinstance(resp.body, bytes) and method != "HEAD":
        headers["content-length"] = str(len(resp.body))
    elif method == "HEAD" and "content-length" not in headers:
        headers["content-length"] = str(len(resp.body)) if isinstance(resp.body, bytes) else "0"
    return RawResponse(resp.status, headers, resp.body, head=method == "HEAD")


def build_routes(pipeline: Handler, info: dict[str, Any]) -> API:
    api = API()

    async def entry(call: Call) -> RawResponse:
        request = call.request
        tid = trans_id()
        method = request.method
        try:
            version, parts = _split_path(request)
            if version not in ("v1", "v1.0") or not parts or not parts[0]:
                raise SwiftError(412, "Bad URL")
            account = parts[0]
            container = parts[1] if len(parts) > 1 else None
            obj = parts[2] if len(parts) > 2 else None
            if container == "" and obj is None:
                container = None
            if obj == "":
                obj = None
            if container == "" and obj is not None:
                raise SwiftError(412, "Bad URL")
            headers = {k.lower(): v for k, v in request.headers.items()}
            # the gatekeeper: system metadata and backend headers are never a client's to send
            # (an authenticated container-sync request may restore the object sysmeta it carries)
            inbound = {k: headers.pop(k) for k in [k for k in headers if k.startswith(_STRIP_PREFIX)]}
            if sum(len(k) + len(v) for k, v in headers.items()) > C.MAX_HEADER_SIZE * 4:
                raise SwiftError(400, "Request header too large")
            for k, v in list(headers.items()):
                if k.startswith(("x-account-meta-", "x-container-meta-", "x-object-meta-")):
                    with contextlib.suppress(UnicodeError):
                        headers[k] = v.encode("latin-1").decode("utf-8")
            body = _body(request) if method in ("PUT", "POST", "COPY", "DELETE") else None
            state = request.scope.get("state", {})
            req = Req(
                method,
                account,
                container,
                obj,
                headers,
                _query(request),
                body,
                call.ctx,
                {
                    "trans_id": tid,
                    "remote_addr": (request.client.host if request.client else ""),
                    "referer": headers.get("referer"),
                    "auth_invalid": state.get("auth_invalid", False),
                    "host_url": f"{request.url.scheme}://{request.url.netloc}",
                    "root_path": request.scope.get("root_path", ""),
                    "raw_path": (request.scope.get("raw_path") or b"").decode("latin-1"),
                    "client_object_sysmeta": {k: v for k, v in inbound.items() if k.startswith("x-object-sysmeta-")},
                },
            )
            resp = await pipeline(req)
        except SwiftError as err:
            resp = error(err.status, err.message, err.headers)
        except Exception:  # the safety net: never a traceback to the client
            log.exception("object store: unhandled error in %s %s", method, request.url.path)
            resp = error(500)
        return to_asgi(resp, method, tid)

    async def info_doc(call: Call) -> RawResponse:
        tid = trans_id()
        if call.request.method not in ("GET", "HEAD"):
            return to_asgi(error(405), call.request.method, tid)
        body = json.dumps(info).encode()
        return to_asgi(
            Resp(200, {"content-type": "application/json; charset=UTF-8"}, body), call.request.method, tid
        )

    async def healthcheck(call: Call) -> RawResponse:
        return to_asgi(Resp(200, {"content-type": "text/plain"}, b"OK"), call.request.method, trans_id())

    async def crossdomain(call: Call) -> RawResponse:
        body = (
            b'<?xml version="1.0"?>\n<!DOCTYPE cross-domain-policy SYSTEM '
            b'"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd" >\n<cross-domain-policy>\n'
            b'<allow-access-from domain="*" secure="false" />\n</cross-domain-policy>'
        )
        return to_asgi(
            Resp(200, {"content-type": "application/xml; charset=utf-8"}, body),
            call.request.method,
            trans_id(),
        )

    api.route("/info", "GET", "HEAD", "POST", "PUT", "DELETE", public=True, raw=True)(info_doc)
    api.route("/healthcheck", "GET", public=True, raw=True)(healthcheck)
    api.route("/crossdomain.xml", "GET", public=True, raw=True)(crossdomain)
    for prefix in ("/v1", "/v1.0"):
        api.route(prefix + "/{path:path}", *METHODS, public=True, raw=True)(entry)
    return api
