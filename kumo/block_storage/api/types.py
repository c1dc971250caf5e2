"""``/v3/types``: volume types, extra specs, access; ``/v3/qos-specs``."""

from __future__ import annotations

from starlette.responses import Response

from kumo.block_storage.api import render
from kumo.block_storage.api.common import links, svc
from kumo.block_storage.errors import BadRequest
from kumo.block_storage.service import qos
from kumo.block_storage.service import types as vtypes
from kumo.block_storage.service.validate import action_body
from kumo.common.asgi import API, Call

api = API()


def _type(call: Call, t, full: bool = True):  # type: ignore[no-untyped-def]
    return render.volume_type(call, t, admin=svc(call).is_admin(call.ctx), full=full)


@api.route("/v3/types", "GET")
def list_types(call: Call):
    return {"volume_types": [_type(call, t) for t in vtypes.list_types(svc(call), call.ctx, call.query)]}


@api.route("/v3/types", "POST")
def create_type(call: Call):
    t = vtypes.create_type(svc(call), call.ctx, call.body)
    return {"volume_type": _type(call, t, full=False)}


@api.route("/v3/types/{type_id}", "GET")
def show_type(call: Call):
    return {"volume_type": _type(call, vtypes.get_type(svc(call), call.ctx, call.params["type_id"]))}


@api.route("/v3/types/{type_id}", "PUT")
def update_type(call: Call):
    t = vtypes.update_type(svc(call), call.ctx, call.params["type_id"], call.body)
    body = _type(call, t, full=False)
    body.pop("os-volume-type-access:is_public", None)
    return {"volume_type": body}


@api.route("/v3/types/{type_id}", "DELETE")
def delete_type(call: Call):
    vtypes.delete_type(svc(call), call.ctx, call.params["type_id"])
    return Response(status_code=202)


@api.route("/v3/types/{type_id}/extra_specs", "GET")
def list_extra_specs(call: Call):
    return {"extra_specs": vtypes.list_extra_specs(svc(call), call.ctx, call.params["type_id"])}


@api.route("/v3/types/{type_id}/extra_specs", "POST")
def create_extra_specs(call: Call):
    return {"extra_specs": vtypes.set_extra_specs(svc(call), call.ctx, call.params["type_id"], call.body)}


@api.route("/v3/types/{type_id}/extra_specs/{key}", "GET")
def show_extra_spec(call: Call):
    return vtypes.get_extra_spec(svc(call), call.ctx, call.params["type_id"], call.params["key"])


@api.route("/v3/types/{type_id}/extra_specs/{key}", "PUT")
def update_extra_spec(call: Call):
    return vtypes.update_extra_spec(svc(call), call.ctx, call.params["type_id"], call.params["key"], call.body)


@api.route("/v3/types/{type_id}/extra_specs/{key}", "DELETE")
def delete_extra_spec(call: Call):
    vtypes.delete_extra_spec(svc(call), call.ctx, call.params["type_id"], call.params["key"])
    return Response(status_code=202)


@api.route("/v3/types/{type_id}/os-volume-type-access", "GET")
def list_access(call: Call):
    return {"volume_type_access": vtypes.type_access(svc(call), call.ctx, call.params["type_id"])}


@api.route("/v3/types/{type_id}/action", "POST")
def type_action(call: Call):
    name, _args = action_body(call.body)
    if name not in ("addProjectAccess", "removeProjectAccess"):
        raise BadRequest(f"There is no such action: {name}")
    vtypes.modify_access(svc(call), call.ctx, call.params["type_id"], call.body, add=name == "addProjectAccess")
    return Response(status_code=202)


# --- QoS specs --------------------------------------------------------------------------------


@api.route("/v3/qos-specs", "GET")
def list_qos(call: Call):
    return {"qos_specs": [render.qos(call, q) for q in qos.list_all(svc(call), call.ctx)]}


@api.route("/v3/qos-specs", "POST")
def create_qos(call: Call):
    q = qos.create(svc(call), call.ctx, call.body)
    return {"qos_specs": render.qos(call, q), "links": links(call, "qos-specs", q.id)}


@api.route("/v3/qos-specs/{qos_id}", "GET")
def show_qos(call: Call):
    q = qos.show(svc(call), call.ctx, call.params["qos_id"])
    return {"qos_specs": render.qos(call, q), "links": links(call, "qos-specs", q.id)}


@api.route("/v3/qos-specs/{qos_id}", "PUT")
def set_qos_keys(call: Call):
    return {"qos_specs": qos.set_keys(svc(call), call.ctx, call.params["qos_id"], call.body)}


@api.route("/v3/qos-specs/{qos_id}", "DELETE")
def delete_qos(call: Call):
    qos.delete(svc(call), call.ctx, call.params["qos_id"], call.query.get("force"))
    return Response(status_code=202)


@api.route("/v3/qos-specs/{qos_id}/delete_keys", "PUT")
def unset_qos_keys(call: Call):
    qos.unset_keys(svc(call), call.ctx, call.params["qos_id"], call.body)
    return Response(status_code=202)


@api.route("/v3/qos-specs/{qos_id}/associations", "GET")
def qos_associations(call: Call):
    return {"qos_associations": qos.associations(svc(call), call.ctx, call.params["qos_id"])}


@api.route("/v3/qos-specs/{qos_id}/associate", "GET")
def qos_associate(call: Call):
    qos.associate(svc(call), call.ctx, call.params["qos_id"], call.query.get("vol_type_id"))
    return Response(status_code=202)


@api.route("/v3/qos-specs/{qos_id}/disassociate", "GET")
def qos_disassociate(call: Call):
    qos.disassociate(svc(call), call.ctx, call.params["qos_id"], call.query.get("vol_type_id"))
    return Response(status_code=202)


@api.route("/v3/qos-specs/{qos_id}/disassociate_all", "GET")
def qos_disassociate_all(call: Call):
    qos.disassociate_all(svc(call), call.ctx, call.params["qos_id"])
    return Response(status_code=202)
