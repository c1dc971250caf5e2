"""``/v3/attachments`` (microversion 3.27+): how Nova attaches volumes."""

from __future__ import annotations

from starlette.responses import Response

from kumo.block_storage.api import render
from kumo.block_storage.api.common import mv, svc
from kumo.block_storage.errors import BadRequest, NotFound
from kumo.block_storage.service import attachments as atts
from kumo.block_storage.service.validate import action_body
from kumo.common.asgi import API, Call

api = API()


def _require(call: Call) -> None:
    if not mv(call).matches("3.27"):
        raise NotFound("The attachments API needs microversion 3.27 or later.")


@api.route("/v3/attachments", "GET")
def list_attachments(call: Call):
    _require(call)
    return {"attachments": [render.attachment(a, detail=False) for a in atts.list_attachments(svc(call), call.ctx,
                                                                                              call.query)]}


@api.route("/v3/attachments/detail", "GET")
def list_attachments_detail(call: Call):
    _require(call)
    return {"attachments": [render.attachment(a) for a in atts.list_attachments(svc(call), call.ctx, call.query)]}


@api.route("/v3/attachments", "POST")
def create_attachment(call: Call):
    _require(call)
    return {"attachment": render.attachment(atts.create_attachment(svc(call), call.ctx, call.body))}


@api.route("/v3/attachments/{attachment_id}", "GET")
def show_attachment(call: Call):
    _require(call)
    return {"attachment": render.attachment(atts.get_attachment(svc(call), call.ctx, call.params["attachment_id"]))}


@api.route("/v3/attachments/{attachment_id}", "PUT")
def update_attachment(call: Call):
    _require(call)
    a = atts.update_attachment(svc(call), call.ctx, call.params["attachment_id"], call.body)
    return {"attachment": render.attachment(a)}


@api.route("/v3/attachments/{attachment_id}", "DELETE")
def delete_attachment(call: Call):
    _require(call)
    rest = atts.delete_attachment(svc(call), call.ctx, call.params["attachment_id"])
    return {"attachments": [render.attachment(a, detail=False) for a in rest]}


@api.route("/v3/attachments/{attachment_id}/action", "POST")
def attachment_action(call: Call):
    _require(call)
    if not mv(call).matches("3.44"):
        raise NotFound("Completing attachments needs microversion 3.44 or later.")
    name, _args = action_body(call.body)
    if name != "os-complete":
        raise BadRequest(f"There is no such action: {name}")
    atts.complete_attachment(svc(call), call.ctx, call.params["attachment_id"])
    return Response(status_code=204)
