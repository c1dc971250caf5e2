"""``/v3/group_types``, ``/v3/groups`` and ``/v3/group_snapshots`` (microversions 3.11, 3.13, 3.14)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kumo.block_storage.api.common import iso, mv, svc
from kumo.block_storage.errors import NotFound
from kumo.block_storage.models import Group, GroupSnapshot, GroupType
from kumo.block_storage.service import groups
from kumo.common.asgi import API, Call, json_response

api = API()


def _need(call: Call, version: str, what: str) -> None:
    if not mv(call).matches(version):
        raise NotFound(f"{what} need microversion {version} or later.")


def _gtype(t: GroupType) -> dict[str, Any]:
    return {"id": t.id, "name": t.name, "description": t.description, "is_public": t.is_public,
            "group_specs": dict(t.group_specs or {})}


def _group(call: Call, g: Group, volume_ids: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": g.id, "name": g.name or "", "description": g.description, "status": g.status,
        "availability_zone": g.availability_zone, "created_at": iso(g.created_at), "group_type": g.group_type_id,
        "volume_types": list(g.volume_type_ids or []), "group_snapshot_id": g.group_snapshot_id,
        "source_group_id": g.source_group_id,
    }
    if mv(call).matches("3.25"):
        body["volumes"] = volume_ids
    if mv(call).matches("3.38"):
        body["replication_status"] = "disabled"
    return body


def _gsnap(gs: GroupSnapshot, status: str) -> dict[str, Any]:
    return {"id": gs.id, "name": gs.name or "", "description": gs.description, "status": status,
            "group_id": gs.group_id, "group_type_id": gs.group_type_id, "created_at": iso(gs.created_at)}


# --- group types ---------------------------------------------------------------------------------


@api.route("/v3/group_types", "GET")
def list_group_types(call: Call):
    _need(call, "3.11", "Group types")
    return {"group_types": [_gtype(t) for t in groups.list_group_types(svc(call), call.ctx, call.query)]}


@api.route("/v3/group_types", "POST")
def create_group_type(call: Call):
    _need(call, "3.11", "Group types")
    return json_response({"group_type": _gtype(groups.create_group_type(svc(call), call.ctx, call.body))}, 202)


@api.route("/v3/group_types/{ref}", "GET")
def show_group_type(call: Call):
    _need(call, "3.11", "Group types")
    return {"group_type": _gtype(groups.get_group_type(svc(call), call.ctx, call.params["ref"]))}


@api.route("/v3/group_types/{ref}", "PUT")
def update_group_type(call: Call):
    _need(call, "3.11", "Group types")
    return {"group_type": _gtype(groups.update_group_type(svc(call), call.ctx, call.params["ref"], call.body))}


@api.route("/v3/group_types/{ref}", "DELETE")
def delete_group_type(call: Call):
    _need(call, "3.11", "Group types")
    groups.delete_group_type(svc(call), call.ctx, call.params["ref"])
    return Response(status_code=202)


@api.route("/v3/group_types/{ref}/group_specs", "GET")
def list_group_specs(call: Call):
    _need(call, "3.11", "Group types")
    return {"group_specs": dict(groups.get_group_type(svc(call), call.ctx, call.params["ref"]).group_specs or {})}


@api.route("/v3/group_types/{ref}/group_specs", "POST", status=202)
def create_group_specs(call: Call):
    _need(call, "3.11", "Group types")
    specs = call.body.get("group_specs") if isinstance(call.body, dict) else None
    return {"group_specs": groups.set_group_specs(svc(call), call.ctx, call.params["ref"], specs)}


@api.route("/v3/group_types/{ref}/group_specs/{key}", "GET")
def show_group_spec(call: Call):
    _need(call, "3.11", "Group types")
    t = groups.get_group_type(svc(call), call.ctx, call.params["ref"])
    key = call.params["key"]
    if key not in (t.group_specs or {}):
        raise NotFound(f"Group type {t.id} has no specs with key {key}.")
    return {key: t.group_specs[key]}


@api.route("/v3/group_types/{ref}/group_specs/{key}", "PUT")
def update_group_spec(call: Call):
    _need(call, "3.11", "Group types")
    body = call.body if isinstance(call.body, dict) else {}
    if call.params["key"] not in body or len(body) != 1:
        raise groups.BadRequest("Request body and URI mismatch")
    return groups.set_group_specs(svc(call), call.ctx, call.params["ref"], body)


@api.route("/v3/group_types/{ref}/group_specs/{key}", "DELETE")
def delete_group_spec(call: Call):
    _need(call, "3.11", "Group types")
    groups.delete_group_spec(svc(call), call.ctx, call.params["ref"], call.params["key"])
    return Response(status_code=202)


# --- groups ----------------------------------------------------------------------------------------


@api.route("/v3/groups", "GET")
def list_groups(call: Call):
    _need(call, "3.13", "Groups")
    return {"groups": [{"id": g.id, "name": g.name or ""} for g, _ in groups.list_groups(svc(call), call.ctx,
                                                                                          call.query)]}


@api.route("/v3/groups/detail", "GET")
def list_groups_detail(call: Call):
    _need(call, "3.13", "Groups")
    return {"groups": [_group(call, g, v) for g, v in groups.list_groups(svc(call), call.ctx, call.query)]}


@api.route("/v3/groups", "POST", status=202)
def create_group(call: Call):
    _need(call, "3.13", "Groups")
    g = groups.create_group(svc(call), call.ctx, call.body)
    return {"group": {"id": g.id, "name": g.name or ""}}


@api.route("/v3/groups/action", "POST", status=202)
def create_group_from_source(call: Call):
    _need(call, "3.14", "Creating groups from a source")
    g = groups.create_from_source(svc(call), call.ctx, call.body, mv(call))
    return {"group": {"id": g.id, "name": g.name or ""}}


@api.route("/v3/groups/{group_id}", "GET")
def show_group(call: Call):
    _need(call, "3.13", "Groups")
    g, v = groups.get_group(svc(call), call.ctx, call.params["group_id"])
    return {"group": _group(call, g, v)}


@api.route("/v3/groups/{group_id}", "PUT")
def update_group(call: Call):
    _need(call, "3.13", "Groups")
    groups.update_group(svc(call), call.ctx, call.params["group_id"], call.body)
    return Response(status_code=202)


@api.route("/v3/groups/{group_id}/action", "POST")
def group_action(call: Call):
    _need(call, "3.13", "Groups")
    groups.group_action(svc(call), call.ctx, call.params["group_id"], call.body)
    return Response(status_code=202)


# --- group snapshots -------------------------------------------------------------------------------


@api.route("/v3/group_snapshots", "GET")
def list_group_snapshots(call: Call):
    _need(call, "3.14", "Group snapshots")
    rows = groups.list_group_snapshots(svc(call), call.ctx, call.query)
    return {"group_snapshots": [{"id": gs.id, "name": gs.name or ""} for gs, _ in rows]}


@api.route("/v3/group_snapshots/detail", "GET")
def list_group_snapshots_detail(call: Call):
    _need(call, "3.14", "Group snapshots")
    rows = groups.list_group_snapshots(svc(call), call.ctx, call.query)
    return {"group_snapshots": [_gsnap(gs, st) for gs, st in rows]}


@api.route("/v3/group_snapshots", "POST", status=202)
def create_group_snapshot(call: Call):
    _need(call, "3.14", "Group snapshots")
    gs = groups.create_group_snapshot(svc(call), call.ctx, call.body, mv(call))
    return {"group_snapshot": {"id": gs.id, "name": gs.name or "", "group_type_id": gs.group_type_id}}


@api.route("/v3/group_snapshots/{gs_id}", "GET")
def show_group_snapshot(call: Call):
    _need(call, "3.14", "Group snapshots")
    gs, status = groups.get_group_snapshot(svc(call), call.ctx, call.params["gs_id"])
    return {"group_snapshot": _gsnap(gs, status)}


@api.route("/v3/group_snapshots/{gs_id}", "DELETE")
def delete_group_snapshot(call: Call):
    _need(call, "3.14", "Group snapshots")
    groups.delete_group_snapshot(svc(call), call.ctx, call.params["gs_id"])
    return Response(status_code=202)


@api.route("/v3/group_snapshots/{gs_id}/action", "POST")
def group_snapshot_action(call: Call):
    _need(call, "3.19", "Group snapshot actions")
    groups.reset_group_snapshot(svc(call), call.ctx, call.params["gs_id"], call.body)
    return Response(status_code=202)
