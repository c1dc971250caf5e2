"""``/v3/snapshots``: snapshots, their metadata and admin actions."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kumo.block_storage.api import render
from kumo.block_storage.api.common import mv, next_link, svc
from kumo.block_storage.api.volumes import page_of
from kumo.block_storage.service import snapshots as snaps
from kumo.common.asgi import API, Call
from kumo.common.pagination import parse_limit

api = API()


def _list(call: Call, detail: bool) -> dict[str, Any]:
    rows = snaps.list_snapshots(svc(call), call.ctx, call.query)
    page, nxt, total = page_of(call, rows)
    body: dict[str, Any] = {"snapshots": [render.snapshot(call, x, detail=detail) for x in page]}
    if nxt:
        body["snapshots_links"] = next_link(call, "snapshots/detail" if detail else "snapshots", page[-1].id,
                                            parse_limit(call.query) or 0)
    if mv(call).matches("3.45") and str(call.query.get("with_count", "")).lower() in ("true", "1"):
        body["count"] = total
    return body


@api.route("/v3/snapshots", "GET")
def list_snapshots(call: Call):
    return _list(call, detail=False)


@api.route("/v3/snapshots/detail", "GET")
def list_snapshots_detail(call: Call):
    return _list(call, detail=True)


@api.route("/v3/snapshots", "POST", status=202)
def create_snapshot(call: Call):
    x = snaps.create_snapshot(svc(call), call.ctx, call.body, mv(call))
    return {"snapshot": render.snapshot(call, x, detail=False)}


@api.route("/v3/snapshots/{snapshot_id}", "GET")
def show_snapshot(call: Call):
    return {"snapshot": render.snapshot(call, snaps.get_snapshot(svc(call), call.ctx, call.params["snapshot_id"]))}


@api.route("/v3/snapshots/{snapshot_id}", "PUT")
def update_snapshot(call: Call):
    x = snaps.update_snapshot(svc(call), call.ctx, call.params["snapshot_id"], call.body)
    return {"snapshot": render.snapshot(call, x, detail=False)}


@api.route("/v3/snapshots/{snapshot_id}", "DELETE")
def delete_snapshot(call: Call):
    snaps.delete_snapshot(svc(call), call.ctx, call.params["snapshot_id"])
    return Response(status_code=202)


@api.route("/v3/snapshots/{snapshot_id}/action", "POST")
def snapshot_action(call: Call):
    snaps.action(svc(call), call.ctx, call.params["snapshot_id"], call.body)
    return Response(status_code=202)


@api.route("/v3/snapshots/{snapshot_id}/metadata", "GET")
def show_metadata(call: Call):
    x = snaps.get_snapshot(svc(call), call.ctx, call.params["snapshot_id"])
    return {"metadata": dict(x.metadata_ or {})}


@api.route("/v3/snapshots/{snapshot_id}/metadata", "POST")
def create_metadata(call: Call):
    return {"metadata": snaps.set_metadata(svc(call), call.ctx, call.params["snapshot_id"], call.body,
                                           replace=False)}


@api.route("/v3/snapshots/{snapshot_id}/metadata", "PUT")
def replace_metadata(call: Call):
    return {"metadata": snaps.set_metadata(svc(call), call.ctx, call.params["snapshot_id"], call.body,
                                           replace=True)}


@api.route("/v3/snapshots/{snapshot_id}/metadata/{key}", "GET")
def show_metadata_item(call: Call):
    x = snaps.get_snapshot(svc(call), call.ctx, call.params["snapshot_id"])
    key = call.params["key"]
    if key not in (x.metadata_ or {}):
        raise snaps.NotFound(f"Snapshot {x.id} has no metadata with key {key}.")
    return {"meta": {key: x.metadata_[key]}}


@api.route("/v3/snapshots/{snapshot_id}/metadata/{key}", "PUT")
def update_metadata_item(call: Call):
    return {"meta": snaps.set_metadata_item(svc(call), call.ctx, call.params["snapshot_id"], call.params["key"],
                                            call.body)}


@api.route("/v3/snapshots/{snapshot_id}/metadata/{key}", "DELETE")
def delete_metadata_item(call: Call):
    snaps.delete_metadata_item(svc(call), call.ctx, call.params["snapshot_id"], call.params["key"])
    return Response(status_code=200)
