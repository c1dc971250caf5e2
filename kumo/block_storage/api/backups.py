"""``/v3/backups``: backup records, restore, status actions, export/import."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kumo.block_storage.api import render
from kumo.block_storage.api.common import links, mv, next_link, svc
from kumo.block_storage.api.volumes import page_of
from kumo.block_storage.errors import NotFound
from kumo.block_storage.service import backups
from kumo.common.asgi import API, Call
from kumo.common.pagination import parse_limit

api = API()


def _list(call: Call, detail: bool) -> dict[str, Any]:
    rows = backups.list_backups(svc(call), call.ctx, call.query)
    deps = {b.id: d for b, d in rows}
    page, nxt, total = page_of(call, [b for b, _ in rows])
    body: dict[str, Any] = {"backups": [render.backup(call, b, dependents=deps[b.id], detail=detail) for b in page]}
    if nxt:
        body["backups_links"] = next_link(call, "backups/detail" if detail else "backups", page[-1].id,
                                          parse_limit(call.query) or 0)
    if mv(call).matches("3.45") and str(call.query.get("with_count", "")).lower() in ("true", "1"):
        body["count"] = total
    return body


@api.route("/v3/backups", "GET")
def list_backups(call: Call):
    return _list(call, detail=False)


@api.route("/v3/backups/detail", "GET")
def list_backups_detail(call: Call):
    return _list(call, detail=True)


@api.route("/v3/backups", "POST", status=202)
def create_backup(call: Call):
    b = backups.create_backup(svc(call), call.ctx, call.body, mv(call))
    body: dict[str, Any] = {"id": b.id, "name": b.name, "links": links(call, "backups", b.id)}
    if mv(call).matches("3.43"):
        body["metadata"] = dict(b.metadata_ or {})
    return {"backup": body}


@api.route("/v3/backups/import_record", "POST", status=201)
def import_record(call: Call):
    b = backups.import_record(svc(call), call.ctx, call.body)
    return {"backup": {"id": b.id, "name": b.name, "links": links(call, "backups", b.id)}}


@api.route("/v3/backups/{backup_id}", "GET")
def show_backup(call: Call):
    b, deps = backups.get_backup(svc(call), call.ctx, call.params["backup_id"])
    return {"backup": render.backup(call, b, dependents=deps)}


@api.route("/v3/backups/{backup_id}", "PUT")
def update_backup(call: Call):
    if not mv(call).matches("3.9"):
        raise NotFound("Updating backups needs microversion 3.9 or later.")
    b = backups.update_backup(svc(call), call.ctx, call.params["backup_id"], call.body)
    body: dict[str, Any] = {"id": b.id, "name": b.name, "links": links(call, "backups", b.id)}
    if mv(call).matches("3.43"):
        body["metadata"] = dict(b.metadata_ or {})
    return {"backup": body}


@api.route("/v3/backups/{backup_id}", "DELETE")
def delete_backup(call: Call):
    backups.delete_backup(svc(call), call.ctx, call.params["backup_id"])
    return Response(status_code=202)


@api.route("/v3/backups/{backup_id}/restore", "POST", status=202)
def restore_backup(call: Call):
    return {"restore": backups.restore(svc(call), call.ctx, call.params["backup_id"], call.body)}


@api.route("/v3/backups/{backup_id}/action", "POST")
def backup_action(call: Call):
    backups.action(svc(call), call.ctx, call.params["backup_id"], call.body)
    return Response(status_code=202)


@api.route("/v3/backups/{backup_id}/export_record", "GET")
def export_record(call: Call):
    return {"backup-record": backups.export_record(svc(call), call.ctx, call.params["backup_id"])}
