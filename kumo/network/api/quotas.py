"""``/v2.0/quotas[/{project_id}[/default|/details]]``."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.network.api.common import inner, svc

router = API()


@router.route("/v2.0/quotas", "GET")
def list_quotas(call: Call) -> dict[str, Any]:
    return {"quotas": svc(call).list_quotas(call.ctx)}


@router.route("/v2.0/quotas/tenant", "GET")
def quota_tenant(call: Call) -> dict[str, Any]:
    return {"tenant": {"tenant_id": call.ctx.project_id}}


@router.route("/v2.0/quotas/{project_id}", "GET")
def show_quota(call: Call) -> dict[str, Any]:
    return {"quota": svc(call).show_quota(call.ctx, call.params["project_id"])}


@router.route("/v2.0/quotas/{project_id}/default", "GET")
def default_quota(call: Call) -> dict[str, Any]:
    return {"quota": svc(call).default_quota(call.ctx, call.params["project_id"])}


@router.route("/v2.0/quotas/{project_id}/details", "GET")
def quota_details(call: Call) -> dict[str, Any]:
    return {"quota": svc(call).quota_details(call.ctx, call.params["project_id"])}


@router.route("/v2.0/quotas/{project_id}", "PUT")
def update_quota(call: Call) -> dict[str, Any]:
    return {"quota": svc(call).update_quota(call.ctx, call.params["project_id"], inner(call, "quota"))}


@router.route("/v2.0/quotas/{project_id}", "DELETE")
def delete_quota(call: Call) -> None:
    svc(call).delete_quota(call.ctx, call.params["project_id"])
