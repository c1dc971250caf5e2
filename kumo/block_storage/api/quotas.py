"""``/v3/os-quota-sets``, ``/v3/os-quota-class-sets`` and ``/v3/limits``."""

from __future__ import annotations

from starlette.responses import Response

from kumo.block_storage.api.common import svc
from kumo.block_storage.service import quotas
from kumo.common.asgi import API, Call

api = API()


@api.route("/v3/os-quota-sets/{project_id}", "GET")
def show_quota_set(call: Call):
    usage = str(call.query.get("usage", "false")).lower() in ("true", "1", "yes")
    return {"quota_set": quotas.show(svc(call), call.ctx, call.params["project_id"], with_usage=usage)}


@api.route("/v3/os-quota-sets/{project_id}/defaults", "GET")
def show_default_quota_set(call: Call):
    return {"quota_set": quotas.show_defaults(svc(call), call.ctx, call.params["project_id"])}


@api.route("/v3/os-quota-sets/{project_id}", "PUT")
def update_quota_set(call: Call):
    return {"quota_set": quotas.update(svc(call), call.ctx, call.params["project_id"], call.body)}


@api.route("/v3/os-quota-sets/{project_id}", "DELETE")
def delete_quota_set(call: Call):
    quotas.delete(svc(call), call.ctx, call.params["project_id"])
    return Response(status_code=200)


@api.route("/v3/os-quota-class-sets/{name}", "GET")
def show_quota_class_set(call: Call):
    return {"quota_class_set": quotas.show_class(svc(call), call.ctx, call.params["name"])}


@api.route("/v3/os-quota-class-sets/{name}", "PUT")
def update_quota_class_set(call: Call):
    return {"quota_class_set": quotas.update_class(svc(call), call.ctx, call.params["name"], call.body)}


@api.route("/v3/limits", "GET")
def show_limits(call: Call):
    return {"limits": {"rate": [], "absolute": quotas.absolute_limits(svc(call), call.ctx)}}
