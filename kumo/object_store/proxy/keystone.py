"""Swift's keystoneauth: who may do what to an account.

* a token whose project owns the account (``AUTH_<project_id>``) with an operator role
  (admin, member) is the owner; a reader in that project may only read;
* ``ResellerAdmin`` owns every account;
* everyone else, anonymous included, only through container ACLs (or TempURL/FormPost,
  which authorize their own requests).
"""

from __future__ import annotations

from kumo.object_store.proxy import acl
from kumo.object_store.proxy.types import Handler, Req, Resp, error

RESELLER_PREFIX = "AUTH_"
OPERATOR_ROLES = ("admin", "member", "swiftoperator")
READER_ROLES = ("reader",)
RESELLER_ADMIN_ROLE = "reselleradmin"


def is_reseller_admin(req: Req) -> bool:
    return req.ctx.authenticated and RESELLER_ADMIN_ROLE in req.ctx.roles


def authorize(req: Req, container_info: dict[str, str] | None) -> Resp | None:
    ctx = req.ctx
    if req.environ.get("auth_invalid") and not ctx.authenticated:
        return error(401)
    if not req.account.startswith(RESELLER_PREFIX):
        return error(403) if ctx.authenticated else error(401)
    if ctx.authenticated:
        if RESELLER_ADMIN_ROLE in ctx.roles:
            req.environ["is_owner"] = True
            req.environ["reseller_admin"] = True
            return None
        if ctx.project_id and req.account == RESELLER_PREFIX + ctx.project_id:
            if ctx.has_role(*OPERATOR_ROLES):
                req.environ["is_owner"] = True
                return None
            if ctx.has_role(*READER_ROLES) and req.method in ("GET", "HEAD"):
                return None
    # not the owner: container ACLs only, and only for container and object requests
    if req.container is not None and container_info is not None:
        reading = req.method in ("GET", "HEAD")
        if reading:
            parsed = acl.parse(container_info.get("x-container-read"))
            if acl.group_allowed(ctx, parsed.groups):
                return None
            if acl.referrer_allowed(req.headers.get("referer"), parsed.referrers) and (
                req.obj is not None or parsed.listings
            ):
                return None
        elif req.obj is not None and req.method in ("PUT", "POST", "DELETE", "COPY"):
            parsed = acl.parse(container_info.get("x-container-write"))
            if acl.group_allowed(ctx, parsed.groups):
                return None
    return error(403) if ctx.authenticated else error(401)


def keystone_auth(app: Handler) -> Handler:
    async def handle(req: Req) -> Resp:
        req.environ.setdefault("authorize", authorize)
        return await app(req)

    return handle
