"""The agent API's state document (kumo/network/AGENT_API.md) -> driver specs. Pure functions."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kumo.agents.network.specs import (
    DhcpHost,
    DhcpSpec,
    FilterRule,
    FirewallSpec,
    FloatingIPSpec,
    MetadataHost,
    NetworkSpec,
    PortFilter,
    RouterLeg,
    RouterSpec,
    SubnetSpec,
)

Doc = Mapping[str, Any]


@dataclass
class Desired:
    networks: dict[str, NetworkSpec] = field(default_factory=dict)  # by network id
    dhcp: dict[str, DhcpSpec] = field(default_factory=dict)  # by network id
    routers: dict[str, RouterSpec] = field(default_factory=dict)  # by router id
    firewall: FirewallSpec = FirewallSpec()
    dhcp_ports: dict[str, str] = field(default_factory=dict)  # dhcp port id -> network id
    router_ports: dict[str, str] = field(default_factory=dict)  # router port id -> router id
    vm_ports: dict[str, Doc] = field(default_factory=dict)  # this host's VM ports by id


def _subnet(s: Doc) -> SubnetSpec:
    return SubnetSpec(
        id=s["id"], cidr=s["cidr"], ip_version=int(s.get("ip_version", 4)), gateway_ip=s.get("gateway_ip"),
        enable_dhcp=bool(s.get("enable_dhcp", True)), dns_nameservers=tuple(s.get("dns_nameservers") or ()),
        host_routes=tuple((r["destination"], r["nexthop"]) for r in s.get("host_routes") or ()),
    )


def _segment(n: Doc) -> Doc:
    segments = n.get("segments") or [{}]
    return segments[0] or {}


def _cidr(ip: str, subnet: SubnetSpec | None) -> str:
    prefix = subnet.prefixlen if subnet else (32 if ipaddress.ip_address(ip).version == 4 else 128)
    return f"{ip}/{prefix}"


def _is_vm(port: Doc) -> bool:
    return str(port.get("device_owner") or "").startswith("compute:")


def desired(doc: Doc, host: str, present_devices: set[str] | None = None,
            device_of: Any = None) -> Desired:
    """What this host should build. ``present_devices``/``device_of`` say which VM ports
    are plugged here (a port bound to this host or with its tap present is filtered)."""
    subnets = {s["id"]: _subnet(s) for s in doc.get("subnets") or []}
    nets = {n["id"]: n for n in doc.get("networks") or []}
    out = Desired()
    # VXLAN head-end replication: every other host's tunnel endpoint (AGENT_API.md, tunnel_endpoints)
    peers = tuple(sorted({t["ip"] for t in doc.get("tunnel_endpoints") or () if t.get("host") != host and t.get("ip")}))
    for n in nets.values():
        seg = _segment(n)
        out.networks[n["id"]] = NetworkSpec(
            id=n["id"], network_type=seg.get("network_type") or "local", physical_network=seg.get("physical_network"),
            segmentation_id=seg.get("segmentation_id"), mtu=int(n.get("mtu") or 1500),
            external=bool(n.get("router_external")),
            subnets=tuple(subnets[s] for s in n.get("subnet_ids") or () if s in subnets),
            vxlan_peers=peers if seg.get("network_type") == "vxlan" else (),
        )
    ports = list(doc.get("ports") or [])
    _dhcp(out, ports, nets, subnets)
    _routers(out, doc, nets, subnets)
    present = present_devices or set()
    mine = [p for p in ports if _is_vm(p) and (p.get("binding_host_id") == host
                                                 or (device_of is not None and device_of(p["id"]) in present))]
    out.vm_ports.update({p["id"]: p for p in mine})
    out.firewall = _firewall(mine, ports, doc.get("security_groups") or [], device_of)
    return out


def _physnet(nets: Mapping[str, Doc], network_id: str) -> str | None:
    return _segment(nets.get(network_id, {})).get("physical_network")


def _mtu(nets: Mapping[str, Doc], network_id: str) -> int:
    return int(nets.get(network_id, {}).get("mtu") or 1500)


def _dhcp(out: Desired, ports: list[Doc], nets: Mapping[str, Doc], subnets: Mapping[str, SubnetSpec]) -> None:
    for dp in ports:
        if dp.get("device_owner") != "network:dhcp" or dp["network_id"] not in out.networks:
            continue
        net = out.networks[dp["network_id"]]
        dhcp_subnets = {s.id for s in net.subnets if s.enable_dhcp}
        hosts, meta = [], []
        for p in ports:
            if p["network_id"] != net.id or p["id"] == dp["id"] or p.get("device_owner") in (
                    "network:floatingip", "network:dhcp"):
                continue
            for f in p.get("fixed_ips") or ():
                if f["subnet_id"] in dhcp_subnets:
                    name = "host-" + f["ip_address"].replace(".", "-").replace(":", "-")
                    hosts.append(DhcpHost(p["mac_address"], f["ip_address"], name))
                if _is_vm(p):
                    meta.append(MetadataHost(f["ip_address"], p.get("device_id") or "", p.get("project_id") or ""))
        out.dhcp[net.id] = DhcpSpec(
            network_id=net.id, mac_address=dp["mac_address"],
            addresses=tuple(_cidr(f["ip_address"], subnets.get(f["subnet_id"])) for f in dp.get("fixed_ips") or ()),
            subnets=net.subnets, hosts=tuple(sorted(hosts, key=lambda h: h.ip_address)),
            metadata=tuple(sorted(meta, key=lambda m: m.ip_address)), mtu=net.mtu,
            physical_network=net.physical_network,
        )
        out.dhcp_ports[dp["id"]] = net.id


def _routers(out: Desired, doc: Doc, nets: Mapping[str, Doc], subnets: Mapping[str, SubnetSpec]) -> None:
    for r in doc.get("routers") or []:
        if r.get("admin_state_up") is False:
            continue
        legs: dict[str, dict[str, Any]] = {}
        for i in r.get("interfaces") or []:
            leg = legs.setdefault(i["port_id"], {"network_id": i["network_id"], "mac": i.get("mac_address") or "",
                                                 "addresses": []})
            prefix = ipaddress.ip_network(i["cidr"], strict=False).prefixlen if i.get("cidr") else 32
            leg["addresses"].append(f"{i['ip_address']}/{prefix}")
            out.router_ports[i["port_id"]] = r["id"]
        interfaces = tuple(
            RouterLeg(pid, v["network_id"], v["mac"], tuple(v["addresses"]), _physnet(nets, v["network_id"]),
                      _mtu(nets, v["network_id"]))
            for pid, v in sorted(legs.items()))
        gateway, nexthop, fips = None, None, ()
        gw = r.get("external_gateway") or None
        if gw and gw.get("port_id"):
            ips = gw.get("external_fixed_ips") or []
            gateway = RouterLeg(gw["port_id"], gw["network_id"], gw.get("mac_address") or "",
                                tuple(_cidr(f["ip_address"], subnets.get(f["subnet_id"])) for f in ips),
                                _physnet(nets, gw["network_id"]), _mtu(nets, gw["network_id"]))
            out.router_ports[gw["port_id"]] = r["id"]
            for f in ips:
                s = subnets.get(f["subnet_id"])
                if s and s.ip_version == 4 and s.gateway_ip:
                    nexthop = s.gateway_ip
                    break
            fips = tuple(sorted(
                (FloatingIPSpec(f["floating_ip_address"], f["fixed_ip_address"]) for f in r.get("floating_ips") or []
                 if f.get("fixed_ip_address") and f.get("port_id")), key=lambda f: f.floating_ip))
        out.routers[r["id"]] = RouterSpec(
            id=r["id"], interfaces=interfaces, gateway=gateway, gateway_nexthop=nexthop,
            enable_snat=bool(gw.get("enable_snat", True)) if gw else False,
            routes=tuple((x["destination"], x["nexthop"]) for x in r.get("routes") or ()),
            floating_ips=fips,
        )


def _addresses(port: Doc) -> list[str]:
    return [f["ip_address"] for f in port.get("fixed_ips") or ()] + [
        a["ip_address"] for a in port.get("allowed_address_pairs") or ()]


def _firewall(mine: list[Doc], ports: list[Doc], groups: list[Doc], device_of: Any) -> FirewallSpec:
    members: dict[str, set[str]] = {}
    for p in ports:
        for g in p.get("security_group_ids") or ():
            members.setdefault(g, set()).update(_addresses(p))
    by_id = {g["id"]: g for g in groups}
    filters = []
    for p in mine:
        if p.get("port_security_enabled") is False:
            continue
        rules: list[FilterRule] = []
        for gid in p.get("security_group_ids") or ():
            for rule in (by_id.get(gid) or {}).get("rules") or ():
                rules += expand_rule(rule, members)
        filters.append(PortFilter(
            port_id=p["id"], device=device_of(p["id"]) if device_of else p["id"], mac_address=p["mac_address"],
            addresses=tuple(f["ip_address"] for f in p.get("fixed_ips") or ()),
            allowed_address_pairs=tuple((a["ip_address"], a.get("mac_address") or p["mac_address"])
                                        for a in p.get("allowed_address_pairs") or ()),
            rules=tuple(dict.fromkeys(rules)),
        ))
    return FirewallSpec(ports=tuple(sorted(filters, key=lambda f: f.port_id)))


def expand_rule(rule: Doc, members: Mapping[str, set[str]]) -> list[FilterRule]:
    """One API rule -> filter rules; a remote group becomes one rule per member address."""
    base = dict(direction=rule["direction"], ethertype=rule.get("ethertype") or "IPv4",
                protocol=(str(rule["protocol"]) if rule.get("protocol") is not None else None),
                port_range_min=rule.get("port_range_min"), port_range_max=rule.get("port_range_max"))
    if rule.get("remote_group_id"):
        family = 4 if base["ethertype"] == "IPv4" else 6
        prefixes = sorted(a for a in members.get(rule["remote_group_id"], ())
                          if ipaddress.ip_network(a, strict=False).version == family)
        return [FilterRule(**base, remote_ip_prefix=str(ipaddress.ip_network(a, strict=False))) for a in prefixes]
    return [FilterRule(**base, remote_ip_prefix=rule.get("remote_ip_prefix"))]
