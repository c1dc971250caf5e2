"""``/os-floating-ips`` (and add/removeFloatingIp): Nova's (until 2.35 / 2.43) proxy to the network API."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import mv, svc
from kumo.compute.clients import Peers
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.service import servers

api = API()


def _peers(call: Call, max_version: str = "2.36") -> Peers:
    if mv(call).matches(max_version):
        raise NotFound("The resource could not be found.")
    peers = Peers(call.ctx, svc(call).extras)
    if not peers.network_url:
        raise NotFound("Floating IPs need the network service, which is not available.")
    return peers


async def _pool_names(peers: Peers) -> dict[str, str]:
    r = await peers.network("GET", "/networks", params={"router:external": "True"})
    return {
        n["id"]: n.get("name") or n["id"]
        for n in (r.json().get("networks", []) if r.status_code == 200 else [])
    }


async def _render(peers: Peers, fip: dict[str, Any], pools: dict[str, str] | None = None) -> dict[str, Any]:
    pools = pools if pools is not None else await _pool_names(peers)
    instance = None
    if fip.get("port_id"):
        r = await peers.network("GET", f"/ports/{fip['port_id']}")
        if r.status_code == 200:
            instance = r.json()["port"].get("device_id") or None
    return {
        "id": fip["id"],
        "ip": fip["floating_ip_address"],
        "fixed_ip": fip.get("fixed_ip_address"),
        "pool": pools.get(fip["floating_network_id"], fip["floating_network_id"]),
        "instance_id": instance,
    }


@api.route("/v2.1/os-floating-ips", "GET")
async def list_floating_ips(call: Call):
    peers = _peers(call)
    r = await peers.network("GET", "/floatingips", params={"project_id": call.ctx.project_id or ""})
    pools = await _pool_names(peers)
    return {"floating_ips": [await _render(peers, f, pools) for f in r.json().get("floatingips", [])]}


@api.route("/v2.1/os-floating-ips", "POST")
async def create_floating_ip(call: Call):
    peers = _peers(call)
    pool = (call.body or {}).get("pool") if isinstance(call.body, dict) else None
    pools = await _pool_names(peers)
    if pool:
        matches = [nid for nid, name in pools.items() if name == pool or nid == pool]
        if not matches:
            raise NotFound(f"Floating IP pool not found: {pool}")
        net = matches[0]
    elif len(pools) == 1:
        net = next(iter(pools))
    else:
        raise NotFound("No floating IP pool is configured.")
    r = await peers.network("POST", "/floatingips", json={"floatingip": {"floating_network_id": net}})
    if r.status_code >= 400:
        raise NotFound(f"No more floating IPs in pool {pools[net]}.")
    return {"floating_ip": await _render(peers, r.json()["floatingip"], pools)}


async def _get(peers: Peers, fip_id: str) -> dict[str, Any]:
    r = await peers.network("GET", f"/floatingips/{fip_id}")
    if r.status_code != 200:
        raise NotFound(f"Floating IP not found for ID {fip_id}")
    return r.json()["floatingip"]


@api.route("/v2.1/os-floating-ips/{fip_id}", "GET")
async def show_floating_ip(call: Call):
    peers = _peers(call)
    return {"floating_ip": await _render(peers, await _get(peers, call.params["fip_id"]))}


@api.route("/v2.1/os-floating-ips/{fip_id}", "DELETE")
async def delete_floating_ip(call: Call):
    peers = _peers(call)
    await _get(peers, call.params["fip_id"])
    await peers.network("DELETE", f"/floatingips/{call.params['fip_id']}")
    return Response(status_code=202)


@api.route("/v2.1/os-floating-ip-pools", "GET")
async def list_pools(call: Call):
    peers = _peers(call)
    return {"floating_ip_pools": [{"name": n} for n in (await _pool_names(peers)).values()]}


async def _by_address(peers: Peers, address: Any) -> dict[str, Any]:
    if not isinstance(address, str) or not address:
        raise BadRequest("Invalid input for field/attribute address.")
    r = await peers.network("GET", "/floatingips", params={"floating_ip_address": address})
    found = r.json().get("floatingips", []) if r.status_code == 200 else []
    if not found:
        raise NotFound(f"Floating IP not found for address {address}.")
    return found[0]


async def add_floating_ip(call: Call, sid: str, args: Any) -> Response:
    peers = _peers(call, "2.44")
    server = servers.get_server(svc(call), call.ctx, sid, write=True)
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute addFloatingIp.")
    fip = await _by_address(peers, args.get("address"))
    if not server.ports:
        raise BadRequest(f"Instance {sid} has no network interface to associate a floating IP with.")
    port = server.ports[0]
    fixed = args.get("fixed_address")
    if fixed:
        match = [p for p in server.ports if fixed in p.get("ips", [])]
        if not match:
            raise BadRequest(f"Specified fixed address {fixed} is not on the instance.")
        port = match[0]
    body: dict[str, Any] = {"port_id": port["id"]}
    if fixed:
        body["fixed_ip_address"] = fixed
    r = await peers.network("PUT", f"/floatingips/{fip['id']}", json={"floatingip": body})
    if r.status_code >= 400:
        raise BadRequest(f"Unable to associate floating IP: {r.text[:200]}")
    return Response(status_code=202)


async def remove_floating_ip(call: Call, sid: str, args: Any) -> Response:
    peers = _peers(call, "2.44")
    server = servers.get_server(svc(call), call.ctx, sid, write=True)
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute removeFloatingIp.")
    fip = await _by_address(peers, args.get("address"))
    if not fip.get("port_id") or fip["port_id"] not in [p["id"] for p in server.ports or []]:
        raise Conflict(f"Floating IP {fip['floating_ip_address']} is not associated with instance {sid}.")
    await peers.network("PUT", f"/floatingips/{fip['id']}", json={"floatingip": {"port_id": None}})
    return Response(status_code=202)
