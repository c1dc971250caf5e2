"""Floating IPs: addresses of an external network bound to a port's fixed IP."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.network import ipam
from kumo.network import models as m
from kumo.network.errors import APIError, bad, conflict, not_found
from kumo.network.policies import can_read, enforce_member, enforce_write, is_admin
from kumo.network.schemas import to_str, to_uuid
from kumo.network.service.routers import Routers

FIP_KEYS = ("floating_network_id", "floating_ip_address", "subnet_id", "port_id", "fixed_ip_address", "dns_name",
            "dns_domain", "qos_policy_id", "tags", "distributed")


class FloatingIPs(Routers):
    def get_fip_row(self, s: Session, ctx: RequestContext, fip_id: Any) -> m.FloatingIP:
        f = s.get(m.FloatingIP, fip_id) if isinstance(fip_id, str) else None
        if f is None or not can_read(ctx, f.project_id):
            raise not_found("floatingip", fip_id)
        return f

    def render_fip(self, f: m.FloatingIP) -> dict[str, Any]:
        out = self.std(f, with_name=False)
        out.update({
            "floating_network_id": f.floating_network_id,
            "floating_ip_address": f.floating_ip_address,
            "fixed_ip_address": f.fixed_ip_address,
            "port_id": f.port_id,
            "router_id": f.router_id,
            "status": f.status,
            "dns_name": f.dns_name,
            "dns_domain": f.dns_domain,
            "port_forwardings": [],
            "qos_policy_id": None,
        })
        return out

    def list_floatingips(self, ctx: RequestContext) -> list[dict[str, Any]]:
        return self.read(lambda s: [self.render_fip(f) for f in s.scalars(select(m.FloatingIP))
                                    if can_read(ctx, f.project_id)])

    def show_floatingip(self, ctx: RequestContext, fip_id: str) -> dict[str, Any]:
        return self.read(lambda s: self.render_fip(self.get_fip_row(s, ctx, fip_id)))

    # -- association -------------------------------------------------------------------------

    def _associate(self, s: Session, ctx: RequestContext, f: m.FloatingIP, port_id: Any, fixed: Any) -> None:
        if port_id is None:
            f.port_id = None
            f.fixed_ip_address = None
            f.router_id = None
            f.status = "DOWN"
            return
        to_uuid(port_id, "port_id")
        port = s.get(m.Port, port_id)
        if port is None or not (is_admin(ctx) or port.project_id == f.project_id):
            raise not_found("port", port_id)
        if port.device_owner in ("network:router_gateway", "network:floatingip", "network:dhcp",
                                 "network:router_interface"):
            raise bad(f"Bad floatingip request: Port {port.id} has owner {port.device_owner} and therefore "
                      "cannot be associated with a floating IP.", "BadRequest")
        ips = self._ips(s, [port.id]).get(port.id, [])
        v4 = [ip for ip in ips if ipaddress.ip_address(ip["ip_address"]).version == 4]
        if fixed is not None:
            addr = str(ipam.parse_ip(fixed, "fixed_ip_address"))
            chosen = next((ip for ip in ips if ip["ip_address"] == addr), None)
            if chosen is None:
                raise bad(f"Bad floatingip request: Port {port.id} does not have fixed ip {fixed}.", "BadRequest")
            if ipaddress.ip_address(addr).version != 4:
                raise bad(f"Bad floatingip request: Cannot process floating IP association with {addr}, since "
                          "that is not an IPv4 address.", "BadRequest")
        else:
            if not v4:
                raise bad(f"Bad floatingip request: Port {port.id} does not have any IPv4 address.", "BadRequest")
            if len(v4) > 1:
                raise bad(f"Port {port.id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address "
                          "when assigning a floating IP.", "BadRequest")
            chosen = v4[0]
        other = s.scalar(select(m.FloatingIP).where(m.FloatingIP.port_id == port.id,
                                                     m.FloatingIP.fixed_ip_address == chosen["ip_address"],
                                                     m.FloatingIP.id != f.id))
        if other is not None:
            raise conflict("FloatingIPPortAlreadyAssociated",
                           f"Cannot associate floating IP {f.floating_ip_address} ({f.id}) with port {port.id} "
                           f"using fixed IP {chosen['ip_address']}, as that fixed IP already has a floating IP on "
                           f"external network {other.floating_network_id}.")
        router_id = self._router_for(s, chosen["subnet_id"], f.floating_network_id)
        if router_id is None:
            raise APIError(f"External network {f.floating_network_id} is not reachable from subnet "
                           f"{chosen['subnet_id']}.  Therefore, cannot associate Port {port.id} with a Floating IP.",
                           status=404, fault="ExternalGatewayForFloatingIPNotFound")
        f.port_id = port.id
        f.fixed_ip_address = chosen["ip_address"]
        f.router_id = router_id
        f.status = "DOWN"

    def _router_for(self, s: Session, subnet_id: str, ext_net_id: str) -> str | None:
        for r in s.scalars(select(m.Router).where(m.Router.gw_network_id == ext_net_id).order_by(m.Router.created_at)):
            for port in self._iface_ports(s, r.id):
                if s.scalar(select(m.IPAllocation).where(m.IPAllocation.port_id == port.id,
                                                          m.IPAllocation.subnet_id == subnet_id)):
                    return r.id
        return None

    # -- create / update / delete ------------------------------------------------------------

    def create_floatingip(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        self.allowed(data, *FIP_KEYS)
        enforce_member(ctx, "create_floatingip")
        if "floating_network_id" not in data:
            raise bad("Failed to parse request. Required attribute 'floating_network_id' not specified")
        to_uuid(data["floating_network_id"], "floating_network_id")
        if "floating_ip_address" in data and not is_admin(ctx):
            pass  # upstream allows owners to ask for an address by default

        def run(s: Session) -> dict[str, Any]:
            net = s.get(m.Network, data["floating_network_id"])
            if net is None or not self.network_visible(ctx, net):
                raise not_found("network", data["floating_network_id"])
            if not net.external:
                raise bad(f"Bad floatingip request: Network {net.id} is not a valid external network.",
                          "BadRequest")
            f = self.new_row(m.FloatingIP, ctx, data, floating_network_id=net.id, floating_ip_address="",
                             floating_port_id="", port_id=None, fixed_ip_address=None, router_id=None, status="DOWN",
                             dns_name=to_str(data.get("dns_name", ""), "dns_name") or "",
                             dns_domain=to_str(data.get("dns_domain", ""), "dns_domain") or "")
            if "tags" in data:
                f.tags = self.validate_tags(data["tags"])
            enforce_write(ctx, f.project_id, "create_floatingip")
            self.check_quota(s, ctx, f.project_id, "floatingip", m.FloatingIP)
            req: dict[str, Any] = {}
            if data.get("subnet_id") is not None:
                to_uuid(data["subnet_id"], "subnet_id")
                sub = s.get(m.Subnet, data["subnet_id"])
                if sub is None:
                    raise not_found("subnet", data["subnet_id"])
                if sub.network_id != net.id:
                    raise bad(f"Bad floatingip request: subnet {sub.id} is not on network {net.id}.", "BadRequest")
                req["subnet_id"] = sub.id
            if data.get("floating_ip_address") is not None:
                req["ip_address"] = str(ipam.parse_ip(data["floating_ip_address"], "floating_ip_address"))
            if req:
                fixed = [req]
            else:
                subs = [x for x in s.scalars(select(m.Subnet).where(m.Subnet.network_id == net.id,
                                                                   m.Subnet.ip_version == 4)
                                             .order_by(m.Subnet.created_at))]
                if not subs:
                    raise bad(f"Bad floatingip request: Network {net.id} does not contain any IPv4 subnet",
                              "BadRequest")
                fixed = None
                for sub in subs:
                    try:
                        self._pick_ip(s, sub, "")
                    except APIError:
                        continue
                    fixed = [{"subnet_id": sub.id}]
                    break
                if fixed is None:
                    raise conflict("IpAddressGenerationFailure",
                                   f"No more IP addresses available on network {net.id}.")
            s.add(f)
            s.flush()
            port = self.make_port(s, net, project_id="", owner="network:floatingip", device_id=f.id,
                                  fixed_ips=fixed, status="N/A")
            ips = self._ips(s, [port.id]).get(port.id, [])
            f.floating_port_id = port.id
            f.floating_ip_address = ips[0]["ip_address"]
            if data.get("port_id") is not None:
                self._associate(s, ctx, f, data["port_id"], data.get("fixed_ip_address"))
            self.bump(s)
            s.flush()
            return self.render_fip(f)

        return self.tx(run)

    def update_floatingip(self, ctx: RequestContext, fip_id: str, data: dict[str, Any],
                          if_match: str | None = None) -> dict[str, Any]:
        self.allowed(data, "port_id", "fixed_ip_address", "description", "qos_policy_id", "tags", "dns_name",
                     "dns_domain", "floating_network_id", "floating_ip_address", standard=False)

        def run(s: Session) -> dict[str, Any]:
            f = self.get_fip_row(s, ctx, fip_id)
            enforce_write(ctx, f.project_id, "update_floatingip")
            self.check_if_match(f, if_match)
            for key in ("floating_network_id", "floating_ip_address"):
                if key in data and data[key] != getattr(f, key):
                    raise bad(f"Cannot update read-only attribute {key}")
            if "description" in data:
                f.description = to_str(data["description"], "description") or ""
            if "port_id" in data:
                self._associate(s, ctx, f, data["port_id"], data.get("fixed_ip_address"))
            elif "fixed_ip_address" in data and f.port_id:
                self._associate(s, ctx, f, f.port_id, data["fixed_ip_address"])
            if "tags" in data:
                f.tags = self.validate_tags(data["tags"])
            self.touch(f)
            self.bump(s)
            s.flush()
            return self.render_fip(f)

        return self.tx(run)

    def delete_floatingip(self, ctx: RequestContext, fip_id: str, if_match: str | None = None) -> None:
        def run(s: Session) -> None:
            f = self.get_fip_row(s, ctx, fip_id)
            enforce_write(ctx, f.project_id, "delete_floatingip")
            self.check_if_match(f, if_match)
            port = s.get(m.Port, f.floating_port_id) if f.floating_port_id else None
            s.delete(f)
            s.flush()
            if port is not None:
                self.remove_port(s, port)
            self.bump(s)

        self.tx(run)

    def set_fip_status(self, ctx: RequestContext, fip_id: str, status: Any) -> dict[str, Any]:
        if status not in ("ACTIVE", "DOWN", "ERROR"):
            raise bad(f"Invalid input for status. Reason: '{status}' is not in ['ACTIVE', 'DOWN', 'ERROR'].")

        def run(s: Session) -> dict[str, Any]:
            f = s.get(m.FloatingIP, fip_id)
            if f is None:
                raise not_found("floatingip", fip_id)
            if f.status != status:
                f.status = status
                self.touch(f)
                self.bump(s)
            return {"id": f.id, "status": f.status}

        return self.tx(run)
