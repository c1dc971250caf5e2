"""Identity API: projects (``/v3/projects``) and project tags."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.identity import models as m
from kumo.identity.api.common import collection, enforce, ident, query_bool
from kumo.identity.api.render import render_project
from kumo.identity.service import projects as svc

api = API()

HIERARCHY = ("parents_as_list", "parents_as_ids", "subtree_as_list", "subtree_as_ids")


def render(call: Call, e: svc.Entity) -> dict[str, Any]:
    """A project, or a domain shown as the project acting as it (``is_domain``)."""
    if isinstance(e, m.Project):
        return render_project(call, e)
    extra = {k: v for k, v in (e.extra or {}).items() if k not in ("tags", "options")}
    return {
        **extra,
        "id": e.id,
        "name": e.name,
        "domain_id": None,
        "parent_id": None,
        "description": e.description,
        "enabled": e.enabled,
        "is_domain": True,
        "tags": list((e.extra or {}).get("tags") or []),
        "options": dict((e.extra or {}).get("options") or {}),
        "links": {"self": call.url(f"/v3/projects/{e.id}")},
    }


def _target(e: svc.Entity | None, project_id: str) -> dict[str, Any]:
    if e is None:
        return {}
    return {"project_id": project_id, "domain_id": e.domain_id if isinstance(e, m.Project) else e.id}


def _enforce_on(call: Call, action: str) -> svc.Entity | None:
    """Keystone's order: enforce (with what the target is, if it exists), then 404."""
    project_id = call.params["project_id"]
    entity = svc.find_project(ident(call), project_id)
    enforce(call, action, _target(entity, project_id))
    return entity


@api.route("/v3/projects", "GET", "HEAD")
def list_projects(call: Call):
    only = call.ctx.domain_id
    enforce(call, "list_projects", {"domain_id": only} if only else None)
    q = call.query
    f: dict[str, Any] = {
        "name": q.get("name"),
        "domain_id": q.get("domain_id"),
        "parent_id": q.get("parent_id"),
        "enabled": query_bool(q.get("enabled")),
        "is_domain": query_bool(q.get("is_domain")) or False,
        "only_domain": only,
    }
    f.update({k: q[k] for k in svc.TAG_FILTERS if k in q})
    projects = svc.list_projects(ident(call), f)
    return collection(call, "projects", projects, lambda p: render(call, p))


@api.route("/v3/projects", "POST", status=201)
def create_project(call: Call):
    default = call.ctx.domain_id
    enforce(call, "create_project", {"domain_id": svc.domain_for_create(call.body) or default or "default"})
    return {"project": render(call, svc.create_project(ident(call), call.body, default))}


@api.route("/v3/projects/{project_id}", "GET", "HEAD")
def show_project(call: Call):
    _enforce_on(call, "get_project")
    entity = svc.show_project(ident(call), call.params["project_id"])
    body = render(call, entity)
    # Keystone: a flag given without a value (``?subtree_as_list``) is true.
    flags = {k: call.query[k] == "" or bool(query_bool(call.query[k])) for k in HIERARCHY if k in call.query}
    if flags:
        extra = svc.hierarchy(ident(call), entity, call.ctx.user_id, flags)
        if "parents" in extra:
            body["parents"] = [{"project": render(call, p)} for p in extra["parents"]]
        if "parents_ids" in extra:
            body["parents"] = extra["parents_ids"]
        if "subtree" in extra:
            body["subtree"] = [{"project": render(call, p)} for p in extra["subtree"]]
        if "subtree_ids" in extra:
            body["subtree"] = extra["subtree_ids"]
    return {"project": body}


@api.route("/v3/projects/{project_id}", "PATCH")
def update_project(call: Call):
    _enforce_on(call, "update_project")
    entity = svc.update_project(
        ident(call), call.request.app.state.tokens, call.params["project_id"], call.body
    )
    return {"project": render(call, entity)}


@api.route("/v3/projects/{project_id}", "DELETE")
def delete_project(call: Call):
    _enforce_on(call, "delete_project")
    svc.delete_project(ident(call), call.request.app.state.tokens, call.params["project_id"])
    return None


# -- tags ------------------------------------------------------------------------------


def _tags(call: Call, tags: list[str]) -> dict[str, Any]:
    return {"tags": tags, "links": {"self": str(call.request.url)}}


@api.route("/v3/projects/{project_id}/tags", "GET", "HEAD")
def list_project_tags(call: Call):
    _enforce_on(call, "get_project_tags")
    return _tags(call, svc.list_tags(ident(call), call.params["project_id"]))


@api.route("/v3/projects/{project_id}/tags", "PUT")
def update_project_tags(call: Call):
    _enforce_on(call, "project_tags")
    return _tags(call, svc.replace_tags(ident(call), call.params["project_id"], call.body))


@api.route("/v3/projects/{project_id}/tags", "DELETE")
def delete_project_tags(call: Call):
    _enforce_on(call, "project_tags")
    svc.clear_tags(ident(call), call.params["project_id"])
    return None


@api.route("/v3/projects/{project_id}/tags/{tag}", "GET", "HEAD")
def check_project_tag(call: Call):
    _enforce_on(call, "get_project_tags")
    svc.check_tag(ident(call), call.params["project_id"], call.params["tag"])
    return None


@api.route("/v3/projects/{project_id}/tags/{tag}", "PUT")
def add_project_tag(call: Call):
    _enforce_on(call, "project_tags")
    project_id, tag = call.params["project_id"], call.params["tag"]
    svc.add_tag(ident(call), project_id, tag)
    return Response(status_code=201, headers={"Location": call.url(f"/v3/projects/{project_id}/tags/{tag}")})


@api.route("/v3/projects/{project_id}/tags/{tag}", "DELETE")
def delete_project_tag(call: Call):
    _enforce_on(call, "project_tags")
    svc.delete_tag(ident(call), call.params["project_id"], call.params["tag"])
    return None
