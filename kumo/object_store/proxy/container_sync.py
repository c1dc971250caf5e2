"""The container-sync middleware: checks X-Container-Sync-To values and admits sync requests.

* A container PUT/POST setting ``X-Container-Sync-To`` gets it validated (realm known, or an
  allowed host for a full URL): 400 with Swift's text otherwise.
* A request with ``X-Container-Sync-Auth`` (realm style) must be signed with the realm key and
  the target container's sync key: it is then authorized without a token and keeps the sender's
  ``X-Timestamp``; a wrong signature is a 401.
* An object request with ``X-Container-Sync-Key`` (old style) and ``X-Timestamp``, from an allowed
  host, whose key is the container's sync key, is authorized the same way; any other is left to
  the usual token checks.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from kumo.common.context import RequestContext
from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.types import Handler, Req, Resp, error, text
from kumo.object_store.sync_realms import InvalidSyncTo, SyncRealms, verify
from kumo.object_store.utils import normalize_ts

log = logging.getLogger("kumo.object_store.sync")

SYNC_TS = "sync_timestamp"  # environ: the X-Timestamp a sync request writes with


def info(realms: SyncRealms) -> dict[str, Any]:
    return {"realms": realms.info()}


def _timestamp(value: str | None) -> str | None:
    try:
        ts = float(value or "")
    except ValueError:
        return None
    return normalize_ts(ts) if ts > 0 else None


def _unauthorized() -> Resp:
    resp = text(401, "X-Container-Sync-Auth header not valid; contact cluster operator for support.")
    resp.headers["www-authenticate"] = 'SwiftContainerSync realm="kumo"'
    return resp


def _paths(req: Req) -> list[str]:
    """The spellings of the request path a sender may have signed: as sent on the wire, and as
    Swift quotes it, each with and without the object store's prefix (/object-store)."""
    root = req.environ.get("root_path", "")
    raw = req.environ.get("raw_path") or ""
    out = [req.quoted_path, root + req.quoted_path]
    if raw:
        out += [raw, raw[len(root) :] if root and raw.startswith(root) else root + raw]
    return list(dict.fromkeys(out))


def container_sync_middleware(backend: Backend, realms: SyncRealms) -> Any:
    def wrap(app: Handler) -> Handler:
        async def sync_key(req: Req) -> str:
            assert req.container is not None
            resp = await backend.info("container", (req.account, req.container))
            return resp.headers.get("x-container-sync-key", "") if resp.status < 300 else ""

        def admit(req: Req, ts: str) -> None:
            req.ctx = RequestContext(request_id=req.ctx.request_id)
            req.environ["authorized"] = True
            req.environ[SYNC_TS] = ts
            # an SLO manifest arrives as stored (it may come before its segments): kept as it is,
            # with the object sysmeta the gatekeeper held back (its size and etag)
            req.environ["slo_raw_copy"] = True
            req.headers.update(req.environ.get("client_object_sysmeta") or {})

        async def handle(req: Req) -> Resp:
            if req.obj is None and req.container is not None and req.method in ("PUT", "POST"):
                value = req.headers.get("x-container-sync-to")
                if value:
                    try:
                        realms.validate(value)
                    except InvalidSyncTo as exc:
                        return error(400, str(exc))
            auth = req.headers.get("x-container-sync-auth")
            if auth is not None:
                if req.container is None:
                    return _unauthorized()
                ts = req.headers.get("x-timestamp", "0")
                key = await sync_key(req)
                if not verify(realms, auth, req.method, _paths(req), ts, key):
                    log.info("container sync: refused %s %s (cs:invalid-sig)", req.method, req.path)
                    return _unauthorized()
                admit(req, _timestamp(ts) or "")
                return await app(req)
            given = req.headers.get("x-container-sync-key")
            if given and req.obj is not None and req.container is not None:
                ts = _timestamp(req.headers.get("x-timestamp"))
                if ts and realms.host_allowed(req.environ.get("remote_addr")):
                    key = await sync_key(req)
                    if key and hmac.compare_digest(key.encode(), given.encode()):
                        admit(req, ts)
            return await app(req)

        return handle

    return wrap
