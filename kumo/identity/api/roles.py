"""Identity API: roles (``/v3/roles``) and implied roles (``/implies``, ``/v3/role_inferences``)."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.common.errors import NotFound
from kumo.identity import models as m
from kumo.identity.api.common import collection, enforce, ident
from kumo.identity.api.render import render_role
from kumo.identity.service import roles as svc

api = API()


def _enforce_on(call: Call, action: str, role_id: str) -> None:
    """Keystone's order: enforce first (the global rule when the role is unknown), then 404."""
    role = svc.find_role(ident(call), role_id)
    if role is None or not role.domain_id:
        enforce(call, f"{action}_role")
        if role is None:
            raise NotFound(f"Could not find role: {role_id}.")
    else:
        enforce(call, f"{action}_domain_role", {"domain_id": role.domain_id})


@api.route("/v3/roles", "GET")
def list_roles(call: Call):
    domain_id = call.query.get("domain_id") or None
    if domain_id:
        enforce(call, "list_domain_roles", {"domain_id": domain_id})
    else:
        enforce(call, "list_roles")
    roles = svc.list_roles(ident(call), call.query.get("name"), domain_id)
    return collection(call, "roles", roles, lambda r: render_role(call, r))


@api.route("/v3/roles", "POST", status=201)
def create_role(call: Call):
    domain_id = svc.peek_domain(ident(call), call.body)
    if domain_id:
        enforce(call, "create_domain_role", {"domain_id": domain_id})
    else:
        enforce(call, "create_role")
    return {"role": render_role(call, svc.create_role(ident(call), call.body))}


@api.route("/v3/roles/{role_id}", "GET")
def show_role(call: Call):
    _enforce_on(call, "get", call.params["role_id"])
    return {"role": render_role(call, svc.show_role(ident(call), call.params["role_id"]))}


@api.route("/v3/roles/{role_id}", "PATCH")
def update_role(call: Call):
    _enforce_on(call, "update", call.params["role_id"])
    return {"role": render_role(call, svc.update_role(ident(call), call.params["role_id"], call.body))}


@api.route("/v3/roles/{role_id}", "DELETE")
def delete_role(call: Call):
    _enforce_on(call, "delete", call.params["role_id"])
    svc.delete_role(ident(call), call.request.app.state.tokens, call.params["role_id"])
    return None


# -- implied roles ------------------------------------------------------------------


def _ref(call: Call, role: m.Role) -> dict[str, Any]:
    return {"id": role.id, "links": {"self": call.url(f"/v3/roles/{role.id}")}, "name": role.name}


def _inference(call: Call, prior: m.Role, implied: m.Role) -> dict[str, Any]:
    return {
        "role_inference": {"prior_role": _ref(call, prior), "implies": _ref(call, implied)},
        "links": {"self": call.url(f"/v3/roles/{prior.id}/implies/{implied.id}")},
    }


@api.route("/v3/roles/{prior_id}/implies", "GET")
def list_implied_roles(call: Call):
    enforce(call, "list_implied_roles")
    prior, implied = svc.list_implied(ident(call), call.params["prior_id"])
    return {
        "role_inference": {"prior_role": _ref(call, prior), "implies": [_ref(call, r) for r in implied]},
        "links": {"self": call.url(f"/v3/roles/{prior.id}/implies")},
    }


@api.route("/v3/roles/{prior_id}/implies/{implied_id}", "HEAD")
def check_implied_role(call: Call):
    enforce(call, "list_implied_roles")
    svc.show_implied(ident(call), call.params["prior_id"], call.params["implied_id"])
    return None


@api.route("/v3/roles/{prior_id}/implies/{implied_id}", "GET")
def show_implied_role(call: Call):
    enforce(call, "list_implied_roles")
    return _inference(
        call, *svc.show_implied(ident(call), call.params["prior_id"], call.params["implied_id"])
    )


@api.route("/v3/roles/{prior_id}/implies/{implied_id}", "PUT", status=201)
def create_implied_role(call: Call):
    enforce(call, "implied_roles")
    return _inference(
        call, *svc.create_implied(ident(call), call.params["prior_id"], call.params["implied_id"])
    )


@api.route("/v3/roles/{prior_id}/implies/{implied_id}", "DELETE")
def delete_implied_role(call: Call):
    enforce(call, "implied_roles")
    svc.delete_implied(ident(call), call.params["prior_id"], call.params["implied_id"])
    return None


@api.route("/v3/role_inferences", "GET")
def list_role_inferences(call: Call):
    enforce(call, "list_implied_roles")
    return {
        "role_inferences": [
            {"prior_role": _ref(call, prior), "implies": [_ref(call, r) for r in implied]}
            for prior, implied in svc.list_inferences(ident(call))
        ],
        "links": {"self": str(call.request.url), "previous": None, "next": None},
    }
