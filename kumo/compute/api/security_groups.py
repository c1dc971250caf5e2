"""``/os-security-groups`` and ``/os-security-group-rules``: Nova's (until 2.35) proxy to the network API."""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import mv, svc
from kumo.compute.clients import Peers
from kumo.compute.errors import APIError, BadRequest, NotFound
from kumo.compute.service.servers import is_uuid

api = API()


def _peers(call: Call) -> Peers:
    if mv(call).matches("2.36"):
        raise NotFound("The resource could not be found.")
    peers = Peers(call.ctx, svc(call).extras)
    if not peers.network_url:
        raise NotFound("Security groups need the network service, which is not available.")
    return peers


def _check(r: Any, what: str) -> dict[str, Any]:
    if r.status_code == 404:
        raise NotFound(f"{what} not found.")
    if r.status_code in (400, 409):
        msg = r.json().get("NeutronError", {}).get("message", r.text[:200]) if r.text else what
        raise BadRequest(msg)
    if r.status_code == 403:
        raise APIError("Forbidden.", status=403, fault="forbidden")
    if r.status_code >= 400:
        raise APIError(f"The network service answered {r.status_code}.")
    return r.json() if r.content else {}


def _rule(rule: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    remote = rule.get("remote_group_id")
    return {
        "id": rule["id"], "parent_group_id": rule["security_group_id"], "ip_protocol": rule.get("protocol"),
        "from_port": rule.get("port_range_min") if rule.get("port_range_min") is not None else -1,
        "to_port": rule.get("port_range_max") if rule.get("port_range_max") is not None else -1,
        "ip_range": {"cidr": rule.get("remote_ip_prefix") or "0.0.0.0/0"} if not remote else {},
        "group": {"name": names.get(remote, remote), "tenant_id": rule.get("tenant_id") or rule.get("project_id")}
        if remote else {},
    }  # fmt: skip


def _group(g: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    names = names or {g["id"]: g.get("name", "")}
    rules = [r for r in g.get("security_group_rules", []) if r.get("direction") == "ingress"
             and (r.get("ethertype") == "IPv4")]  # fmt: skip
    return {
        "id": g["id"],
        "name": g.get("name", ""),
        "description": g.get("description", ""),
        "tenant_id": g.get("tenant_id") or g.get("project_id"),
        "rules": [_rule(r, names) for r in rules],
    }


def _fields(call: Call) -> tuple[str, str]:
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get("security_group"), dict):
        raise BadRequest("'security_group' is a required property")
    data = body["security_group"]
    name, desc = data.get("name"), data.get("description", "")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest("Security group name must be a non-empty string of at most 255 characters.")
    if not isinstance(desc, str) or len(desc) > 255:
        raise BadRequest("Security group description must be a string of at most 255 characters.")
    return name, desc


def _sg_id(value: str) -> str:
    if not is_uuid(value):
        raise BadRequest(f"Invalid security group id {value}.")
    return value


@api.route("/v2.1/os-security-groups", "GET")
async def list_groups(call: Call):
    peers = _peers(call)
    params = {} if (svc(call).is_admin(call.ctx) and call.query.get("all_tenants")) else {
        "project_id": call.ctx.project_id or ""}  # fmt: skip
    body = _check(await peers.network("GET", "/security-groups", params=params), "Security groups")
    groups = body.get("security_groups", [])
    names = {g["id"]: g.get("name", "") for g in groups}
    return {"security_groups": [_group(g, names) for g in groups]}


@api.route("/v2.1/os-security-groups", "POST")
async def create_group(call: Call):
    peers = _peers(call)
    name, desc = _fields(call)
    body = _check(await peers.network("POST", "/security-groups",
                                      json={"security_group": {"name": name, "description": desc}}),
                  "Security group")  # fmt: skip
    return {"security_group": _group(body["security_group"])}


@api.route("/v2.1/os-security-groups/{sg_id}", "GET")
async def show_group(call: Call):
    peers = _peers(call)
    sid = _sg_id(call.params["sg_id"])
    return {"security_group": _group(_check(await peers.network("GET", f"/security-groups/{sid}"),
                                            f"Security group {sid}")["security_group"])}  # fmt: skip


@api.route("/v2.1/os-security-groups/{sg_id}", "PUT")
async def update_group(call: Call):
    peers = _peers(call)
    sid = _sg_id(call.params["sg_id"])
    name, desc = _fields(call)
    body = _check(await peers.network("PUT", f"/security-groups/{sid}",
                                      json={"security_group": {"name": name, "description": desc}}),
                  f"Security group {sid}")  # fmt: skip
    return {"security_group": _group(body["security_group"])}


@api.route("/v2.1/os-security-groups/", "DELETE")
async def delete_group_blank(call: Call):
    raise NotFound("Security group id is required.")


@api.route("/v2.1/os-security-groups/{sg_id}", "DELETE")
async def delete_group(call: Call):
    peers = _peers(call)
    sid = _sg_id(call.params["sg_id"])
    _check(await peers.network("DELETE", f"/security-groups/{sid}"), f"Security group {sid}")
    return Response(status_code=202)


def _port(value: Any, field: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid port: {field} must be an integer.") from None
    if not -1 <= port <= 65535:
        raise BadRequest(f"Invalid port: {field} must be between -1 and 65535.")
    return port


@api.route("/v2.1/os-security-group-rules", "POST")
async def create_rule(call: Call):
    peers = _peers(call)
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get("security_group_rule"), dict):
        raise BadRequest("'security_group_rule' is a required property")
    data = body["security_group_rule"]
    parent = data.get("parent_group_id")
    if not isinstance(parent, str) or not is_uuid(parent):
        raise BadRequest(f"Invalid security group id {parent}.")
    proto = data.get("ip_protocol")
    rule: dict[str, Any] = {"security_group_id": parent, "direction": "ingress", "ethertype": "IPv4"}
    if proto is not None:
        proto = str(proto).lower()
        if proto not in ("tcp", "udp", "icmp"):
            raise BadRequest(f"Invalid IP protocol {proto}.")
        rule["protocol"] = proto
        lo, hi = _port(data.get("from_port"), "from_port"), _port(data.get("to_port"), "to_port")
        if proto == "icmp":
            if lo != -1:
                rule["port_range_min"] = lo
            if hi != -1:
                rule["port_range_max"] = hi
        else:
            if lo < 1 or hi < 1 or lo > hi:
                raise BadRequest(f"Invalid port range {lo}:{hi}.")
            rule["port_range_min"], rule["port_range_max"] = lo, hi
    if data.get("group_id"):
        if not is_uuid(data["group_id"]):
            raise BadRequest(f"Invalid security group id {data['group_id']}.")
        rule["remote_group_id"] = data["group_id"]
    elif data.get("cidr"):
        try:
            ipaddress.ip_network(data["cidr"], strict=False)
        except ValueError:
            raise BadRequest(f"Invalid CIDR {data['cidr']}.") from None
        rule["remote_ip_prefix"] = data["cidr"]
    else:
        rule["remote_ip_prefix"] = "0.0.0.0/0"
    _check(await peers.network("GET", f"/security-groups/{parent}"), f"Security group {parent}")
    created = _check(await peers.network("POST", "/security-group-rules", json={"security_group_rule": rule}),
                     "Security group rule")["security_group_rule"]  # fmt: skip
    names: dict[str, str] = {}
    if rule.get("remote_group_id"):
        r = await peers.network("GET", f"/security-groups/{rule['remote_group_id']}")
        if r.status_code == 200:
            names[rule["remote_group_id"]] = r.json()["security_group"].get("name", "")
    out = _rule(created, names)
    if data.get("cidr") and not rule.get("remote_group_id"):
        out["ip_range"] = {"cidr": data["cidr"]}  # as given (the network side may normalise it)
    return {"security_group_rule": out}


@api.route("/v2.1/os-security-group-rules/{rule_id}", "DELETE")
async def delete_rule(call: Call):
    peers = _peers(call)
    rid = call.params["rule_id"]
    if not is_uuid(rid):
        raise NotFound(f"Security group rule {rid} not found.")
    _check(await peers.network("DELETE", f"/security-group-rules/{rid}"), f"Rule {rid}")
    return Response(status_code=202)
