"""Identity API: groups (``/v3/groups``) and their members."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.identity.api.common import collection, enforce, ident, query_bool
from kumo.identity.api.render import render_group, render_user
from kumo.identity.service import groups as svc
from kumo.identity.service import users as users_svc

api = API()


def _target(call: Call, group_id: str) -> dict[str, Any]:
    group = svc.find_group(ident(call), group_id)
    return {"group_id": group_id, "domain_id": group.domain_id} if group is not None else {}


def _enforce_member(call: Call, action: str) -> None:
    """Keystone checks both the group's and the user's domain for membership calls."""
    enforce(call, action, _target(call, call.params["group_id"]))
    user_domain = users_svc.user_domain(ident(call), call.params["user_id"])
    if user_domain is not None:
        enforce(call, action, {"user_id": call.params["user_id"], "domain_id": user_domain})


@api.route("/v3/groups", "GET", "HEAD")
def list_groups(call: Call):
    only = call.ctx.domain_id
    enforce(call, "list_groups", {"domain_id": only} if only else None)
    groups = svc.list_groups(ident(call), call.query.get("name"), call.query.get("domain_id"), only)
    return collection(call, "groups", groups, lambda g: render_group(call, g))


@api.route("/v3/groups", "POST", status=201)
def create_group(call: Call):
    default = call.ctx.domain_id
    enforce(call, "create_group", {"domain_id": svc.domain_for_create(call.body, default)})
    return {"group": render_group(call, svc.create_group(ident(call), call.body, default))}


@api.route("/v3/groups/{group_id}", "GET", "HEAD")
def show_group(call: Call):
    group_id = call.params["group_id"]
    enforce(call, "get_group", _target(call, group_id))
    return {"group": render_group(call, svc.show_group(ident(call), group_id))}


@api.route("/v3/groups/{group_id}", "PATCH")
def update_group(call: Call):
    group_id = call.params["group_id"]
    enforce(call, "update_group", _target(call, group_id))
    return {"group": render_group(call, svc.update_group(ident(call), group_id, call.body))}


@api.route("/v3/groups/{group_id}", "DELETE")
def delete_group(call: Call):
    group_id = call.params["group_id"]
    enforce(call, "delete_group", _target(call, group_id))
    svc.delete_group(ident(call), call.request.app.state.tokens, group_id)
    return None


@api.route("/v3/groups/{group_id}/users", "GET", "HEAD")
def list_users_in_group(call: Call):
    group_id = call.params["group_id"]
    enforce(call, "list_users_in_group", _target(call, group_id))
    svc.show_group(ident(call), group_id)
    q = call.query
    f = {
        "group_id": group_id,
        "name": q.get("name"),
        "domain_id": q.get("domain_id"),
        "enabled": query_bool(q.get("enabled")),
        "password_expires_at": q.get("password_expires_at"),
    }
    users = users_svc.list_users(ident(call), f)
    return collection(call, "users", users, lambda u: render_user(call, u))


@api.route("/v3/groups/{group_id}/users/{user_id}", "PUT")
def add_user_to_group(call: Call):
    _enforce_member(call, "add_user_to_group")
    svc.add_member(ident(call), call.params["group_id"], call.params["user_id"])
    return None


@api.route("/v3/groups/{group_id}/users/{user_id}", "GET", "HEAD")
def check_user_in_group(call: Call):
    _enforce_member(call, "check_user_in_group")
    svc.check_member(ident(call), call.params["group_id"], call.params["user_id"])
    return None


@api.route("/v3/groups/{group_id}/users/{user_id}", "DELETE")
def remove_user_from_group(call: Call):
    _enforce_member(call, "remove_user_from_group")
    svc.remove_member(
        ident(call), call.request.app.state.tokens, call.params["group_id"], call.params["user_id"]
    )
    return None
