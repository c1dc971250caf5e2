"""``/os-tenant-networks`` and ``/os-networks``: Nova's (until 2.35) read-only proxies to the network API."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.compute.api.common import mv, svc
from kumo.compute.clients import Peers
from kumo.compute.errors import NotFound

api = API()


def _peers(call: Call) -> Peers:
    if mv(call).matches("2.36"):
        raise NotFound("The resource could not be found.")
    peers = Peers(call.ctx, svc(call).extras)
    if not peers.network_url:
        raise NotFound("Networks need the network service, which is not available.")
    return peers


async def _cidr(peers: Peers, net: dict[str, Any]) -> str | None:
    for sub_id in net.get("subnets") or []:
        r = await peers.network("GET", f"/subnets/{sub_id}")
        if r.status_code == 200 and r.json()["subnet"].get("ip_version") == 4:
            return r.json()["subnet"].get("cidr")
    return None


async def _render(peers: Peers, net: dict[str, Any], full: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": net["id"],
        "label": net.get("name") or net["id"],
        "cidr": await _cidr(peers, net),
    }
    if full:
        body.update({"project_id": net.get("project_id") or net.get("tenant_id"), "mtu": net.get("mtu"),
                     "bridge": None, "vlan": None, "dhcp_start": None, "gateway": None, "netmask": None})  # fmt: skip
    return body


async def _list(call: Call, full: bool) -> dict[str, Any]:
    peers = _peers(call)
    r = await peers.network("GET", "/networks")
    nets = r.json().get("networks", []) if r.status_code == 200 else []
    return {"networks": [await _render(peers, n, full) for n in nets]}


async def _show(call: Call, full: bool) -> dict[str, Any]:
    peers = _peers(call)
    r = await peers.network("GET", f"/networks/{call.params['network_id']}")
    if r.status_code != 200:
        raise NotFound(f"Network {call.params['network_id']} could not be found.")
    return {"network": await _render(peers, r.json()["network"], full)}


@api.route("/v2.1/os-tenant-networks", "GET")
async def list_tenant_networks(call: Call):
    return await _list(call, False)


@api.route("/v2.1/os-tenant-networks/{network_id}", "GET")
async def show_tenant_network(call: Call):
    return await _show(call, False)


@api.route("/v2.1/os-networks", "GET")
async def list_networks(call: Call):
    return await _list(call, True)


@api.route("/v2.1/os-networks/{network_id}", "GET")
async def show_network(call: Call):
    return await _show(call, True)
