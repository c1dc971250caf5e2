"""Ports: fixed IPs (IPAM), MAC addresses, bindings, port security, DHCP ports."""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.network import ipam
from kumo.network import models as m
from kumo.network.errors import bad, conflict, forbidden, not_found
from kumo.network.policies import can_read, enforce_member, enforce_write, is_admin
from kumo.network.schemas import invalid, to_bool, to_int, to_str, to_uuid
from kumo.network.service.core import new_id, now
from kumo.network.service.notify import deleted_event, l2_agent_wires, status_event
from kumo.network.service.secgroups import SecurityGroups
from kumo.network.service.subnets import auto_address

PORT_KEYS = (
    "network_id", "admin_state_up", "mac_address", "fixed_ips", "device_id", "device_owner", "binding:host_id",
    "binding:profile", "binding:vnic_type", "security_groups", "port_security_enabled",
    "allowed_address_pairs", "extra_dhcp_opts", "dns_name", "dns_domain", "qos_policy_id",
    "propagate_uplink_status", "tags", "status",
)
VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic",
              "vdpa", "remote-managed", "accelerator-direct", "accelerator-direct-physical")
ROUTER_OWNERS = ("network:router_interface", "network:router_gateway", "network:router_interface_distributed",
                 "network:ha_router_replicated_interface", "network:router_centralized_snat")
PROTECTED_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip",
                    "network:router_interface_distributed", "network:ha_router_replicated_interface")


def is_network_owned(owner: str) -> bool:
    return owner.startswith("network:") or owner.startswith("neutron:")


class Ports(SecurityGroups):
    # -- visibility / rendering --------------------------------------------------------------

    def port_visible(self, ctx: RequestContext, port: m.Port, net: m.Network | None) -> bool:
        return can_read(ctx, port.project_id) or (net is not None and can_read(ctx, net.project_id))

    def get_port_row(self, s: Session, ctx: RequestContext, port_id: Any) -> m.Port:
        port = s.get(m.Port, port_id) if isinstance(port_id, str) else None
        if port is None or not self.port_visible(ctx, port, s.get(m.Network, port.network_id)):
            raise not_found("port", port_id)
        return port

    def _ips(self, s: Session, port_ids: list[str] | None = None) -> dict[str, list[dict[str, str]]]:
        stmt = select(m.IPAllocation).order_by(m.IPAllocation.position, m.IPAllocation.ip_address)
        if port_ids is not None:
            stmt = stmt.where(m.IPAllocation.port_id.in_(port_ids))
        out: dict[str, list[dict[str, str]]] = {}
        for a in s.scalars(stmt):
            out.setdefault(a.port_id, []).append({"subnet_id": a.subnet_id, "ip_address": a.ip_address})
        return out

    def render_port(self, ctx: RequestContext | None, port: m.Port, ips: list[dict[str, str]]) -> dict[str, Any]:
        out = self.std(port)
        out.update({
            "network_id": port.network_id,
            "mac_address": port.mac_address,
            "admin_state_up": port.admin_state_up,
            "status": port.status,
            "device_id": port.device_id,
            "device_owner": port.device_owner,
            "fixed_ips": ips,
            "allowed_address_pairs": list(port.allowed_address_pairs or []),
            "extra_dhcp_opts": list(port.extra_dhcp_opts or []),
            "security_groups": list(port.security_groups or []),
            "port_security_enabled": port.port_security_enabled,
            "binding:vnic_type": port.binding_vnic_type,
            "dns_name": port.dns_name,
            "dns_assignment": [{"ip_address": ip["ip_address"], "hostname": port.dns_name or
                                "host-" + ip["ip_address"].replace(".", "-").replace(":", "-"),
                                "fqdn": (port.dns_name or "host-" + ip["ip_address"].replace(".", "-")
                                         .replace(":", "-")) + "." + self.settings.dns_domain} for ip in ips],
            "propagate_uplink_status": port.propagate_uplink_status,
            "ip_allocation": "immediate",
            "resource_request": None,
        })
        if ctx is None or is_admin(ctx):
            out["binding:host_id"] = port.binding_host_id
            out["binding:profile"] = dict(port.binding_profile or {})
            out["binding:vif_type"] = port.binding_vif_type
            out["binding:vif_details"] = dict(port.binding_vif_details or {})
        return out

    def list_ports(self, ctx: RequestContext) -> list[dict[str, Any]]:
        def run(s: Session) -> list[dict[str, Any]]:
            nets = {n.id: n for n in s.scalars(select(m.Network))}
            ports = [p for p in s.scalars(select(m.Port).order_by(m.Port.created_at))
                     if self.port_visible(ctx, p, nets.get(p.network_id))]
            ips = self._ips(s)
            return [self.render_port(ctx, p, ips.get(p.id, [])) for p in ports]

        return self.read(run)

    def show_port(self, ctx: RequestContext, port_id: str) -> dict[str, Any]:
        def run(s: Session) -> dict[str, Any]:
            port = self.get_port_row(s, ctx, port_id)
            return self.render_port(ctx, port, self._ips(s, [port.id]).get(port.id, []))

        return self.read(run)

    # -- MACs --------------------------------------------------------------------------------

    @staticmethod
    def _random_mac() -> str:
        a, b, c = (random.randint(0, 255) for _ in range(3))
        return f"fa:16:3e:{a:02x}:{b:02x}:{c:02x}"

    def _mac_for(self, s: Session, network_id: str, requested: Any = None) -> str:
        if requested is not None:
            mac = ipam.normalize_mac(requested)
            if s.scalar(select(m.Port.id).where(m.Port.network_id == network_id, m.Port.mac_address == mac)):
                raise conflict("MacAddressInUse", f"Unable to complete operation for network {network_id}. The "
                                                  f"mac address {mac} is in use.")
            return mac
        used = set(s.scalars(select(m.Port.mac_address).where(m.Port.network_id == network_id)))
        for _ in range(100):
            mac = self._random_mac()
            if mac not in used:
                return mac
        raise conflict("MacAddressGenerationFailure", f"Unable to generate unique mac on network {network_id}.")

    # -- IPAM --------------------------------------------------------------------------------

    def _used(self, s: Session, subnet_id: str) -> set[str]:
        return set(s.scalars(select(m.IPAllocation.ip_address).where(m.IPAllocation.subnet_id == subnet_id)))

    def _pick_ip(self, s: Session, sub: m.Subnet, mac: str) -> str:
        if auto_address(sub):
            ip = ipam.eui64(ipaddress.ip_network(sub.cidr), mac)  # type: ignore[arg-type]
            if s.get(m.IPAllocation, (sub.id, ip)) is not None:
                raise conflict("IpAddressInUse", f"Unable to complete operation for network {sub.network_id}. "
                                                 f"The IP address {ip} is in use.")
            return ip
        used = self._used(s, sub.id)
        if sub.gateway_ip:
            used.add(sub.gateway_ip)
        for ip in ipam.free_addresses(sub.allocation_pools or [], used, sub.ip_version):
            return ip
        raise conflict("IpAddressGenerationFailure",
                       f"No more IP addresses available on network {sub.network_id}.")

    def _check_requested_ip(self, s: Session, sub: m.Subnet, ip_text: Any, owner: str) -> str:
        ip = ipam.parse_ip(ip_text, "fixed_ips")
        net = ipaddress.ip_network(sub.cidr)
        if ip.version != net.version or ip not in net:
            raise bad(f"IP address {ip_text} is not a valid IP for the specified subnet.", "InvalidIpForSubnet")
        if net.version == 4 and net.prefixlen < 31 and ip in (net.network_address, net.broadcast_address):
            raise bad(f"IP address {ip_text} is not a valid IP for the specified subnet.", "InvalidIpForSubnet")
        if net.version == 6 and ip == net.network_address and owner not in ROUTER_OWNERS:
            raise bad(f"IP address {ip_text} is not a valid IP for the specified subnet.", "InvalidIpForSubnet")
        text = str(ip)
        if s.get(m.IPAllocation, (sub.id, text)) is not None:
            raise conflict("IpAddressInUse", f"Unable to complete operation for network {sub.network_id}. "
                                             f"The IP address {text} is in use.")
        return text

    def _resolve_fixed_ips(self, s: Session, net: m.Network, requests: Any, owner: str, mac: str,
                           keep: list[dict[str, str]] | None = None) -> list[tuple[m.Subnet, str]]:
        """Turn ``fixed_ips`` requests into (subnet, address) pairs; ``None`` = automatic."""
        subnets = list(s.scalars(select(m.Subnet).where(m.Subnet.network_id == net.id)
                                 .order_by(m.Subnet.created_at, m.Subnet.id)))
        by_id = {x.id: x for x in subnets}
        out: list[tuple[m.Subnet, str]] = []
        keep = keep or []
        if requests is None:
            v4_done = v6_done = False
            for sub in subnets:
                if auto_address(sub):
                    if owner in ROUTER_OWNERS:
                        continue
                    out.append((sub, self._pick_ip(s, sub, mac)))
                    continue
                if (sub.ip_version == 4 and v4_done) or (sub.ip_version == 6 and v6_done):
                    continue
                try:
                    out.append((sub, self._pick_ip(s, sub, mac)))
                except Exception:
                    continue
                if sub.ip_version == 4:
                    v4_done = True
                else:
                    v6_done = True
            if subnets and not out:
                raise conflict("IpAddressGenerationFailure",
                               f"No more IP addresses available on network {net.id}.")
            return out
        if not isinstance(requests, list):
            raise invalid("fixed_ips", f"'{requests}' is not a list")
        seen: set[tuple[str, str]] = set()
        for req in requests:
            if not isinstance(req, dict) or set(req) - {"subnet_id", "ip_address"}:
                raise invalid("fixed_ips", f"'{req}' is not a valid fixed IP request")
            sub_id = req.get("subnet_id")
            ip_text = req.get("ip_address")
            if sub_id is not None:
                to_uuid(sub_id, "fixed_ips")
                sub = by_id.get(sub_id)
                if sub is None:
                    if s.get(m.Subnet, sub_id) is None:
                        raise not_found("subnet", sub_id)
                    raise bad(f"Invalid input for operation: Failed to create port on network {net.id}, because "
                              f"fixed_ips included invalid subnet {sub_id}.", "InvalidInput")
            elif ip_text is not None:
                ip = ipam.parse_ip(ip_text, "fixed_ips")
                sub = next((x for x in subnets if ip in ipaddress.ip_network(x.cidr)), None)
                if sub is None:
                    raise bad(f"Invalid input for operation: IP address {ip_text} is not a valid IP for any of "
                              "the subnets on the specified network.", "InvalidInput")
            else:
                raise invalid("fixed_ips", "a fixed IP needs a subnet_id or an ip_address")
            if ip_text is not None:
                kept = next((k for k in keep if k["subnet_id"] == sub.id and k["ip_address"] == str(
                    ipam.parse_ip(ip_text))), None)
                addr = kept["ip_address"] if kept else self._check_requested_ip(s, sub, ip_text, owner)
            else:
                kept = next((k for k in keep if k["subnet_id"] == sub.id and (sub.id, k["ip_address"]) not in seen),
                            None)
                addr = kept["ip_address"] if kept else self._pick_ip(s, sub, mac)
            if (sub.id, addr) in seen:
                raise bad(f"Duplicate IP address '{addr}'", "InvalidInput")
            seen.add((sub.id, addr))
            out.append((sub, addr))
        return out

    def _store_ips(self, s: Session, port: m.Port, pairs: list[tuple[m.Subnet, str]]) -> None:
        existing = {(a.subnet_id, a.ip_address): a for a in
                    s.scalars(select(m.IPAllocation).where(m.IPAllocation.port_id == port.id))}
        wanted = {(sub.id, ip) for sub, ip in pairs}
        for key, a in existing.items():
            if key not in wanted:
                s.delete(a)
        s.flush()
        for pos, (sub, ip) in enumerate(pairs):
            a = existing.get((sub.id, ip))
            if a is None:
                s.add(m.IPAllocation(subnet_id=sub.id, ip_address=ip, port_id=port.id, network_id=port.network_id,
                                     position=pos))
            else:
                a.position = pos
        s.flush()

    # -- internal creation (DHCP, routers, floating IPs) --------------------------------------

    def make_port(self, s: Session, net: m.Network, *, project_id: str, owner: str, device_id: str,
                  fixed_ips: Any = None, name: str = "", status: str = "DOWN") -> m.Port:
        ts = now()
        port = m.Port(
            id=new_id(), project_id=project_id, name=name, description="", tags=[], revision_number=0,
            created_at=ts, updated_at=ts, network_id=net.id, mac_address=self._mac_for(s, net.id),
            admin_state_up=True, status=status, device_owner=owner, device_id=device_id, binding_host_id="",
            binding_vnic_type="normal", binding_profile={}, binding_vif_type="unbound", binding_vif_details={},
            port_security_enabled=False, security_groups=[], allowed_address_pairs=[], extra_dhcp_opts=[],
            dns_name="", propagate_uplink_status=False,
        )
        s.add(port)
        s.flush()
        self._store_ips(s, port, self._resolve_fixed_ips(s, net, fixed_ips, owner, port.mac_address))
        return port

    def sync_dhcp_port(self, s: Session, net: m.Network) -> None:
        """One ``network:dhcp`` port per network with an IP on every DHCP-enabled subnet."""
        subs = [x for x in s.scalars(select(m.Subnet).where(m.Subnet.network_id == net.id)
                                     .order_by(m.Subnet.created_at, m.Subnet.id)) if x.enable_dhcp]
        port = s.scalar(select(m.Port).where(m.Port.network_id == net.id, m.Port.device_owner == "network:dhcp")
                        .limit(1))
        if not subs:
            if port is not None:
                s.delete(port)
                s.flush()
            return
        if port is None:
            port = self.make_port(s, net, project_id=net.project_id, owner="network:dhcp",
                                  device_id=f"dhcp-{net.id}", fixed_ips=[])
        have = {a.subnet_id: a.ip_address for a in
                s.scalars(select(m.IPAllocation).where(m.IPAllocation.port_id == port.id))}
        pairs: list[tuple[m.Subnet, str]] = []
        for sub in subs:
            if sub.id in have:
                pairs.append((sub, have[sub.id]))
                continue
            try:
                pairs.append((sub, self._pick_ip(s, sub, port.mac_address)))
            except Exception:
                continue  # a full subnet serves DHCP without a port address
        self._store_ips(s, port, pairs)
        port.updated_at = now()

    # -- validation --------------------------------------------------------------------------

    @staticmethod
    def _address_pairs(value: Any, mac: str) -> list[dict[str, str]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid("allowed_address_pairs", f"'{value}' is not a list")
        out: list[dict[str, str]] = []
        for pair in value:
            if not isinstance(pair, dict) or "ip_address" not in pair or set(pair) - {"ip_address", "mac_address"}:
                raise invalid("allowed_address_pairs", f"'{pair}' is not a valid address pair")
            ip = pair["ip_address"]
            if isinstance(ip, str) and "/" in ip:
                ipam.parse_cidr(ip, "allowed_address_pairs", strict=False)
            else:
                ipam.parse_ip(ip, "allowed_address_pairs")
            item = {"ip_address": ip, "mac_address": ipam.normalize_mac(pair.get("mac_address") or mac)}
            if item in out:
                raise bad("Request contains duplicate address pair: " + str(pair), "DuplicateAddressPairInRequest")
            out.append(item)
        if len(out) > 10:
            raise bad("Exceeded maximum amount of allowed address pairs 10", "AllowedAddressPairExhausted")
        return out

    @staticmethod
    def _dhcp_opts(value: Any, current: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        if value is None:
            return list(current or [])
        if not isinstance(value, list):
            raise invalid("extra_dhcp_opts", f"'{value}' is not a list")
        out = [dict(o) for o in (current or [])]
        for opt in value:
            if not isinstance(opt, dict) or "opt_name" not in opt or set(opt) - {"opt_name", "opt_value",
                                                                               "ip_version"}:
                raise invalid("extra_dhcp_opts", f"'{opt}' is not a valid DHCP option")
            name = to_str(opt["opt_name"], "extra_dhcp_opts")
            version = to_int(opt.get("ip_version", 4), "extra_dhcp_opts")
            if version not in (4, 6):
                raise invalid("extra_dhcp_opts", f"ip_version '{version}' is not in [4, 6]")
            out = [o for o in out if not (o["opt_name"] == name and o.get("ip_version", 4) == version)]
            if opt.get("opt_value") is not None:
                out.append({"opt_name": name, "opt_value": str(opt["opt_value"]), "ip_version": version})
            elif current is None:
                raise invalid("extra_dhcp_opts", f"opt_value of '{name}' is empty")
        return out

    def _security_groups(self, s: Session, ctx: RequestContext, value: Any, project_id: str) -> list[str]:
        if not isinstance(value, list):
            raise invalid("security_groups", f"'{value}' is not a list")
        out: list[str] = []
        for sg_id in value:
            to_uuid(sg_id, "security_groups")
            sg = s.get(m.SecurityGroup, sg_id)
            if sg is None or not (is_admin(ctx) or sg.project_id == project_id):
                raise not_found("security_group", sg_id)
            if sg_id not in out:
                out.append(sg_id)
        return out

    def _binding(self, s: Session, port: m.Port) -> None:
        """ML2's rule: bound (``bridge``) only where a live L2 agent wires ports on the host."""
        if port.binding_host_id and l2_agent_wires(s, port.binding_host_id, self.settings.agent_down_time):
            port.binding_vif_type = "bridge"
            port.binding_vif_details = {"port_filter": True, "connectivity": "l2"}
        else:
            port.binding_vif_type = "binding_failed" if port.binding_host_id else "unbound"
            port.binding_vif_details = {}

    # -- create / update / delete ------------------------------------------------------------

    def create_port(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        self.allowed(data, *PORT_KEYS)
        enforce_member(ctx, "create_port")
        if "network_id" not in data:
            raise bad("Failed to parse request. Required attribute 'network_id' not specified")
        to_uuid(data["network_id"], "network_id")
        admin = is_admin(ctx)
        for key in ("binding:host_id", "binding:profile"):
            if key in data and not admin:
                raise forbidden(f"(rule:create_port:{key}) is disallowed by policy", "PolicyNotAuthorized")
        vnic = data.get("binding:vnic_type", "normal")
        if vnic not in VNIC_TYPES:
            raise invalid("binding:vnic_type", f"'{vnic}' is not in {list(VNIC_TYPES)}")
        profile = data.get("binding:profile") or {}
        if not isinstance(profile, dict):
            raise invalid("binding:profile", f"'{profile}' is not a dictionary")
        tags = self.validate_tags(data["tags"]) if "tags" in data else []
        owner = to_str(data.get("device_owner", ""), "device_owner") or ""
        device_id = to_str(data.get("device_id", ""), "device_id") or ""

        def run(s: Session) -> dict[str, Any]:
            net = self.get_network_row(s, ctx, data["network_id"])
            project_id = self._port_project(ctx, data, net)
            if not admin and not net.shared and net.project_id != ctx.project_id:
                raise forbidden("(rule:create_port) is disallowed by policy", "PolicyNotAuthorized")
            enforce_write(ctx, project_id, "create_port")
            if "mac_address" in data and not admin and net.project_id != ctx.project_id:
                raise forbidden("(rule:create_port:mac_address) is disallowed by policy", "PolicyNotAuthorized")
            self.check_quota(s, ctx, project_id, "port", m.Port)
            psec = to_bool(data.get("port_security_enabled", net.port_security_enabled), "port_security_enabled")
            port = self.new_row(
                m.Port, ctx, data, project_id=project_id, network_id=net.id,
                mac_address=self._mac_for(s, net.id, data.get("mac_address")),
                admin_state_up=to_bool(data.get("admin_state_up", True), "admin_state_up"),
                status="DOWN", device_owner=owner, device_id=device_id,
                binding_host_id=to_str(data.get("binding:host_id", ""), "binding:host_id") or "",
                binding_vnic_type=vnic, binding_profile=profile, binding_vif_type="unbound",
                binding_vif_details={}, port_security_enabled=psec, security_groups=[],
                allowed_address_pairs=[], extra_dhcp_opts=[],
                dns_name=to_str(data.get("dns_name", ""), "dns_name") or "",
                propagate_uplink_status=to_bool(data.get("propagate_uplink_status", False),
                                                "propagate_uplink_status"),
            )
            port.tags = tags
            self._binding(s, port)
            if "security_groups" in data and data["security_groups"] is not None:
                groups = self._security_groups(s, ctx, data["security_groups"], project_id)
                if groups and not psec:
                    raise bad("Port security must be enabled and port must have an IP address in order to use "
                              "security groups.", "PortSecurityAndIPRequiredForSecurityGroups")
            elif psec and not is_network_owned(owner):
                sg = self.ensure_default_sg(s, project_id)
                groups = [sg] if sg else []
            else:
                groups = []
            port.security_groups = groups
            pairs = self._address_pairs(data.get("allowed_address_pairs"), port.mac_address)
            if pairs and not psec:
                raise conflict("AddressPairAndPortSecurityRequired",
                               "Port Security must be enabled in order to have allowed address pairs on a port.")
            port.allowed_address_pairs = pairs
            port.extra_dhcp_opts = self._dhcp_opts(data.get("extra_dhcp_opts")) if data.get(
                "extra_dhcp_opts") else []
            s.add(port)
            s.flush()
            self._store_ips(s, port, self._resolve_fixed_ips(s, net, data.get("fixed_ips"), owner,
                                                             port.mac_address))
            self.bump(s)
            return self.render_port(ctx, port, self._ips(s, [port.id]).get(port.id, []))

        return self.tx(run)

    @staticmethod
    def _port_project(ctx: RequestContext, data: dict[str, Any], net: m.Network) -> str:
        from kumo.network.schemas import project_of

        if is_admin(ctx) and "project_id" not in data and "tenant_id" not in data:
            return net.project_id if ctx.project_id is None else ctx.project_id
        return project_of(ctx, data)

    def update_port(self, ctx: RequestContext, port_id: str, data: dict[str, Any],
                    if_match: str | None = None) -> dict[str, Any]:
        self.allowed(data, *PORT_KEYS)
        admin = is_admin(ctx)
        events: list[dict[str, Any] | None] = []

        def run(s: Session) -> dict[str, Any]:
            events.clear()
            port = self.get_port_row(s, ctx, port_id)
            net = s.get(m.Network, port.network_id)
            assert net is not None
            if not (admin or can_read(ctx, port.project_id) or can_read(ctx, net.project_id)):
                raise not_found("port", port_id)
            if not (admin or (net.project_id == ctx.project_id and "member" in ctx.roles)):
                enforce_write(ctx, port.project_id, "update_port")
            self.check_if_match(port, if_match)
            self.check_project_change(ctx, port, data)
            if "network_id" in data and data["network_id"] != port.network_id:
                raise bad("Cannot update read-only attribute network_id")
            for key in ("binding:host_id", "binding:profile", "mac_address", "status"):
                if key in data and not admin:
                    raise forbidden(f"(rule:update_port:{key}) is disallowed by policy", "PolicyNotAuthorized")
            self.set_std(port, data)
            if "admin_state_up" in data:
                port.admin_state_up = to_bool(data["admin_state_up"], "admin_state_up")
            if "device_owner" in data:
                port.device_owner = to_str(data["device_owner"], "device_owner") or ""
            if "device_id" in data:
                port.device_id = to_str(data["device_id"], "device_id") or ""
            if "mac_address" in data:
                mac = ipam.normalize_mac(data["mac_address"])
                if mac != port.mac_address:
                    if port.binding_host_id and port.binding_vif_type not in ("unbound", "binding_failed"):
                        raise conflict("PortBound", f"Unable to complete operation on port {port.id}, port is "
                                                    "already bound.")
                    port.mac_address = self._mac_for(s, net.id, mac)
            if "binding:host_id" in data:
                port.binding_host_id = to_str(data["binding:host_id"] or "", "binding:host_id") or ""
                self._binding(s, port)
            if "binding:profile" in data:
                profile = data["binding:profile"] or {}
                if not isinstance(profile, dict):
                    raise invalid("binding:profile", f"'{profile}' is not a dictionary")
                port.binding_profile = profile
            if "binding:vnic_type" in data:
                if data["binding:vnic_type"] not in VNIC_TYPES:
                    raise invalid("binding:vnic_type", f"'{data['binding:vnic_type']}' is not in {list(VNIC_TYPES)}")
                port.binding_vnic_type = data["binding:vnic_type"]
            if "status" in data:
                if data["status"] not in ("ACTIVE", "DOWN", "ERROR", "BUILD"):
                    raise invalid("status", f"'{data['status']}' is not a valid port status")
                events.append(status_event(port.id, port.device_owner, port.device_id, port.status, data["status"]))
                port.status = data["status"]
            psec = port.port_security_enabled
            if "port_security_enabled" in data:
                psec = to_bool(data["port_security_enabled"], "port_security_enabled")
            groups = list(port.security_groups or [])
            if "security_groups" in data:
                groups = self._security_groups(s, ctx, data["security_groups"] or [], port.project_id)
            elif psec and not port.port_security_enabled and not groups and not is_network_owned(port.device_owner):
                sg = self.ensure_default_sg(s, port.project_id)
                groups = [sg] if sg else []
            pairs = port.allowed_address_pairs or []
            if "allowed_address_pairs" in data:
                pairs = self._address_pairs(data["allowed_address_pairs"], port.mac_address)
            if not psec:
                if groups:
                    if "security_groups" in data:
                        raise bad("Port security must be enabled and port must have an IP address in order to "
                                  "use security groups.", "PortSecurityAndIPRequiredForSecurityGroups")
                    raise conflict("PortSecurityPortHasSecurityGroup",
                                   "Port has security group associated. Cannot disable port security or IP "
                                   "address until security group is removed.")
                if pairs:
                    raise conflict("AddressPairAndPortSecurityRequired",
                                   "Port Security must be enabled in order to have allowed address pairs on a "
                                   "port.")
            port.port_security_enabled = psec
            port.security_groups = groups
            port.allowed_address_pairs = pairs
            if "extra_dhcp_opts" in data:
                port.extra_dhcp_opts = self._dhcp_opts(data["extra_dhcp_opts"] or [], port.extra_dhcp_opts or [])
            if "dns_name" in data:
                port.dns_name = to_str(data["dns_name"] or "", "dns_name") or ""
            if "propagate_uplink_status" in data:
                port.propagate_uplink_status = to_bool(data["propagate_uplink_status"], "propagate_uplink_status")
            if "tags" in data:
                port.tags = self.validate_tags(data["tags"])
            if "fixed_ips" in data:
                current = self._ips(s, [port.id]).get(port.id, [])
                pairs_ips = self._resolve_fixed_ips(s, net, data["fixed_ips"] or [], port.device_owner,
                                                    port.mac_address, keep=current)
                self._check_ip_change(s, port, current, pairs_ips)
                self._store_ips(s, port, pairs_ips)
            self.touch(port)
            s.flush()
            self.bump(s)
            return self.render_port(ctx, port, self._ips(s, [port.id]).get(port.id, []))

        out = self.tx(run)
        self.notifier.send(events)
        return out

    def _check_ip_change(self, s: Session, port: m.Port, current: list[dict[str, str]],
                         new: list[tuple[m.Subnet, str]]) -> None:
        """A router interface keeps one IP per subnet; floating IPs lose a vanished fixed IP."""
        kept = {ip for _sub, ip in new}
        for fip in s.scalars(select(m.FloatingIP).where(m.FloatingIP.port_id == port.id)):
            if fip.fixed_ip_address not in kept:
                fip.port_id = None
                fip.fixed_ip_address = None
                fip.router_id = None
                fip.status = "DOWN"

    def delete_port(self, ctx: RequestContext, port_id: str, if_match: str | None = None,
                    internal: bool = False) -> None:
        events: list[dict[str, Any] | None] = []

        def run(s: Session) -> None:
            events.clear()
            port = self.get_port_row(s, ctx, port_id)
            net = s.get(m.Network, port.network_id)
            if not (is_admin(ctx) or (net is not None and net.project_id == ctx.project_id
                                      and "member" in ctx.roles)):
                enforce_write(ctx, port.project_id, "delete_port")
            self.check_if_match(port, if_match)
            if port.device_owner in PROTECTED_OWNERS and not internal:
                raise conflict("L3PortInUse" if port.device_owner.startswith("network:router") else "PortInUse",
                               f"Port {port.id} cannot be deleted directly via the port API: has device owner "
                               f"{port.device_owner}.")
            events.append(deleted_event(port.id, port.device_owner, port.device_id))
            self.remove_port(s, port)

        self.tx(run)
        self.notifier.send(events)

    def remove_port(self, s: Session, port: m.Port) -> None:
        s.execute(update(m.FloatingIP).where(m.FloatingIP.port_id == port.id).values(
            port_id=None, fixed_ip_address=None, router_id=None, status="DOWN", updated_at=now()))
        s.execute(delete(m.IPAllocation).where(m.IPAllocation.port_id == port.id))
        s.delete(port)
        s.flush()
        self.bump(s)

    # -- agent ------------------------------------------------------------------------------

    def set_port_status(self, ctx: RequestContext, port_id: str, status: Any) -> dict[str, Any]:
        if status not in ("ACTIVE", "DOWN", "ERROR", "BUILD"):
            raise invalid("status", f"'{status}' is not in ['ACTIVE', 'DOWN', 'ERROR', 'BUILD']")

        events: list[dict[str, Any] | None] = []

        def run(s: Session) -> dict[str, Any]:
            events.clear()
            port = s.get(m.Port, port_id)
            if port is None:
                raise not_found("port", port_id)
            if port.status != status:
                if port.binding_vif_type == "binding_failed":  # its host's agent came up: bind it now
                    self._binding(s, port)
                events.append(status_event(port.id, port.device_owner, port.device_id, port.status, status))
                port.status = status
                self.touch(port)
                self.bump(s)
            return {"id": port.id, "status": port.status, "revision_number": port.revision_number}

        out = self.tx(run)
        self.notifier.send(events)
        return out
