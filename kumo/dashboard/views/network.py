"""Network: networks + subnets + ports, routers (interfaces, gateway), floating IPs, security groups."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from kumo.dashboard.client import ApiError, Cloud
from kumo.dashboard.web import FormErrors, Page, field_errors, page


async def _list(cloud: Cloud, collection: str, **params: Any) -> list[dict[str, Any]]:
    key = collection.replace("-", "_")
    body = await cloud.get("network", f"/{collection}", params=params or None)
    return sorted(body.get(key, []), key=lambda r: (r.get("name") or "", r.get("id", "")))


def _subnet_body(form: Any, network_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"network_id": network_id, "cidr": form["cidr"], "ip_version": 6 if ":" in form["cidr"] else 4}
    if form["subnet_name"]:
        body["name"] = form["subnet_name"]
    if form["gateway_ip"]:
        body["gateway_ip"] = None if form["gateway_ip"].lower() == "none" else form["gateway_ip"]
    body["enable_dhcp"] = form["enable_dhcp"] != "0"
    if form["dns_nameservers"]:
        body["dns_nameservers"] = [d.strip() for d in form["dns_nameservers"].split(",") if d.strip()]
    return body


SUBNET_FIELDS = ["cidr", "gateway_ip", "dns_nameservers", "subnet_name", "enable_dhcp"]


# -- networks --------------------------------------------------------------------------------


@page()
async def networks(p: Page) -> Response:
    nets, subnets = await asyncio.gather(_list(p.cloud, "networks"), _list(p.cloud, "subnets"))
    by_id = {s["id"]: s for s in subnets}
    for n in nets:
        n["_subnets"] = [by_id[s] for s in n.get("subnets", []) if s in by_id]
    return p.render("network/networks.html", networks=nets, errors={}, values={"enable_dhcp": "1"})


@page()
async def network_create(p: Page) -> Response:
    form = await p.form()
    errors: dict[str, str] = {} if form["name"] else {"name": "Give the network a name."}
    cloud = p.cloud
    if not errors:
        body: dict[str, Any] = {"name": form["name"], "admin_state_up": True}
        if form["shared"]:
            body["shared"] = True
        if form["external"]:
            body["router:external"] = True
        try:
            net = (await cloud.post("network", "/networks", {"network": body}))["network"]
        except ApiError as err:
            errors = field_errors(err, ["name", "shared", "external"])
        else:
            if not form["cidr"]:
                return p.redirect(f"/network/networks/{net['id']}", notice=f"Created network {form['name']}")
            try:
                await cloud.post("network", "/subnets", {"subnet": _subnet_body(form, net["id"])})
                return p.redirect(f"/network/networks/{net['id']}", notice=f"Created network {form['name']} with a subnet")
            except ApiError as err:  # keep the network; show the subnet problem on its page
                return p.render("network/network.html", status=400, **await _network_page(cloud, net["id"]),
                                errors=field_errors(err, SUBNET_FIELDS), values=form.values())
    nets = await _list(cloud, "networks")
    return p.render("network/networks.html", status=400, networks=nets, errors=errors, values=form.values())


async def _network_page(cloud: Cloud, nid: str) -> dict[str, Any]:
    net, subnets, ports = await asyncio.gather(
        cloud.get("network", f"/networks/{nid}"),
        _list(cloud, "subnets", network_id=nid),
        _list(cloud, "ports", network_id=nid),
    )
    return {"network": net["network"], "subnets": subnets, "ports": ports}


@page()
async def network(p: Page) -> Response:
    return p.render("network/network.html", **await _network_page(p.cloud, p.params["id"]), errors={},
                    values={"enable_dhcp": "1"})


@page()
async def network_delete(p: Page) -> Response:
    await p.cloud.delete("network", f"/networks/{p.params['id']}")
    return p.redirect("/network/networks", notice="Deleted the network")


@page()
async def subnet_create(p: Page) -> Response:
    nid = p.params["id"]
    form = await p.form()
    errors = {} if form["cidr"] else {"cidr": "Enter the subnet's CIDR, e.g. 192.0.2.0/24."}
    if not errors:
        try:
            await p.cloud.post("network", "/subnets", {"subnet": _subnet_body(form, nid)})
            return p.redirect(f"/network/networks/{nid}", notice="Created the subnet")
        except ApiError as err:
            errors = field_errors(err, SUBNET_FIELDS)
    return p.render("network/network.html", status=400, **await _network_page(p.cloud, nid), errors=errors,
                    values=form.values())


@page()
async def subnet_delete(p: Page) -> Response:
    form = await p.form()
    await p.cloud.delete("network", f"/subnets/{p.params['subnet']}")
    return p.redirect(f"/network/networks/{form['network_id']}", notice="Deleted the subnet")


@page()
async def port_delete(p: Page) -> Response:
    form = await p.form()
    await p.cloud.delete("network", f"/ports/{p.params['port']}")
    return p.redirect(f"/network/networks/{form['network_id']}", notice="Deleted the port")


# -- routers ---------------------------------------------------------------------------------


async def _externals(cloud: Cloud) -> list[dict[str, Any]]:
    return await _list(cloud, "networks", **{"router:external": "true"})


@page()
async def routers(p: Page) -> Response:
    rows, ext = await asyncio.gather(_list(p.cloud, "routers"), _externals(p.cloud))
    names = {n["id"]: n.get("name") or n["id"] for n in ext}
    return p.render("network/routers.html", routers=rows, externals=ext, ext_names=names, errors={}, values={})


@page()
async def router_create(p: Page) -> Response:
    form = await p.form()
    errors: dict[str, str] = {} if form["name"] else {"name": "Give the router a name."}
    if not errors:
        body: dict[str, Any] = {"name": form["name"]}
        if form["external_network"]:
            body["external_gateway_info"] = {"network_id": form["external_network"]}
        try:
            r = (await p.cloud.post("network", "/routers", {"router": body}))["router"]
            return p.redirect(f"/network/routers/{r['id']}", notice=f"Created router {form['name']}")
        except ApiError as err:
            errors = field_errors(err, ["name", "external_network", "external_gateway_info"])
            if "external_gateway_info" in errors:
                errors = {"external_network": errors["external_gateway_info"]}
    rows, ext = await asyncio.gather(_list(p.cloud, "routers"), _externals(p.cloud))
    return p.render("network/routers.html", status=400, routers=rows, externals=ext,
                    ext_names={n["id"]: n.get("name") for n in ext}, errors=errors, values=form.values())


async def _router_page(cloud: Cloud, rid: str) -> dict[str, Any]:
    router, ports, subnets, ext = await asyncio.gather(
        cloud.get("network", f"/routers/{rid}"), _list(cloud, "ports", device_id=rid),
        _list(cloud, "subnets"), _externals(cloud),
    )
    subnet_names = {s["id"]: f"{s.get('name') or s['id']} ({s['cidr']})" for s in subnets}
    attached = {ip["subnet_id"] for port in ports for ip in port.get("fixed_ips", [])}
    return {"router": router["router"], "ports": ports, "subnet_names": subnet_names, "externals": ext,
            "free_subnets": [(s["id"], subnet_names[s["id"]]) for s in subnets if s["id"] not in attached]}


@page()
async def router(p: Page) -> Response:
    return p.render("network/router.html", **await _router_page(p.cloud, p.params["id"]), errors={}, values={})


@page()
async def router_update(p: Page) -> Response:
    rid = p.params["id"]
    form = await p.form()
    cloud = p.cloud
    op = form["op"]
    errors: dict[str, str] = {}
    try:
        if op == "add-interface":
            if not form["subnet_id"]:
                raise FormErrors({"subnet_id": "Choose a subnet."})
            await cloud.put("network", f"/routers/{rid}/add_router_interface", {"subnet_id": form["subnet_id"]})
        elif op == "remove-interface":
            await cloud.put("network", f"/routers/{rid}/remove_router_interface", {"port_id": form["port_id"]})
        elif op == "set-gateway":
            info = {"network_id": form["external_network"]} if form["external_network"] else {}
            await cloud.put("network", f"/routers/{rid}", {"router": {"external_gateway_info": info}})
        elif op == "delete":
            await cloud.delete("network", f"/routers/{rid}")
            return p.redirect("/network/routers", notice="Deleted the router")
        else:
            raise FormErrors({"": f"Unknown router operation {op!r}."})
    except FormErrors as err:
        errors = err.errors
    except ApiError as err:
        errors = field_errors(err, ["subnet_id", "external_network"])
        if op == "add-interface" and "" in errors:
            errors = {"subnet_id": errors[""]}
    if errors:
        return p.render("network/router.html", status=400, **await _router_page(cloud, rid), errors=errors,
                        values=form.values())
    return p.redirect(f"/network/routers/{rid}", notice="Router updated")


# -- floating IPs ----------------------------------------------------------------------------


async def _fip_page(cloud: Cloud) -> dict[str, Any]:
    fips, ext, ports = await asyncio.gather(_list(cloud, "floatingips"), _externals(cloud),
                                            _list(cloud, "ports", device_owner="compute:nova"))
    port_choices = [(pt["id"], f"{pt.get('name') or pt['device_id'][:8]} {','.join(ip['ip_address'] for ip in pt.get('fixed_ips', []))}")
                    for pt in ports]
    return {"fips": fips, "externals": [(n["id"], n.get("name") or n["id"]) for n in ext], "ports": port_choices}


@page()
async def floating_ips(p: Page) -> Response:
    return p.render("network/floating_ips.html", **await _fip_page(p.cloud), errors={}, values={})


@page()
async def floating_ip_update(p: Page) -> Response:
    form = await p.form()
    cloud = p.cloud
    op = form["op"]
    fid = form["id"]
    try:
        if op == "allocate":
            if not form["network"]:
                raise FormErrors({"network": "Choose the external network to allocate from."})
            await cloud.post("network", "/floatingips", {"floatingip": {"floating_network_id": form["network"]}})
        elif op == "associate":
            if not form["port_id"]:
                raise FormErrors({f"port-{fid}": "Choose the instance port."})
            await cloud.put("network", f"/floatingips/{fid}", {"floatingip": {"port_id": form["port_id"]}})
        elif op == "disassociate":
            await cloud.put("network", f"/floatingips/{fid}", {"floatingip": {"port_id": None}})
        elif op == "release":
            await cloud.delete("network", f"/floatingips/{fid}")
        else:
            raise FormErrors({"": f"Unknown operation {op!r}."})
    except FormErrors as err:
        errors = err.errors
    except ApiError as err:
        errors = {"network": err.message} if op == "allocate" else {f"port-{fid}": err.message}
    else:
        return p.redirect("/network/floating-ips", notice=f"Floating IP: {op} done")
    return p.render("network/floating_ips.html", status=400, **await _fip_page(cloud), errors=errors, values=form.values())


# -- security groups -------------------------------------------------------------------------


@page()
async def security_groups(p: Page) -> Response:
    assert p.session is not None
    groups = await _list(p.cloud, "security-groups", project_id=p.session.project_id)
    return p.render("network/security_groups.html", groups=groups, errors={}, values={})


@page()
async def security_group_create(p: Page) -> Response:
    assert p.session is not None
    form = await p.form()
    errors: dict[str, str] = {} if form["name"] else {"name": "Give the group a name."}
    if not errors:
        try:
            g = (await p.cloud.post("network", "/security-groups", {"security_group": {
                "name": form["name"], "description": form["description"]}}))["security_group"]
            return p.redirect(f"/network/security-groups/{g['id']}", notice=f"Created security group {form['name']}")
        except ApiError as err:
            errors = field_errors(err, ["name", "description"])
    groups = await _list(p.cloud, "security-groups", project_id=p.session.project_id)
    return p.render("network/security_groups.html", status=400, groups=groups, errors=errors, values=form.values())


async def _group_page(cloud: Cloud, gid: str) -> dict[str, Any]:
    group = (await cloud.get("network", f"/security-groups/{gid}"))["security_group"]
    return {"group": group, "rules": group.get("security_group_rules", [])}


RULE_FIELDS = ["protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "ethertype", "direction"]


@page()
async def security_group(p: Page) -> Response:
    return p.render("network/security_group.html", **await _group_page(p.cloud, p.params["id"]), errors={},
                    values={"direction": "ingress", "ethertype": "IPv4"})


@page()
async def security_group_update(p: Page) -> Response:
    gid = p.params["id"]
    form = await p.form()
    cloud = p.cloud
    op = form["op"]
    errors: dict[str, str] = {}
    try:
        if op == "add-rule":
            rule: dict[str, Any] = {"security_group_id": gid, "direction": form["direction"] or "ingress",
                                    "ethertype": form["ethertype"] or "IPv4"}
            if form["protocol"]:
                rule["protocol"] = form["protocol"]
            for key in ("port_range_min", "port_range_max"):
                if form[key]:
                    if not form[key].isdigit():
                        raise FormErrors({key: "Enter a port number (0-65535)."})
                    rule[key] = int(form[key])
            if form["remote_ip_prefix"]:
                rule["remote_ip_prefix"] = form["remote_ip_prefix"]
            await cloud.post("network", "/security-group-rules", {"security_group_rule": rule})
        elif op == "delete-rule":
            await cloud.delete("network", f"/security-group-rules/{form['rule_id']}")
        elif op == "delete":
            await cloud.delete("network", f"/security-groups/{gid}")
            return p.redirect("/network/security-groups", notice="Deleted the security group")
        else:
            raise FormErrors({"": f"Unknown operation {op!r}."})
    except FormErrors as err:
        errors = err.errors
    except ApiError as err:
        errors = field_errors(err, RULE_FIELDS)
    if errors:
        return p.render("network/security_group.html", status=400, **await _group_page(cloud, gid), errors=errors,
                        values=form.values())
    return p.redirect(f"/network/security-groups/{gid}", notice="Security group updated")


ROUTES = [
    Route("/network/networks", networks, methods=["GET"]),
    Route("/network/networks", network_create, methods=["POST"]),
    Route("/network/networks/{id}", network, methods=["GET"]),
    Route("/network/networks/{id}/delete", network_delete, methods=["POST"]),
    Route("/network/networks/{id}/subnets", subnet_create, methods=["POST"]),
    Route("/network/subnets/{subnet}/delete", subnet_delete, methods=["POST"]),
    Route("/network/ports/{port}/delete", port_delete, methods=["POST"]),
    Route("/network/routers", routers, methods=["GET"]),
    Route("/network/routers", router_create, methods=["POST"]),
    Route("/network/routers/{id}", router, methods=["GET"]),
    Route("/network/routers/{id}", router_update, methods=["POST"]),
    Route("/network/floating-ips", floating_ips, methods=["GET"]),
    Route("/network/floating-ips", floating_ip_update, methods=["POST"]),
    Route("/network/security-groups", security_groups, methods=["GET"]),
    Route("/network/security-groups", security_group_create, methods=["POST"]),
    Route("/network/security-groups/{id}", security_group, methods=["GET"]),
    Route("/network/security-groups/{id}", security_group_update, methods=["POST"]),
]
