"""``/v3/OS-EP-FILTER``: endpoint groups and project <-> endpoint associations."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.identity import models as m
from kumo.identity.api.catalog import render_endpoint
from kumo.identity.api.common import collection, enforce, ident
from kumo.identity.api.render import render_project
from kumo.identity.service import endpoint_filter as epf
from kumo.identity.service.core import require_object

api = API()
P = "/v3/OS-EP-FILTER"


def render_group(call: Call, g: m.EndpointGroup) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "filters": g.filters or {},
        "links": {"self": call.url(f"{P}/endpoint_groups/{g.id}")},
    }


def _endpoints(call: Call, items: list[m.Endpoint]) -> dict[str, Any]:
    return collection(call, "endpoints", items, lambda e: render_endpoint(call, e))


def _projects(call: Call, items: list[m.Project]) -> dict[str, Any]:
    return collection(call, "projects", items, lambda p: render_project(call, p))


# -- endpoint groups ---------------------------------------------------------------
@api.route(f"{P}/endpoint_groups", "GET", "HEAD")
def list_endpoint_groups(call: Call):
    enforce(call, "list_endpoint_groups")
    items = epf.list_groups(ident(call), call.query.get("name"))
    return collection(call, "endpoint_groups", items, lambda g: render_group(call, g))


@api.route(f"{P}/endpoint_groups", "POST", status=201)
def create_endpoint_group(call: Call):
    enforce(call, "create_endpoint_group")
    group = epf.create_group(ident(call), require_object(call.body, "endpoint_group"))
    return {"endpoint_group": render_group(call, group)}


@api.route(f"{P}/endpoint_groups/{{group_id}}", "GET", "HEAD")
def get_endpoint_group(call: Call):
    enforce(call, "get_endpoint_group")
    return {"endpoint_group": render_group(call, epf.get_group(ident(call), call.params["group_id"]))}


@api.route(f"{P}/endpoint_groups/{{group_id}}", "PATCH")
def update_endpoint_group(call: Call):
    enforce(call, "update_endpoint_group")
    body = require_object(call.body, "endpoint_group")
    return {
        "endpoint_group": render_group(call, epf.update_group(ident(call), call.params["group_id"], body))
    }


@api.route(f"{P}/endpoint_groups/{{group_id}}", "DELETE", status=204)
def delete_endpoint_group(call: Call):
    enforce(call, "delete_endpoint_group")
    epf.delete_group(ident(call), call.params["group_id"])


@api.route(f"{P}/endpoint_groups/{{group_id}}/endpoints", "GET", "HEAD")
def list_endpoints_in_group(call: Call):
    enforce(call, "list_endpoints_associated_with_endpoint_group")
    return _endpoints(call, epf.endpoints_in_group(ident(call), call.params["group_id"]))


@api.route(f"{P}/endpoint_groups/{{group_id}}/projects", "GET", "HEAD")
def list_projects_in_group(call: Call):
    enforce(call, "list_projects_associated_with_endpoint_group")
    return _projects(call, epf.projects_in_group(ident(call), call.params["group_id"]))


# -- endpoint group <-> project ----------------------------------------------------
@api.route(f"{P}/endpoint_groups/{{group_id}}/projects/{{project_id}}", "GET", "HEAD")
def get_group_in_project(call: Call):
    enforce(call, "get_endpoint_group_in_project")
    gid, pid = call.params["group_id"], call.params["project_id"]
    epf.get_group_in_project(ident(call), gid, pid)
    link = call.url(f"{P}/endpoint_groups/{gid}/projects/{pid}")
    return {"project_endpoint_group": {"endpoint_group_id": gid, "project_id": pid, "links": {"self": link}}}


@api.route(f"{P}/endpoint_groups/{{group_id}}/projects/{{project_id}}", "PUT", status=204)
def add_group_to_project(call: Call):
    enforce(call, "add_endpoint_group_to_project")
    epf.add_group_to_project(ident(call), call.params["group_id"], call.params["project_id"])


@api.route(f"{P}/endpoint_groups/{{group_id}}/projects/{{project_id}}", "DELETE", status=204)
def remove_group_from_project(call: Call):
    enforce(call, "remove_endpoint_group_from_project")
    epf.remove_group_from_project(ident(call), call.params["group_id"], call.params["project_id"])


@api.route(f"{P}/projects/{{project_id}}/endpoint_groups", "GET", "HEAD")
def list_groups_for_project(call: Call):
    enforce(call, "list_endpoint_groups_for_project")
    items = epf.groups_for_project(ident(call), call.params["project_id"])
    return collection(call, "endpoint_groups", items, lambda g: render_group(call, g))


# -- endpoint <-> project ----------------------------------------------------------
@api.route(f"{P}/projects/{{project_id}}/endpoints", "GET", "HEAD")
def list_endpoints_for_project(call: Call):
    enforce(call, "list_endpoints_for_project")
    return _endpoints(call, epf.endpoints_for_project(ident(call), call.params["project_id"]))


@api.route(f"{P}/projects/{{project_id}}/endpoints/{{endpoint_id}}", "PUT", status=204)
def add_endpoint_to_project(call: Call):
    enforce(call, "add_endpoint_to_project")
    epf.add_endpoint_to_project(ident(call), call.params["endpoint_id"], call.params["project_id"])


@api.route(f"{P}/projects/{{project_id}}/endpoints/{{endpoint_id}}", "GET", "HEAD", status=204)
def check_endpoint_in_project(call: Call):
    enforce(call, "check_endpoint_in_project")
    epf.check_endpoint_in_project(ident(call), call.params["endpoint_id"], call.params["project_id"])


@api.route(f"{P}/projects/{{project_id}}/endpoints/{{endpoint_id}}", "DELETE", status=204)
def remove_endpoint_from_project(call: Call):
    enforce(call, "remove_endpoint_from_project")
    epf.remove_endpoint_from_project(ident(call), call.params["endpoint_id"], call.params["project_id"])


@api.route(f"{P}/endpoints/{{endpoint_id}}/projects", "GET", "HEAD")
def list_projects_for_endpoint(call: Call):
    enforce(call, "list_projects_for_endpoint")
    return _projects(call, epf.projects_for_endpoint(ident(call), call.params["endpoint_id"]))
