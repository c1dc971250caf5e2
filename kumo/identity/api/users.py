"""Identity API: users (``/v3/users``), their password, projects and groups."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.identity.api.common import collection, enforce, ident, query_bool
from kumo.identity.api.render import render_group, render_project, render_user
from kumo.identity.service import users as svc

api = API()


def _target(call: Call, user_id: str) -> dict[str, Any]:
    domain_id = svc.user_domain(ident(call), user_id)
    return {"user_id": user_id, "domain_id": domain_id} if domain_id is not None else {"user_id": user_id}


@api.route("/v3/users", "GET", "HEAD")
def list_users(call: Call):
    only = call.ctx.domain_id
    enforce(call, "list_users", {"domain_id": only} if only else None)
    q = call.query
    f = {
        "name": q.get("name"),
        "domain_id": q.get("domain_id"),
        "enabled": query_bool(q.get("enabled")),
        "password_expires_at": q.get("password_expires_at"),
        "only_domain": only,
    }
    users = svc.list_users(ident(call), f)
    return collection(call, "users", users, lambda u: render_user(call, u))


@api.route("/v3/users", "POST", status=201)
def create_user(call: Call):
    default = call.ctx.domain_id
    enforce(call, "create_user", {"domain_id": svc.domain_for_create(call.body, default)})
    return {"user": render_user(call, svc.create_user(ident(call), call.body, default))}


@api.route("/v3/users/{user_id}", "GET", "HEAD")
def show_user(call: Call):
    user_id = call.params["user_id"]
    enforce(call, "get_user", _target(call, user_id))
    return {"user": render_user(call, svc.show_user(ident(call), user_id))}


@api.route("/v3/users/{user_id}", "PATCH")
def update_user(call: Call):
    user_id = call.params["user_id"]
    enforce(call, "update_user", _target(call, user_id))
    user = svc.update_user(ident(call), call.request.app.state.tokens, user_id, call.body)
    return {"user": render_user(call, user)}


@api.route("/v3/users/{user_id}", "DELETE")
def delete_user(call: Call):
    user_id = call.params["user_id"]
    enforce(call, "delete_user", _target(call, user_id))
    svc.delete_user(ident(call), call.request.app.state.tokens, user_id)
    return None


@api.route("/v3/users/{user_id}/password", "POST", public=True, status=204)
def change_password(call: Call):
    # As Keystone: no token needed (a user whose password expired has none);
    # the original password is the proof.
    svc.change_password(ident(call), call.request.app.state.tokens, call.params["user_id"], call.body)
    return None


@api.route("/v3/users/{user_id}/projects", "GET", "HEAD")
def list_user_projects(call: Call):
    user_id = call.params["user_id"]
    enforce(call, "list_user_projects", _target(call, user_id))
    q = call.query
    f = {"name": q.get("name"), "domain_id": q.get("domain_id"), "enabled": query_bool(q.get("enabled"))}
    projects = svc.list_user_projects(ident(call), user_id, f)
    return collection(call, "projects", projects, lambda p: render_project(call, p))


@api.route("/v3/users/{user_id}/groups", "GET", "HEAD")
def list_user_groups(call: Call):
    user_id = call.params["user_id"]
    enforce(call, "list_groups_for_user", _target(call, user_id))
    groups = svc.list_user_groups(ident(call), user_id, call.query.get("name"))
    return collection(
        call, "groups", groups, lambda g: {**render_group(call, g), "membership_expires_at": None}
    )
