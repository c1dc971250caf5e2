"""Routers: external gateway (ext-gw-mode), interfaces, static routes (extraroute)."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.network import ipam
from kumo.network import models as m
from kumo.network.errors import APIError, bad, conflict, forbidden, not_found
from kumo.network.policies import can_read, enforce_member, enforce_write, is_admin
from kumo.network.schemas import check_keys, invalid, to_bool, to_str_list, to_uuid
from kumo.network.service.ports import Ports

ROUTER_KEYS = ("admin_state_up", "external_gateway_info", "routes", "distributed", "ha",
               "availability_zone_hints", "flavor_id", "tags", "enable_ndp_proxy")
IFACE = "network:router_interface"
GW = "network:router_gateway"


class Routers(Ports):
    def get_router_row(self, s: Session, ctx: RequestContext, router_id: Any) -> m.Router:
        r = s.get(m.Router, router_id) if isinstance(router_id, str) else None
        if r is None or not can_read(ctx, r.project_id):
            raise not_found("router", router_id)
        return r

    def _iface_ports(self, s: Session, router_id: str) -> list[m.Port]:
        return list(s.scalars(select(m.Port).where(m.Port.device_id == router_id, m.Port.device_owner == IFACE)
                              .order_by(m.Port.created_at)))

    def render_router(self, ctx: RequestContext | None, r: m.Router, s: Session) -> dict[str, Any]:
        out = self.std(r)
        gw = None
        if r.gw_network_id:
            ips = self._ips(s, [r.gw_port_id]).get(r.gw_port_id or "", []) if r.gw_port_id else []
            gw = {"network_id": r.gw_network_id, "enable_snat": r.enable_snat, "external_fixed_ips": ips}
        out.update({
            "admin_state_up": r.admin_state_up,
            "status": r.status,
            "external_gateway_info": gw,
            "routes": list(r.routes or []),
            "availability_zone_hints": list(r.availability_zone_hints or []),
            "availability_zones": [self.settings.default_availability_zone],
            "flavor_id": None,
            "enable_ndp_proxy": False,
        })
        if ctx is None or is_admin(ctx):
            out["distributed"] = r.distributed
            out["ha"] = r.ha
        return out

    def list_routers(self, ctx: RequestContext) -> list[dict[str, Any]]:
        return self.read(lambda s: [self.render_router(ctx, r, s) for r in s.scalars(select(m.Router))
                                    if can_read(ctx, r.project_id)])

    def show_router(self, ctx: RequestContext, router_id: str) -> dict[str, Any]:
        return self.read(lambda s: self.render_router(ctx, self.get_router_row(s, ctx, router_id), s))

    # -- gateway -----------------------------------------------------------------------------

    def _set_gateway(self, s: Session, ctx: RequestContext, r: m.Router, info: Any, creating: bool) -> None:
        if info is None or info == {}:
            if r.gw_network_id:
                self._clear_gateway(s, r)
            return
        if not isinstance(info, dict):
            raise invalid("external_gateway_info", f"'{info}' is not a dictionary")
        check_keys(info, ("network_id", "enable_snat", "external_fixed_ips", "qos_policy_id"))
        if "network_id" not in info:
            raise invalid("external_gateway_info", "network_id is required")
        to_uuid(info["network_id"], "external_gateway_info")
        admin = is_admin(ctx)
        action = "create_router" if creating else "update_router"
        if "enable_snat" in info and not admin:
            raise forbidden(f"(rule:{action}:external_gateway_info:enable_snat) is disallowed by policy",
                            "PolicyNotAuthorized")
        if info.get("external_fixed_ips") and not admin:
            raise forbidden(f"(rule:{action}:external_gateway_info:external_fixed_ips) is disallowed by policy",
                            "PolicyNotAuthorized")
        net = s.get(m.Network, info["network_id"])
        if net is None or not self.network_visible(ctx, net):
            raise not_found("network", info["network_id"])
        if not net.external:
            raise bad(f"Bad router request: Network {net.id} is not an external network.", "BadRequest")
        snat = to_bool(info.get("enable_snat", True), "enable_snat")
        fixed = info.get("external_fixed_ips")
        if r.gw_network_id and r.gw_network_id != net.id:
            self._clear_gateway(s, r)
        if r.gw_network_id == net.id and r.gw_port_id:
            port = s.get(m.Port, r.gw_port_id)
            if port is not None and fixed is not None:
                current = self._ips(s, [port.id]).get(port.id, [])
                pairs = self._resolve_fixed_ips(s, net, fixed, GW, port.mac_address, keep=current)
                self._store_ips(s, port, pairs)
        else:
            port = self.make_port(s, net, project_id="", owner=GW, device_id=r.id, fixed_ips=fixed)
            if not self._ips(s, [port.id]).get(port.id):
                raise bad(f"Bad router request: No IPs available on external network {net.id}.", "BadRequest")
            r.gw_network_id = net.id
            r.gw_port_id = port.id
        r.enable_snat = snat

    def _clear_gateway(self, s: Session, r: m.Router) -> None:
        if s.scalar(select(m.FloatingIP.id).where(m.FloatingIP.router_id == r.id).limit(1)):
            raise conflict("RouterExternalGatewayInUseByFloatingIp",
                           f"Gateway cannot be updated for router {r.id}, since a gateway to external network "
                           f"{r.gw_network_id} is required by one or more floating IPs.")
        if r.gw_port_id:
            port = s.get(m.Port, r.gw_port_id)
            if port is not None:
                self.remove_port(s, port)
        r.gw_network_id = None
        r.gw_port_id = None
        r.enable_snat = True

    # -- routes ------------------------------------------------------------------------------

    def _validate_routes(self, s: Session, r: m.Router, routes: Any) -> list[dict[str, str]]:
        if routes is None:
            return []
        if not isinstance(routes, list):
            raise invalid("routes", f"'{routes}' is not a list")
        cidrs = []
        for port in self._iface_ports(s, r.id):
            for ip in self._ips(s, [port.id]).get(port.id, []):
                sub = s.get(m.Subnet, ip["subnet_id"])
                if sub is not None:
                    cidrs.append(ipaddress.ip_network(sub.cidr))
        out: list[dict[str, str]] = []
        for route in routes:
            if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
                raise invalid("routes", f"'{route}' is not a valid route")
            dest = ipam.parse_cidr(route["destination"], "routes", strict=False)
            hop = ipam.parse_ip(route["nexthop"], "routes")
            if dest.version != hop.version:
                raise bad(f"Invalid format for routes: {route}, the nexthop is not of the destination's IP "
                          "version.", "InvalidRoutes")
            if not any(hop in c for c in cidrs):
                raise bad(f"Invalid format for routes: {route}, the nexthop is not connected with router.",
                          "InvalidRoutes")
            item = {"destination": str(dest), "nexthop": str(hop)}
            if item not in out:
                out.append(item)
        if len(out) > 30:
            raise bad("Unable to complete operation: the number of routes exceeds the maximum 30.",
                      "RoutesExhausted")
        return out

    # -- create / update / delete ------------------------------------------------------------

    def create_router(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        self.allowed(data, *ROUTER_KEYS)
        enforce_member(ctx, "create_router")
        admin = is_admin(ctx)
        for key in ("distributed", "ha"):
            if key in data and not admin:
                raise forbidden(f"(rule:create_router:{key}) is disallowed by policy", "PolicyNotAuthorized")
        hints = to_str_list(data.get("availability_zone_hints"), "availability_zone_hints")
        for zone in hints:
            if zone != self.settings.default_availability_zone:
                raise bad(f"AvailabilityZone {zone} could not be found.", "AvailabilityZoneNotFound")
        if data.get("routes"):
            raise bad("Invalid format for routes: the router has no interfaces yet.", "InvalidRoutes")

        def run(s: Session) -> dict[str, Any]:
            r = self.new_row(m.Router, ctx, data,
                             admin_state_up=to_bool(data.get("admin_state_up", True), "admin_state_up"),
                             status="ACTIVE", gw_network_id=None, gw_port_id=None, enable_snat=True, routes=[],
                             distributed=to_bool(data.get("distributed", False), "distributed"),
                             ha=to_bool(data.get("ha", False), "ha"), availability_zone_hints=hints)
            if "tags" in data:
                r.tags = self.validate_tags(data["tags"])
            enforce_write(ctx, r.project_id, "create_router")
            self.check_quota(s, ctx, r.project_id, "router", m.Router)
            s.add(r)
            s.flush()
            if data.get("external_gateway_info"):
                self._set_gateway(s, ctx, r, data["external_gateway_info"], True)
            self.bump(s)
            s.flush()
            return self.render_router(ctx, r, s)

        return self.tx(run)

    def update_router(self, ctx: RequestContext, router_id: str, data: dict[str, Any],
                      if_match: str | None = None) -> dict[str, Any]:
        self.allowed(data, *ROUTER_KEYS)

        def run(s: Session) -> dict[str, Any]:
            r = self.get_router_row(s, ctx, router_id)
            enforce_write(ctx, r.project_id, "update_router")
            self.check_if_match(r, if_match)
            self.check_project_change(ctx, r, data)
            admin = is_admin(ctx)
            for key in ("distributed", "ha"):
                if key in data:
                    if not admin:
                        raise forbidden(f"(rule:update_router:{key}) is disallowed by policy",
                                        "PolicyNotAuthorized")
                    value = to_bool(data[key], key)
                    if value != getattr(r, key) and r.admin_state_up:
                        raise bad(f"Cannot upgrade active router to {key}. Please set router admin_state_up "
                                  "to False prior to upgrade", "BadRequest")
                    setattr(r, key, value)
            if "availability_zone_hints" in data:
                raise bad("Cannot update read-only attribute availability_zone_hints")
            self.set_std(r, data)
            if "admin_state_up" in data:
                r.admin_state_up = to_bool(data["admin_state_up"], "admin_state_up")
            if "external_gateway_info" in data:
                self._set_gateway(s, ctx, r, data["external_gateway_info"], False)
            if "routes" in data:
                r.routes = self._validate_routes(s, r, data["routes"])
            if "tags" in data:
                r.tags = self.validate_tags(data["tags"])
            self.touch(r)
            s.flush()
            self.bump(s)
            return self.render_router(ctx, r, s)

        return self.tx(run)

    def delete_router(self, ctx: RequestContext, router_id: str, if_match: str | None = None) -> None:
        def run(s: Session) -> None:
            r = self.get_router_row(s, ctx, router_id)
            enforce_write(ctx, r.project_id, "delete_router")
            self.check_if_match(r, if_match)
            if self._iface_ports(s, r.id):
                raise conflict("RouterInUse", f"Router {r.id} still has ports")
            if r.gw_network_id:
                self._clear_gateway(s, r)
            s.delete(r)
            self.bump(s)

        self.tx(run)

    def update_routes(self, ctx: RequestContext, router_id: str, data: Any, add: bool) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("router"), dict) or "routes" not in data["router"]:
            raise bad("Body must be {\"router\": {\"routes\": [...]}}")
        check_keys(data["router"], ("routes",))

        def run(s: Session) -> dict[str, Any]:
            r = self.get_router_row(s, ctx, router_id)
            enforce_write(ctx, r.project_id, "update_router")
            given = self._validate_routes(s, r, data["router"]["routes"]) if add else [
                {"destination": str(ipam.parse_cidr(x.get("destination"), "routes", strict=False)),
                 "nexthop": str(ipam.parse_ip(x.get("nexthop"), "routes"))}
                for x in (data["router"]["routes"] or []) if isinstance(x, dict)]
            current = list(r.routes or [])
            if add:
                current += [x for x in given if x not in current]
            else:
                current = [x for x in current if x not in given]
            r.routes = current
            self.touch(r)
            self.bump(s)
            s.flush()
            return self.render_router(ctx, r, s)

        return self.tx(run)

    # -- interfaces --------------------------------------------------------------------------

    def _router_subnet_cidrs(self, s: Session, router_id: str) -> dict[str, str]:
        out = {}
        for port in self._iface_ports(s, router_id):
            for ip in self._ips(s, [port.id]).get(port.id, []):
                sub = s.get(m.Subnet, ip["subnet_id"])
                if sub is not None:
                    out[sub.id] = sub.cidr
        return out

    def _check_overlap(self, s: Session, router_id: str, subs: list[m.Subnet]) -> None:
        existing = self._router_subnet_cidrs(s, router_id)
        for sub in subs:
            if sub.id in existing:
                raise bad(f"Bad router request: Router already has a port on subnet {sub.id}.", "BadRequest")
            cidr = ipaddress.ip_network(sub.cidr)
            for other_id, other in existing.items():
                if ipam.overlaps(cidr, ipaddress.ip_network(other)):
                    raise bad(f"Bad router request: Cidr {sub.cidr} of subnet {sub.id} overlaps with cidr {other} "
                              f"of subnet {other_id}.", "BadRequest")

    def add_router_interface(self, ctx: RequestContext, router_id: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise bad("Bad router request: body must be a JSON object")
        if "port_id" in data and "subnet_id" in data:
            raise bad("Bad router request: Cannot specify both subnet-id and port-id", "BadRequest")
        if "port_id" not in data and "subnet_id" not in data:
            raise bad("Bad router request: Either subnet_id or port_id must be specified", "BadRequest")

        def run(s: Session) -> dict[str, Any]:
            r = self.get_router_row(s, ctx, router_id)
            enforce_write(ctx, r.project_id, "add_router_interface")
            if "port_id" in data:
                to_uuid(data["port_id"], "port_id")
                port = self.get_port_row(s, ctx, data["port_id"])
                if not is_admin(ctx) and port.project_id != ctx.project_id:
                    raise not_found("port", data["port_id"])
                if port.device_id or port.device_owner:
                    raise conflict("PortInUse", f"Unable to complete operation on port {port.id} for network "
                                                f"{port.network_id}. Port already has an attached device "
                                                f"{port.device_id}.")
                ips = self._ips(s, [port.id]).get(port.id, [])
                if not ips:
                    raise bad("Bad router request: Router port must have at least one fixed IP", "BadRequest")
                subs = [s.get(m.Subnet, ip["subnet_id"]) for ip in ips]
                v4 = [x for x in subs if x is not None and x.ip_version == 4]
                if len(v4) > 1:
                    raise bad("Bad router request: Cannot have multiple IPv4 subnets on router port",
                              "BadRequest")
                self._check_overlap(s, r.id, [x for x in subs if x is not None])
                port.device_id = r.id
                port.device_owner = IFACE
                port.security_groups = []
                port.port_security_enabled = False
                port.allowed_address_pairs = []
                self.touch(port)
                sub_ids = [ip["subnet_id"] for ip in ips]
            else:
                to_uuid(data["subnet_id"], "subnet_id")
                sub = self.get_subnet_row(s, ctx, data["subnet_id"])
                if not sub.gateway_ip:
                    raise bad("Bad router request: Subnet for router interface must have a gateway IP.",
                              "BadRequest")
                net = s.get(m.Network, sub.network_id)
                assert net is not None
                if not is_admin(ctx) and net.project_id != ctx.project_id and not net.shared:
                    raise not_found("subnet", sub.id)
                self._check_overlap(s, r.id, [sub])
                holder = s.get(m.IPAllocation, (sub.id, sub.gateway_ip))
                if holder is not None:
                    raise conflict("IpAddressInUse", f"Unable to complete operation for network {net.id}. The IP "
                                                     f"address {sub.gateway_ip} is in use.")
                port = self.make_port(s, net, project_id=r.project_id, owner=IFACE, device_id=r.id,
                                      fixed_ips=[{"subnet_id": sub.id, "ip_address": sub.gateway_ip}])
                sub_ids = [sub.id]
            self.touch(r)
            self.bump(s)
            return {"id": r.id, "tenant_id": r.project_id, "project_id": r.project_id, "port_id": port.id,
                    "network_id": port.network_id, "subnet_id": sub_ids[0], "subnet_ids": sub_ids}

        return self.tx(run)

    def remove_router_interface(self, ctx: RequestContext, router_id: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or ("port_id" not in data and "subnet_id" not in data):
            raise bad("Bad router request: Either subnet_id or port_id must be specified", "BadRequest")

        def run(s: Session) -> dict[str, Any]:
            r = self.get_router_row(s, ctx, router_id)
            enforce_write(ctx, r.project_id, "remove_router_interface")
            ports = self._iface_ports(s, r.id)
            subnet_id = data.get("subnet_id")
            if "port_id" in data:
                port = next((p for p in ports if p.id == data["port_id"]), None)
                if port is None:
                    raise APIError(f"Router {r.id} does not have an interface with id {data['port_id']}",
                                   status=404, fault="RouterInterfaceNotFound")
                ips = self._ips(s, [port.id]).get(port.id, [])
                if subnet_id and subnet_id not in [ip["subnet_id"] for ip in ips]:
                    raise conflict("SubnetMismatchForPort", f"Subnet {subnet_id} does not match port "
                                                            f"{port.id}")
            else:
                to_uuid(subnet_id, "subnet_id")
                self.get_subnet_row(s, ctx, subnet_id)
                port = next((p for p in ports if subnet_id in
                             [ip["subnet_id"] for ip in self._ips(s, [p.id]).get(p.id, [])]), None)
                if port is None:
                    raise APIError(f"Router {r.id} has no interface on subnet {subnet_id}", status=404,
                                   fault="RouterInterfaceNotFoundForSubnet")
                ips = self._ips(s, [port.id]).get(port.id, [])
            removed = [ip for ip in ips if subnet_id is None or ip["subnet_id"] == subnet_id]
            remaining = [ip for ip in ips if ip not in removed]
            cidrs = [ipaddress.ip_network(s.get(m.Subnet, ip["subnet_id"]).cidr)  # type: ignore[union-attr]
                     for ip in removed if s.get(m.Subnet, ip["subnet_id"]) is not None]
            for route in r.routes or []:
                hop = ipaddress.ip_address(route["nexthop"])
                if any(hop in c for c in cidrs):
                    raise conflict("RouterInterfaceInUseByRoute",
                                   f"Router interface for subnet {removed[0]['subnet_id']} on router {r.id} "
                                   "cannot be deleted, as it is required by one or more routes.")
            for ip in removed:
                fip = s.scalar(select(m.FloatingIP).where(m.FloatingIP.router_id == r.id))
                if fip is not None:
                    for f in s.scalars(select(m.FloatingIP).where(m.FloatingIP.router_id == r.id)):
                        a = s.scalar(select(m.IPAllocation).where(m.IPAllocation.port_id == f.port_id,
                                                                   m.IPAllocation.subnet_id == ip["subnet_id"]))
                        if a is not None:
                            raise conflict("RouterInterfaceInUseByFloatingIP",
                                           f"Router interface for subnet {ip['subnet_id']} on router {r.id} "
                                           "cannot be deleted, as it is required by one or more floating IPs.")
            if remaining:
                self._store_ips(s, port, [(s.get(m.Subnet, ip["subnet_id"]), ip["ip_address"])  # type: ignore
                                          for ip in remaining])
                self.touch(port)
            else:
                self.remove_port(s, port)
            self.touch(r)
            self.bump(s)
            sub_ids = [ip["subnet_id"] for ip in removed]
            return {"id": r.id, "tenant_id": r.project_id, "project_id": r.project_id, "port_id": port.id,
                    "network_id": port.network_id, "subnet_id": sub_ids[0] if sub_ids else None,
                    "subnet_ids": sub_ids}

        return self.tx(run)
