"""A server's network side through the network API: interfaces and security groups."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import mv, svc
from kumo.compute.clients import Peers
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.models import Server
from kumo.compute.service import servers
from kumo.compute.service.core import now

api = API()


def _save(call: Call, sid: str, **fields: Any) -> None:
    with svc(call).db.session() as s:
        row = s.get(Server, sid)
        if row is not None:
            for k, val in fields.items():
                setattr(row, k, val)
            row.updated_at = now()


async def _server(call: Call, write: bool = False) -> Any:
    return await anyio.to_thread.run_sync(
        servers.get_server, svc(call), call.ctx, call.params["server_id"], write
    )


async def change_security_group(call: Call, sid: str, args: Any, add: bool) -> Response:
    if not isinstance(args, dict) or not isinstance(args.get("name"), str) or not args["name"]:
        raise BadRequest("Invalid input for field/attribute name.")
    name = args["name"]
    server = await anyio.to_thread.run_sync(servers.get_server, svc(call), call.ctx, sid, True)
    groups = list(server.security_groups or [])
    peers = Peers(call.ctx, svc(call).extras)
    if peers.network_url:
        from kumo.compute.api.servers import _security_group_ids

        try:
            (sg_id,) = await _security_group_ids(peers, [name])
        except BadRequest:
            raise NotFound(f"Security group {name} not found.") from None
        if server.ports and server.vm_state not in (
            "active",
            "stopped",
            "paused",
            "suspended",
            "resized",
            "rescued",
        ):
            raise Conflict(f"Cannot change security groups of instance {sid} in vm_state {server.vm_state}")
        for p in server.ports or []:
            r = await peers.network("GET", f"/ports/{p['id']}")
            if r.status_code != 200:
                continue
            current = list(r.json()["port"].get("security_groups") or [])
            if add and sg_id in current:
                raise BadRequest(f"Security group {name} is already associated with the instance {sid}")
            if not add and sg_id not in current:
                raise BadRequest(f"Security group {name} not associated with the instance {sid}")
            new = current + [sg_id] if add else [g for g in current if g != sg_id]
            await peers.network("PUT", f"/ports/{p['id']}", json={"port": {"security_groups": new}})
    if add:
        if name in groups and not server.ports:
            raise BadRequest(f"Security group {name} is already associated with the instance {sid}")
        groups = groups if name in groups else groups + [name]
    else:
        if name not in groups and not server.ports:
            raise BadRequest(f"Security group {name} not associated with the instance {sid}")
        groups = [g for g in groups if g != name]
    await anyio.to_thread.run_sync(lambda: _save(call, sid, security_groups=groups))
    return Response(status_code=202)


@api.route("/v2.1/servers/{server_id}/os-security-groups", "GET")
async def list_server_security_groups(call: Call):
    server = await _server(call)
    peers = Peers(call.ctx, svc(call).extras)
    if not peers.network_url or not server.ports:
        return {"security_groups": []}
    ids: list[str] = []
    for p in server.ports:
        r = await peers.network("GET", f"/ports/{p['id']}")
        if r.status_code == 200:
            ids += [g for g in r.json()["port"].get("security_groups") or [] if g not in ids]
    out = []
    for gid in ids:
        r = await peers.network("GET", f"/security-groups/{gid}")
        if r.status_code == 200:
            g = r.json()["security_group"]
            out.append({"id": g["id"], "name": g.get("name", ""), "description": g.get("description", ""),
                        "tenant_id": g.get("tenant_id") or g.get("project_id"), "rules": []})  # fmt: skip
    return {"security_groups": out}


def _render_interface(p: dict[str, Any], call: Call | None = None, server: Any = None) -> dict[str, Any]:
    body = _interface(p)
    if call is not None and mv(call).matches("2.70"):
        tags = {e["id"]: e.get("tag") for e in (server.ports or [])} if server is not None else {}
        body["tag"] = tags.get(p["id"])
    return body


def _interface(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "port_id": p["id"], "net_id": p.get("network_id"), "mac_addr": p.get("mac_address") or p.get("mac", ""),
        "port_state": p.get("status", "ACTIVE"),
        "fixed_ips": [{"ip_address": ip["ip_address"], "subnet_id": ip.get("subnet_id", "")}
                      for ip in p.get("fixed_ips", [])],
    }  # fmt: skip


async def _ports(call: Call, server: Any) -> list[dict[str, Any]]:
    peers = Peers(call.ctx, svc(call).extras)
    out = []
    for p in server.ports or []:
        r = await peers.network("GET", f"/ports/{p['id']}") if peers.network_url else None
        if r is not None and r.status_code == 200:
            out.append(r.json()["port"])
        else:
            out.append({"id": p["id"], "network_id": p.get("network_id"), "mac_address": p.get("mac", ""),
                        "fixed_ips": [{"ip_address": ip} for ip in p.get("ips", [])]})  # fmt: skip
    return out


@api.route("/v2.1/servers/{server_id}/os-interface", "GET")
async def list_interfaces(call: Call):
    server = await _server(call)
    return {"interfaceAttachments": [_render_interface(p, call, server) for p in await _ports(call, server)]}


@api.route("/v2.1/servers/{server_id}/os-interface/{port_id}", "GET")
async def show_interface(call: Call):
    server = await _server(call)
    for p in await _ports(call, server):
        if p["id"] == call.params["port_id"]:
            return {"interfaceAttachment": _render_interface(p, call, server)}
    raise NotFound(f"Instance {server.id} is not attached to port {call.params['port_id']}")


@api.route("/v2.1/servers/{server_id}/os-interface", "POST")
async def attach_interface(call: Call):
    server = await _server(call, write=True)
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get("interfaceAttachment", {}), dict):
        raise BadRequest("Invalid input for field/attribute interfaceAttachment.")
    args = body.get("interfaceAttachment") or {}
    if server.vm_state not in ("active", "stopped", "paused") or server.task_state is not None:
        raise Conflict(
            f"Cannot 'attach_interface' instance {server.id} while it is in vm_state {server.vm_state}"
        )
    peers = Peers(call.ctx, svc(call).extras)
    if not peers.network_url:
        raise BadRequest("The network service is not available.")
    from kumo.compute.api.servers import _bind_ports, _security_group_ids

    if args.get("port_id"):
        r = await peers.network("GET", f"/ports/{args['port_id']}")
        if r.status_code != 200:
            raise NotFound(f"Port {args['port_id']} could not be found.")
        if r.json()["port"].get("device_id"):
            raise Conflict(f"Port {args['port_id']} is still in use.")
        wanted = [{"port_id": args["port_id"], "network_id": r.json()["port"]["network_id"]}]
    else:
        net = args.get("net_id")
        if not net:
            r = await peers.network("GET", "/networks")
            nets = r.json().get("networks", []) if r.status_code == 200 else []
            if len(nets) != 1:
                raise BadRequest("Multiple possible networks found, use a Network ID to be more specific.")
            net = nets[0]["id"]
        r = await peers.network("GET", f"/networks/{net}")
        if r.status_code != 200:
            raise NotFound(f"Network {net} could not be found.")
        wanted = [{"network_id": net, "network_name": r.json()["network"].get("name") or net}]
        fixed = args.get("fixed_ips") or []
        if fixed and isinstance(fixed, list) and isinstance(fixed[0], dict) and fixed[0].get("ip_address"):
            wanted[0]["fixed_ip"] = fixed[0]["ip_address"]
    wanted[0]["tag"] = args.get("tag")
    sg_ids = await _security_group_ids(peers, ["default"]) if "port_id" not in wanted[0] else []
    try:
        new = await _bind_ports(peers, server, wanted, sg_ids)
    except RuntimeError as exc:
        raise BadRequest(str(exc)) from None
    await anyio.to_thread.run_sync(lambda: _save(call, server.id, ports=list(server.ports or []) + new))
    r = await peers.network("GET", f"/ports/{new[0]['id']}")
    body = _render_interface(r.json()["port"], call)
    if "tag" in body:
        body["tag"] = args.get("tag")
    return {"interfaceAttachment": body}


@api.route("/v2.1/servers/{server_id}/os-interface/{port_id}", "DELETE")
async def detach_interface(call: Call):
    server = await _server(call, write=True)
    port_id = call.params["port_id"]
    ports = list(server.ports or [])
    match = [p for p in ports if p["id"] == port_id]
    if not match:
        raise NotFound(f"Port {port_id} is not attached")
    if server.vm_state not in ("active", "stopped", "paused") or server.task_state is not None:
        raise Conflict(
            f"Cannot 'detach_interface' instance {server.id} while it is in vm_state {server.vm_state}"
        )
    peers = Peers(call.ctx, svc(call).extras)
    if match[0].get("created", True):
        await peers.network("DELETE", f"/ports/{port_id}")
    else:
        await peers.network("PUT", f"/ports/{port_id}", json={"port": {"device_id": "", "device_owner": ""}})
    await anyio.to_thread.run_sync(
        lambda: _save(call, server.id, ports=[p for p in ports if p["id"] != port_id])
    )
    return Response(status_code=202)
