"""Agents, the DHCP agent scheduler, and the internal agent API (AGENT_API.md)."""

from __future__ import annotations

import time
from typing import Any

import anyio
import anyio.to_thread
from starlette.responses import Response

from kumo.common.asgi import API, Call, json_response
from kumo.network.api.common import inner, list_response, show_response, svc
from kumo.network.errors import bad
from kumo.network.schemas import to_int

router = API()


@router.route("/v2.0/agents", "GET")
def list_agents(call: Call) -> dict[str, Any]:
    return list_response(call, "agents", "agent", svc(call).list_agents(call.ctx), casefold=("agent_type",))


@router.route("/v2.0/agents/{id}", "GET")
def show_agent(call: Call) -> dict[str, Any]:
    return show_response(call, "agent", svc(call).show_agent(call.ctx, call.params["id"]))


@router.route("/v2.0/agents/{id}", "PUT")
def update_agent(call: Call) -> dict[str, Any]:
    return {"agent": svc(call).update_agent(call.ctx, call.params["id"], inner(call, "agent"))}


@router.route("/v2.0/agents/{id}", "DELETE")
def delete_agent(call: Call) -> None:
    svc(call).delete_agent(call.ctx, call.params["id"])


@router.route("/v2.0/agents/{id}/dhcp-networks", "GET")
def dhcp_networks(call: Call) -> dict[str, Any]:
    return list_response(call, "networks", "network", svc(call).dhcp_networks_for_agent(call.ctx, call.params["id"]))


@router.route("/v2.0/agents/{id}/dhcp-networks", "POST")
def add_dhcp_network(call: Call) -> Response:
    svc(call).add_network_to_dhcp_agent(call.ctx, call.params["id"], call.body)
    return Response(status_code=201)


@router.route("/v2.0/agents/{id}/dhcp-networks/{network_id}", "DELETE")
def remove_dhcp_network(call: Call) -> None:
    svc(call).remove_network_from_dhcp_agent(call.ctx, call.params["id"], call.params["network_id"])


@router.route("/v2.0/networks/{id}/dhcp-agents", "GET")
def dhcp_agents(call: Call) -> dict[str, Any]:
    return list_response(call, "agents", "agent", svc(call).dhcp_agents_for_network(call.ctx, call.params["id"]))


# -- internal agent API ----------------------------------------------------------------------


@router.route("/v2.0/kumo-agent/agents/report", "POST")
def report(call: Call) -> dict[str, Any]:
    return {"agent": svc(call).report_agent(call.ctx, inner(call, "agent"))}


def _status(call: Call) -> Any:
    body = call.body
    if not isinstance(body, dict) or "status" not in body:
        raise bad("Body must be {\"status\": \"ACTIVE\" | \"DOWN\" | \"ERROR\"}")
    return body["status"]


@router.route("/v2.0/kumo-agent/ports/{id}/status", "PUT")
def port_status(call: Call) -> dict[str, Any]:
    service = svc(call)
    if not _is_service(call):
        raise service._forbid("update_port_status")
    return {"port": service.set_port_status(call.ctx, call.params["id"], _status(call))}


@router.route("/v2.0/kumo-agent/floatingips/{id}/status", "PUT")
def fip_status(call: Call) -> dict[str, Any]:
    service = svc(call)
    if not _is_service(call):
        raise service._forbid("update_floatingip_status")
    return {"floatingip": service.set_fip_status(call.ctx, call.params["id"], _status(call))}


def _is_service(call: Call) -> bool:
    from kumo.network.policies import is_service

    return is_service(call.ctx)


@router.route("/v2.0/kumo-agent/state", "GET")
async def state(call: Call) -> Response:
    service = svc(call)
    if not _is_service(call):
        raise service._forbid("get_agent_state")
    q = call.query
    since = to_int(q.get("since_revision", "-1"), "since_revision", -1) if q.get("since_revision") else -1
    wait = to_int(q.get("wait", "0"), "wait", 0, 60) if q.get("wait") else 0
    deadline = time.monotonic() + (wait or 0)
    while True:
        rev = await anyio.to_thread.run_sync(service.current_revision)
        if rev > (since or -1) or time.monotonic() >= deadline:
            break
        await anyio.sleep(0.1)
    doc = await anyio.to_thread.run_sync(service.agent_state, call.ctx)
    doc["host"] = q.get("host")
    return json_response(doc)
