"""``/v3/volumes``: volumes, their metadata and actions."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kumo.block_storage.api import render
from kumo.block_storage.api.common import mv, next_link, svc
from kumo.block_storage.errors import BadRequest
from kumo.block_storage.models import Volume
from kumo.block_storage.service import volume_actions
from kumo.block_storage.service import volumes as vols
from kumo.block_storage.service.validate import boolean
from kumo.common.asgi import API, Call, json_response
from kumo.common.pagination import paginate, parse_limit

api = API()


def _render(call: Call, rows: list[Volume], *, created: bool = False) -> list[dict[str, Any]]:
    service = svc(call)
    with service.db.reader() as s:
        atts = vols.attachments_of(s, [v.id for v in rows])
        types = vols.type_names(s)
    admin = service.is_admin(call.ctx)
    return [render.volume(call, v, atts.get(v.id, []), types.get(v.volume_type_id or ""), admin=admin,
                          created=created) for v in rows]


def page_of(call: Call, rows: list[Any]) -> tuple[list[Any], bool, int]:
    """limit / marker / offset; a full page gets a ``next`` link (as Cinder does)."""
    limit = parse_limit(call.query)
    offset = call.query.get("offset")
    if offset is not None:
        try:
            off = int(offset)
            assert off >= 0
        except (ValueError, AssertionError):
            raise BadRequest(f"Invalid value '{offset}' for offset.") from None
        rows = rows[off:]
    total = len(rows)
    page, _more = paginate(rows, limit, call.query.get("marker"), key=lambda r: r.id)
    return page, bool(limit and page and len(page) == limit), total


def _list(call: Call, detail: bool) -> dict[str, Any]:
    rows = vols.list_volumes(svc(call), call.ctx, call.query)
    page, nxt, total = page_of(call, rows)
    body: dict[str, Any] = {
        "volumes": _render(call, page) if detail else [render.volume_summary(call, v) for v in page]
    }
    if nxt:
        body["volumes_links"] = next_link(call, "volumes/detail" if detail else "volumes", page[-1].id,
                                          parse_limit(call.query) or 0)
    if mv(call).matches("3.45") and str(call.query.get("with_count", "")).lower() in ("true", "1"):
        body["count"] = total
    return body


@api.route("/v3/volumes", "GET")
def list_volumes(call: Call):
    return _list(call, detail=False)


@api.route("/v3/volumes/detail", "GET")
def list_volumes_detail(call: Call):
    return _list(call, detail=True)


@api.route("/v3/volumes/summary", "GET")
def volume_summary(call: Call):
    if not mv(call).matches("3.12"):
        raise BadRequest("The volume summary needs microversion 3.12 or later.")
    body = vols.summary(svc(call), call.ctx, call.query)
    if not mv(call).matches("3.36"):
        body.pop("metadata")
    return {"volume-summary": body}


@api.route("/v3/volumes", "POST", status=202)
def create_volume(call: Call):
    v = vols.create_volume(svc(call), call.ctx, call.body)
    return {"volume": _render(call, [v], created=True)[0]}


@api.route("/v3/volumes/{volume_id}", "GET")
def show_volume(call: Call):
    v = vols.get_volume(svc(call), call.ctx, call.params["volume_id"])
    return {"volume": _render(call, [v])[0]}


@api.route("/v3/volumes/{volume_id}", "PUT")
def update_volume(call: Call):
    v = vols.update_volume(svc(call), call.ctx, call.params["volume_id"], call.body)
    return {"volume": _render(call, [v], created=True)[0]}


@api.route("/v3/volumes/{volume_id}", "DELETE", status=202)
def delete_volume(call: Call):
    cascade = boolean(call.query.get("cascade", "false"), "cascade")
    force = boolean(call.query.get("force", "false"), "force")
    vols.delete_volume(svc(call), call.ctx, call.params["volume_id"], cascade=cascade, force=force)
    return Response(status_code=202)


@api.route("/v3/volumes/{volume_id}/action", "POST")
def volume_action(call: Call):
    result = volume_actions.run(svc(call), call.ctx, call.params["volume_id"], call.body, mv(call))
    name = next(iter(call.body)) if isinstance(call.body, dict) and call.body else ""
    status = 200 if name in volume_actions.STATUS_200 else 202
    if result is None:
        return Response(status_code=status)
    return json_response(result, status)


@api.route("/v3/volumes/{volume_id}/metadata", "GET")
def show_metadata(call: Call):
    v = vols.get_volume(svc(call), call.ctx, call.params["volume_id"])
    return {"metadata": dict(v.metadata_ or {})}


@api.route("/v3/volumes/{volume_id}/metadata", "POST")
def create_metadata(call: Call):
    return {"metadata": vols.set_metadata(svc(call), call.ctx, call.params["volume_id"], call.body, replace=False)}


@api.route("/v3/volumes/{volume_id}/metadata", "PUT")
def replace_metadata(call: Call):
    return {"metadata": vols.set_metadata(svc(call), call.ctx, call.params["volume_id"], call.body, replace=True)}


@api.route("/v3/volumes/{volume_id}/metadata/{key}", "GET")
def show_metadata_item(call: Call):
    v = vols.get_volume(svc(call), call.ctx, call.params["volume_id"])
    key = call.params["key"]
    if key not in (v.metadata_ or {}):
        raise vols.NotFound(f"Volume {v.id} has no metadata with key {key}.")
    return {"meta": {key: v.metadata_[key]}}


@api.route("/v3/volumes/{volume_id}/metadata/{key}", "PUT")
def update_metadata_item(call: Call):
    return {"meta": vols.set_metadata_item(svc(call), call.ctx, call.params["volume_id"], call.params["key"],
                                           call.body)}


@api.route("/v3/volumes/{volume_id}/metadata/{key}", "DELETE")
def delete_metadata_item(call: Call):
    vols.delete_metadata_item(svc(call), call.ctx, call.params["volume_id"], call.params["key"])
    return Response(status_code=200)
