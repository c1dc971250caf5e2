"""``/v3/OS-TRUST/trusts``: delegation of roles from a trustor to a trustee."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.common.errors import Forbidden, NotFound
from kumo.common.policy import cloud_admin, system_reader
from kumo.identity import models as m
from kumo.identity.api.common import enforce, ident
from kumo.identity.api.render import render_role
from kumo.identity.service import trusts
from kumo.identity.service.core import iso, require_object

api = API()


def render(call: Call, t: m.Trust, roles: list[m.Role] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        **(t.extra or {}),
        "id": t.id,
        "trustor_user_id": t.trustor_user_id,
        "trustee_user_id": t.trustee_user_id,
        "project_id": t.project_id,
        "impersonation": t.impersonation,
        "expires_at": iso(t.expires_at),
        "remaining_uses": t.remaining_uses,
        "redelegated_trust_id": t.redelegated_trust_id,
        "redelegation_count": t.redelegation_count,
        "deleted_at": None,
        "links": {"self": call.url(f"/v3/OS-TRUST/trusts/{t.id}")},
    }
    if roles is not None:
        body["roles"] = [render_role(call, r) for r in roles]
        body["roles_links"] = {
            "self": call.url(f"/v3/OS-TRUST/trusts/{t.id}/roles"),
            "next": None,
            "previous": None,
        }
    return body


def _target(t: m.Trust) -> dict[str, Any]:
    return {"trustor_user_id": t.trustor_user_id, "trustee_user_id": t.trustee_user_id}


@api.route("/v3/OS-TRUST/trusts", "POST", status=201)
def create_trust(call: Call):
    body = require_object(call.body, "trust")
    trusts.validate_required(body)  # a malformed body is a 400 before it is a 403, as in Keystone
    ctx = enforce(call, "create_trust", {"user_id": body.get("trustor_user_id")})
    trusts.check_not_delegated(ctx)
    trust = trusts.create(ident(call), ctx, body)
    return {"trust": render(call, trust, trusts.roles_of(ident(call), trust))}


@api.route("/v3/OS-TRUST/trusts", "GET", "HEAD")
def list_trusts(call: Call):
    ctx = enforce(call, "list_trusts")
    trustor = call.query.get("trustor_user_id")
    trustee = call.query.get("trustee_user_id")
    admin = cloud_admin(ctx, {}) or system_reader(ctx, {})
    if not admin:
        if trustor:
            allowed = trustor == ctx.user_id
        elif trustee:
            allowed = trustee == ctx.user_id
        else:
            allowed = False
        if not allowed:
            raise Forbidden("You are not authorized to perform the requested action: identity:list_trusts.")
    trusts.check_not_delegated(ctx)
    items = trusts.list_trusts(ident(call), trustor or None, trustee or None)
    return {
        "trusts": [render(call, t) for t in items],
        "links": {"self": str(call.request.url), "previous": None, "next": None},
    }


def _lookup(call: Call, action: str) -> m.Trust:
    trust = trusts.get(ident(call), call.params["trust_id"])
    ctx = enforce(call, action, _target(trust))
    trusts.check_not_delegated(ctx)
    return trust


@api.route("/v3/OS-TRUST/trusts/{trust_id}", "GET", "HEAD")
def get_trust(call: Call):
    trust = _lookup(call, "get_trust")
    return {"trust": render(call, trust, trusts.roles_of(ident(call), trust))}


@api.route("/v3/OS-TRUST/trusts/{trust_id}", "DELETE", status=204)
def delete_trust(call: Call):
    _lookup(call, "delete_trust")
    trusts.delete(ident(call), call.request.app.state.tokens, call.params["trust_id"])


@api.route("/v3/OS-TRUST/trusts/{trust_id}/roles", "GET", "HEAD")
def list_trust_roles(call: Call):
    trust = _lookup(call, "get_trust")
    roles = trusts.roles_of(ident(call), trust)
    return {
        "roles": [render_role(call, r) for r in roles],
        "links": {"self": call.url(f"/v3/OS-TRUST/trusts/{trust.id}/roles"), "next": None, "previous": None},
    }


@api.route("/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}", "GET", "HEAD")
def get_trust_role(call: Call):
    trust = _lookup(call, "get_trust")
    role_id = call.params["role_id"]
    for role in trusts.roles_of(ident(call), trust):
        if role.id == role_id:
            return {"role": render_role(call, role)}
    raise NotFound(f"Could not find role: {role_id}.")
