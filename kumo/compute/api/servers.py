"""``/servers``: create, list, detail, show, update, delete."""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

import anyio.to_thread
from starlette.responses import Response

from kumo.common.asgi import API, Call, json_response
from kumo.common.pagination import parse_limit
from kumo.compute.api import volume_flows
from kumo.compute.api.common import link, mv, next_link, svc
from kumo.compute.api.render import basic, detail, with_groups
from kumo.compute.clients import Peers
from kumo.compute.errors import BadRequest, Conflict
from kumo.compute.service import servers, volumes
from kumo.compute.vif import waits_for_event
from kumo.compute.volume_client import Volumes

api = API()


async def _networks_for(call: Call, peers: Peers, req: servers.CreateRequest) -> list[dict[str, Any]]:
    """Resolve the networks request into port-create bodies (validated now, created after scheduling)."""
    nets = req.networks
    if not peers.network_url:
        if nets in (None, "auto", "none") or nets == []:
            return []
        raise BadRequest("Networks were requested but the network service is not available.")
    if nets == "none":
        return []
    wanted: list[dict[str, Any]] = []
    if nets is None or nets == "auto":
        r = await peers.network("GET", "/networks")
        usable = (
            [n for n in r.json().get("networks", []) if not n.get("router:external")]
            if r.status_code == 200
            else []
        )
        if len(usable) > 1 and nets is None:
            raise Conflict("Multiple possible networks found, use a Network ID to be more specific.")
        return [{"network_id": n["id"], "network_name": n.get("name") or n["id"]} for n in usable[:1]]
    for n in nets:
        if n.port_id:
            r = await peers.network("GET", f"/ports/{n.port_id}")
            if r.status_code != 200:
                raise BadRequest(f"Port id {n.port_id} could not be found.")
            port = r.json()["port"]
            if port.get("device_id"):
                raise Conflict(f"Port {n.port_id} is still in use.")
            wanted.append({"port_id": n.port_id, "network_id": port["network_id"], "tag": n.tag})
        else:
            r = await peers.network("GET", f"/networks/{n.network_id}")
            if r.status_code != 200:
                raise BadRequest(f"Network {n.network_id} could not be found.")
            entry = {
                "network_id": n.network_id,
                "network_name": r.json()["network"].get("name") or n.network_id,
            }
            if n.fixed_ip:
                entry["fixed_ip"] = n.fixed_ip
            entry["tag"] = n.tag
            wanted.append(entry)
    return wanted


async def _security_group_ids(peers: Peers, names: list[str]) -> list[str]:
    """Resolve the requested security group names (or ids) to ids, as Nova does with Neutron."""
    if not peers.network_url:
        return []
    ids = []
    for name in names:
        r = await peers.network(
            "GET", "/security-groups", params={"name": name, "project_id": peers.ctx.project_id or ""}
        )
        found = r.json().get("security_groups", []) if r.status_code == 200 else []
        if not found:
            r = await peers.network("GET", f"/security-groups/{name}")
            found = [r.json()["security_group"]] if r.status_code == 200 else []
        if not found:
            raise BadRequest(f"Unable to find security_group with name or id '{name}'")
        if len(found) > 1:
            raise Conflict(
                f"Multiple security groups found matching '{name}'. Use an ID to be more specific."
            )
        ids.append(found[0]["id"])
    return ids


async def _port_call(peers: Peers, port_id: str | None, body: dict[str, Any]) -> Any:
    if port_id:
        return await peers.network("PUT", f"/ports/{port_id}", json={"port": body})
    return await peers.network("POST", "/ports", json={"port": body})


async def _bind_ports(
    peers: Peers, server: Any, wanted: list[dict[str, Any]], sgs: list[str], binder: Any = None
) -> list[dict[str, Any]]:
    ports = []
    for w in wanted:
        body: dict[str, Any] = {
            "device_id": server.id,
            "device_owner": "compute:nova",
            "binding:host_id": server.host,
        }
        if "port_id" not in w:
            body["network_id"] = w["network_id"]
            if w.get("fixed_ip"):
                body["fixed_ips"] = [{"ip_address": w["fixed_ip"]}]
            if sgs:
                body["security_groups"] = sgs
        created = "port_id" not in w
        r = await _port_call(peers, w.get("port_id"), body)
        if r.status_code == 403:
            # binding:host_id is admin-only in Neutron's policy; Nova sets it with service
            # credentials, which compute does not have yet: bind the port without it.
            body.pop("binding:host_id", None)
            r = await _port_call(peers, w.get("port_id"), body)
        if r.status_code >= 400:
            raise RuntimeError(f"port binding failed: {r.status_code} {r.text[:200]}")
        p = r.json()["port"]
        if binder is not None:  # bound with the service credentials (kumo.compute.vif), as Nova does
            p = await binder.bind(p, server.host)
        name = w.get("network_name")
        if not name:
            nr = await peers.network("GET", f"/networks/{p['network_id']}")
            name = nr.json()["network"].get("name") if nr.status_code == 200 else p["network_id"]
        ports.append(
            {
                "id": p["id"],
                "network_id": p["network_id"],
                "network_name": name,
                "mac": p.get("mac_address", ""),
                "ips": [ip["ip_address"] for ip in p.get("fixed_ips", [])],
                "created": created,
                "tag": w.get("tag"),
                "wait": waits_for_event(p),  # a new guest waits for its network-vif-plugged
            }
        )
    return ports


@api.route("/v2.1/servers", "POST")
async def create_server(call: Call):
    service = svc(call)
    version = mv(call)
    req = await anyio.to_thread.run_sync(servers.parse_create, service, call.ctx, call.body, version)
    peers = Peers(call.ctx, service.extras)
    if req.image_ref:
        servers.check_image(req, await peers.get_image(req.image_ref))
    vc = Volumes(call.ctx, service.extras)
    await volume_flows.check_bdms(vc, req.block_devices, req.max_count, version)
    wanted = await _networks_for(call, peers, req)
    sg_ids = await _security_group_ids(peers, req.security_groups) if wanted else []
    created, reservation = await anyio.to_thread.run_sync(servers.create_servers, service, call.ctx, req)
    props = {
        k: str(v)
        for k, v in (req.image or {}).items()
        if k.startswith(("hw_", "img_")) or k in ("architecture", "hypervisor_type")
    }
    for server in created:
        placed = await anyio.to_thread.run_sync(
            servers.schedule_server, service, server.id, props, req.force_host
        )
        if placed.vm_state != "building":
            continue
        try:
            binder = service.extras.get("port_binder")
            ports = await _bind_ports(peers, placed, wanted, sg_ids, binder) if wanted else []
        except Exception as exc:  # the server goes to ERROR with a fault the user can read
            await anyio.to_thread.run_sync(
                servers.fail_build, service, server.id, f"Build of instance failed: {exc}"
            )
            continue
        if any(b["destination_type"] == "volume" for b in req.block_devices):
            await anyio.to_thread.run_sync(volumes.set_task, service, server.id, "block_device_mapping")
            volume_flows.spawn(service, volume_flows.prepare_and_build(service, vc, server.id, ports))
            continue
        await anyio.to_thread.run_sync(servers.start_build, service, server.id, ports)
    if req.return_reservation_id:
        return json_response({"reservation_id": reservation}, 202)
    first = created[0]
    body: dict[str, Any] = {
        "id": first.id,
        "links": link(call, "servers", first.id),
        "OS-DCF:diskConfig": first.disk_config,
        "security_groups": [{"name": g} for g in first.security_groups],
    }
    body["adminPass"] = req.admin_pass or secrets.token_urlsafe(9)
    return json_response({"server": body}, 202, {"Location": call.url(f"/v2.1/servers/{first.id}")})


def _list(call: Call, full: bool) -> dict[str, Any]:
    try:
        limit = parse_limit(call.query)
    except BadRequest:
        raise BadRequest(
            f"Invalid input for field/attribute limit. Value: {call.query.get('limit')}."
        ) from None
    rows = servers.list_servers(svc(call), call.ctx, call.query, mv(call))
    marker = call.query.get("marker")
    if marker:
        ids = [r.id for r in rows]
        if marker not in ids:
            raise BadRequest(f"marker [{marker}] not found")
        rows = rows[ids.index(marker) + 1 :]
    limit = 1000 if limit is None else min(limit, 1000)
    page = rows[:limit]
    if full:
        items = [detail(call, r) for r in page]
    else:
        items = [{"id": r.id, "name": r.name, "links": link(call, "servers", r.id)} for r in page]
    body: dict[str, Any] = {"servers": items}
    if page and len(page) == limit and call.query.get("limit"):
        body["servers_links"] = next_link(call, "servers/detail" if full else "servers", page[-1].id)
    return body


@api.route("/v2.1/servers", "GET")
def list_servers(call: Call):
    return _list(call, False)


@api.route("/v2.1/servers/detail", "GET")
def list_servers_detail(call: Call):
    return _list(call, True)


@api.route("/v2.1/servers/{server_id}", "GET")
def show_server(call: Call):
    server = servers.get_server(svc(call), call.ctx, call.params["server_id"])
    return {"server": with_groups(call, server, detail(call, server))}


@api.route("/v2.1/servers/{server_id}", "PUT")
def update_server(call: Call):
    server = servers.update_server(svc(call), call.ctx, call.params["server_id"], call.body, mv(call))
    return {
        "server": with_groups(
            call, server, detail(call, server) if mv(call).matches("2.75") else basic(call, server)
        )
    }


@api.route("/v2.1/servers/{server_id}", "DELETE")
async def delete_server(call: Call):
    server, _agent = await anyio.to_thread.run_sync(
        servers.delete_server, svc(call), call.ctx, call.params["server_id"]
    )
    await _release_ports(call, server)
    shelved = (server.system_metadata or {}).get("shelved_image_id")
    if shelved and not server.host:  # an offloaded server's <name>-shelved snapshot goes with it, as in Nova
        with contextlib.suppress(Exception):
            await Peers(call.ctx, svc(call).extras).delete_image(shelved)
    service = svc(call)
    volume_flows.spawn(service, volume_flows.release_volumes(service, Volumes(call.ctx, service.extras), server.id))
    return Response(status_code=204)


async def _release_ports(call: Call, server: Any) -> None:
    if not server.ports:
        return
    peers = Peers(call.ctx, svc(call).extras)
    for p in server.ports:
        try:
            if p.get("created", True):
                await peers.network("DELETE", f"/ports/{p['id']}")
            else:
                await peers.network(
                    "PUT",
                    f"/ports/{p['id']}",
                    json={"port": {"device_id": "", "device_owner": ""}},
                )
        except Exception:  # noqa: S110 - best effort; the network side reaps orphans
            pass
