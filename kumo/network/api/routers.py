"""Router actions: interfaces and extra routes, plus the L3 agent scheduler views."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.network.api.common import list_response, svc

router = API()


@router.route("/v2.0/routers/{id}/add_router_interface", "PUT")
def add_router_interface(call: Call) -> dict[str, Any]:
    return svc(call).add_router_interface(call.ctx, call.params["id"], call.body)


@router.route("/v2.0/routers/{id}/remove_router_interface", "PUT")
def remove_router_interface(call: Call) -> dict[str, Any]:
    return svc(call).remove_router_interface(call.ctx, call.params["id"], call.body)


@router.route("/v2.0/routers/{id}/add_extraroutes", "PUT")
def add_extraroutes(call: Call) -> dict[str, Any]:
    return {"router": svc(call).update_routes(call.ctx, call.params["id"], call.body, add=True)}


@router.route("/v2.0/routers/{id}/remove_extraroutes", "PUT")
def remove_extraroutes(call: Call) -> dict[str, Any]:
    return {"router": svc(call).update_routes(call.ctx, call.params["id"], call.body, add=False)}


@router.route("/v2.0/routers/{id}/l3-agents", "GET")
def l3_agents(call: Call) -> dict[str, Any]:
    return list_response(call, "agents", "agent", svc(call).l3_agents_for_router(call.ctx, call.params["id"]))


@router.route("/v2.0/agents/{id}/l3-routers", "GET")
def l3_routers(call: Call) -> dict[str, Any]:
    return list_response(call, "routers", "router", svc(call).routers_for_l3_agent(call.ctx, call.params["id"]))
