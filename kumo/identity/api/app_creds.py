"""``/v3/users/{user_id}/application_credentials`` and ``/v3/users/{user_id}/access_rules``."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.common.errors import NotFound
from kumo.identity import models as m
from kumo.identity.api.common import collection, enforce, ident
from kumo.identity.errors import not_found
from kumo.identity.service import app_creds
from kumo.identity.service.core import require_object

api = API()


def render(call: Call, c: m.ApplicationCredential, roles: dict[str, m.Role]) -> dict[str, Any]:
    def role(r: dict[str, Any]) -> dict[str, Any]:
        full = roles.get(r["id"])
        return {
            "id": r["id"],
            "name": full.name if full else r["name"],
            "domain_id": full.domain_id if full else None,
        }

    return {
        "id": c.id,
        "name": c.name,
        "description": c.description or None,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
        "unrestricted": c.unrestricted,
        "roles": [role(r) for r in c.roles],
        "access_rules": list(c.access_rules or []),
        "system": None,
        "links": {"self": call.url(f"/v3/users/{c.user_id}/application_credentials/{c.id}")},
    }


@api.route("/v3/users/{user_id}/application_credentials", "POST", status=201)
def create_application_credential(call: Call):
    user_id = call.params["user_id"]
    ctx = enforce(call, "create_application_credential", {"user_id": user_id})
    app_creds.check_not_delegated(ctx)
    app_creds.check_unrestricted(ctx)
    body = require_object(call.body, "application_credential")
    cred, secret = app_creds.create(ident(call), ctx, user_id, body)
    rendered = render(call, cred, app_creds.role_details(ident(call), [cred]))
    return {"application_credential": {**rendered, "secret": secret}}


@api.route("/v3/users/{user_id}/application_credentials", "GET", "HEAD")
def list_application_credentials(call: Call):
    user_id = call.params["user_id"]
    ctx = enforce(call, "list_application_credentials", {"user_id": user_id})
    app_creds.check_not_delegated(ctx)
    items = app_creds.list_for_user(ident(call), user_id, call.query.get("name"))
    roles = app_creds.role_details(ident(call), items)
    return collection(call, "application_credentials", items, lambda c: render(call, c, roles))


def _lookup(call: Call, action: str) -> m.ApplicationCredential:
    cred_id = call.params["cred_id"]
    try:
        cred = app_creds.get(ident(call), cred_id)
    except NotFound:
        # Keystone enforces before it looks: a stranger gets 403, the owner 404.
        enforce(call, action, {"user_id": call.params["user_id"]})
        raise
    # The owner is the credential's user, never the one named in the URL.
    ctx = enforce(call, action, {"user_id": cred.user_id})
    app_creds.check_not_delegated(ctx)
    if cred.user_id != call.params["user_id"]:
        raise not_found("application credential", cred_id)
    return cred


@api.route("/v3/users/{user_id}/application_credentials/{cred_id}", "GET", "HEAD")
def get_application_credential(call: Call):
    cred = _lookup(call, "get_application_credential")
    return {"application_credential": render(call, cred, app_creds.role_details(ident(call), [cred]))}


@api.route("/v3/users/{user_id}/application_credentials/{cred_id}", "DELETE", status=204)
def delete_application_credential(call: Call):
    cred = _lookup(call, "delete_application_credential")
    app_creds.check_unrestricted(call.ctx)
    app_creds.delete(ident(call), call.request.app.state.tokens, cred.id)


def render_rule(call: Call, user_id: str, r: m.AccessRule) -> dict[str, Any]:
    return {
        "id": r.id,
        "service": r.service,
        "path": r.path,
        "method": r.method,
        "links": {"self": call.url(f"/v3/users/{user_id}/access_rules/{r.id}")},
    }


@api.route("/v3/users/{user_id}/access_rules", "GET", "HEAD")
def list_access_rules(call: Call):
    user_id = call.params["user_id"]
    ctx = enforce(call, "list_access_rules", {"user_id": user_id})
    app_creds.check_not_delegated(ctx)
    q = call.query
    filters = {k: q.get(k) for k in ("service", "path", "method")}
    items = app_creds.list_access_rules(ident(call), user_id, filters)
    return collection(call, "access_rules", items, lambda r: render_rule(call, user_id, r))


@api.route("/v3/users/{user_id}/access_rules/{rule_id}", "GET", "HEAD")
def get_access_rule(call: Call):
    user_id = call.params["user_id"]
    app_creds.check_not_delegated(enforce(call, "get_access_rule", {"user_id": user_id}))
    rule = app_creds.get_access_rule(ident(call), user_id, call.params["rule_id"])
    return {"access_rule": render_rule(call, user_id, rule)}


@api.route("/v3/users/{user_id}/access_rules/{rule_id}", "DELETE", status=204)
def delete_access_rule(call: Call):
    user_id = call.params["user_id"]
    app_creds.check_not_delegated(enforce(call, "delete_access_rule", {"user_id": user_id}))
    app_creds.delete_access_rule(ident(call), user_id, call.params["rule_id"])
