"""Account and container quotas.

Account: X-Account-Meta-Quota-Bytes and X-Account-Quota-Count, settable only by a
reseller admin.  Container: X-Container-Meta-Quota-Bytes / -Quota-Count, set by the owner.
An object write that would go over a quota gets 413.
"""

from __future__ import annotations

from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.keystone import is_reseller_admin
from kumo.object_store.proxy.types import Handler, Req, Resp, error

ACCT_BYTES = "x-account-meta-quota-bytes"
ACCT_COUNT = "x-account-sysmeta-quota-count"
CONT_BYTES = "x-container-meta-quota-bytes"
CONT_COUNT = "x-container-meta-quota-count"


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _size(req: Req) -> int:
    try:
        return int(req.headers.get("content-length") or 0)
    except ValueError:
        return 0


def account_quotas(backend: Backend) -> object:
    def wrap(app: Handler) -> Handler:
        async def handle(req: Req) -> Resp:
            if req.container is None and req.method in ("POST", "PUT"):
                h = req.headers
                # X-Account-Quota-Count lives in sysmeta
                for name in ("x-account-quota-count", "x-remove-account-quota-count"):
                    if name in h:
                        value = h.pop(name)
                        h[ACCT_COUNT] = "" if name.startswith("x-remove") else value
                for name in ("x-account-quota-bytes", "x-remove-account-quota-bytes"):
                    if name in h:
                        value = h.pop(name)
                        h[ACCT_BYTES] = "" if name.startswith("x-remove") else value
                touches = [k for k in (ACCT_BYTES, ACCT_COUNT, "x-remove-account-meta-quota-bytes") if k in h]
                if touches:
                    if not is_reseller_admin(req):
                        return error(403)
                    for k in (ACCT_BYTES, ACCT_COUNT):
                        if h.get(k) and _int(h[k]) is None:
                            return error(400, "Invalid quota value")
                    req.environ["authorized"] = True
                return await app(req)
            if req.obj is None or req.method != "PUT":
                return await app(req)
            acct = await backend.info("account", (req.account,))
            if acct.status < 300 and (ACCT_BYTES in acct.headers or ACCT_COUNT in acct.headers):
                acct = await backend.info("account", (req.account,), fresh=True)  # current usage
            if acct.status < 300:
                qbytes = _int(acct.headers.get(ACCT_BYTES))
                qcount = _int(acct.headers.get(ACCT_COUNT))
                used = int(acct.headers.get("x-account-bytes-used", "0"))
                count = int(acct.headers.get("x-account-object-count", "0"))
                if qbytes is not None and used + _size(req) > qbytes:
                    return error(413, "Upload exceeds quota.")
                if qcount is not None and count + 1 > qcount:
                    return error(413, "Upload exceeds quota.")
            return await app(req)

        return handle

    return wrap


def container_quotas(backend: Backend) -> object:
    def wrap(app: Handler) -> Handler:
        async def handle(req: Req) -> Resp:
            if req.obj is None and req.container is not None and req.method in ("PUT", "POST"):
                for k in ("x-container-meta-quota-bytes", "x-container-meta-quota-count"):
                    if req.headers.get(k) and _int(req.headers[k]) is None:
                        return error(400, "Invalid quota value")
                return await app(req)
            if req.obj is None or req.method != "PUT" or req.container is None:
                return await app(req)
            cont = await backend.info("container", (req.account, req.container))
            if cont.status < 300 and any(k in cont.headers for k in (CONT_BYTES, CONT_COUNT)):
                cont = await backend.info("container", (req.account, req.container), fresh=True)
            if cont.status < 300:
                qbytes = _int(cont.headers.get("x-container-meta-quota-bytes"))
                qcount = _int(cont.headers.get("x-container-meta-quota-count"))
                used = int(cont.headers.get("x-container-bytes-used", "0"))
                count = int(cont.headers.get("x-container-object-count", "0"))
                if qbytes is not None and used + _size(req) > qbytes:
                    return error(413, "Upload exceeds quota.")
                if qcount is not None and count + 1 > qcount:
                    return error(413, "Upload exceeds quota.")
            return await app(req)

        return handle

    return wrap
