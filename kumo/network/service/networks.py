"""Networks and their segments (provider attributes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.network import models as m
from kumo.network.errors import bad, conflict, forbidden, not_found
from kumo.network.policies import can_read, enforce_member, enforce_write, is_admin
from kumo.network.schemas import to_bool, to_int, to_str, to_str_list
from kumo.network.service.core import Core, new_id, now

PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
NETWORK_KEYS = (
    "admin_state_up", "shared", "router:external", "mtu", "port_security_enabled",
    "availability_zone_hints", "dns_domain", "is_default", "qos_policy_id", "tags", *PROVIDER,
)
AUTO_DELETE_OWNERS = ("network:dhcp",)


class Networks(Core):
    # -- visibility --------------------------------------------------------------------------

    @staticmethod
    def network_visible(ctx: RequestContext, net: m.Network) -> bool:
        return net.shared or net.external or can_read(ctx, net.project_id)

    def get_network_row(self, s: Session, ctx: RequestContext, network_id: str) -> m.Network:
        net = s.get(m.Network, network_id) if isinstance(network_id, str) else None
        if net is None or not self.network_visible(ctx, net):
            raise not_found("network", network_id)
        return net

    # -- rendering ---------------------------------------------------------------------------

    def render_network(self, ctx: RequestContext, net: m.Network, subnet_ids: list[str]) -> dict[str, Any]:
        out = self.std(net)
        out.update({
            "admin_state_up": net.admin_state_up,
            "status": net.status,
            "shared": net.shared,
            "router:external": net.external,
            "is_default": net.is_default,
            "mtu": net.mtu,
            "port_security_enabled": net.port_security_enabled,
            "subnets": subnet_ids,
            "availability_zone_hints": list(net.availability_zone_hints or []),
            "availability_zones": [self.settings.default_availability_zone],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "l2_adjacency": True,
            "dns_domain": net.dns_domain,
        })
        if is_admin(ctx):
            out["provider:network_type"] = net.network_type
            out["provider:physical_network"] = net.physical_network
            out["provider:segmentation_id"] = net.segmentation_id
        return out

    def _subnet_map(self, s: Session, network_ids: list[str] | None = None) -> dict[str, list[str]]:
        stmt = select(m.Subnet.network_id, m.Subnet.id).order_by(m.Subnet.created_at, m.Subnet.id)
        if network_ids is not None:
            stmt = stmt.where(m.Subnet.network_id.in_(network_ids))
        out: dict[str, list[str]] = {}
        for nid, sid in s.execute(stmt):
            out.setdefault(nid, []).append(sid)
        return out

    def list_networks(self, ctx: RequestContext) -> list[dict[str, Any]]:
        def run(s: Session) -> list[dict[str, Any]]:
            nets = [n for n in s.scalars(select(m.Network)) if self.network_visible(ctx, n)]
            subs = self._subnet_map(s)
            return [self.render_network(ctx, n, subs.get(n.id, [])) for n in nets]

        return self.read(run)

    def show_network(self, ctx: RequestContext, network_id: str) -> dict[str, Any]:
        def run(s: Session) -> dict[str, Any]:
            net = self.get_network_row(s, ctx, network_id)
            return self.render_network(ctx, net, self._subnet_map(s, [net.id]).get(net.id, []))

        return self.read(run)

    # -- segments ----------------------------------------------------------------------------

    def _segment(self, s: Session, data: dict[str, Any], net_id: str) -> tuple[str, str | None, int | None, str]:
        ntype = data.get("provider:network_type")
        physnet = data.get("provider:physical_network")
        seg_id = data.get("provider:segmentation_id")
        if ntype is None:
            if physnet is not None or seg_id is not None:
                raise bad("provider:network_type required", "InvalidInput")
            ntype = self.settings.tenant_network_type
        if ntype not in ("flat", "vxlan", "local"):
            raise bad(f"Invalid input for operation: network_type value '{ntype}' not supported.", "InvalidInput")
        if ntype == "flat":
            if seg_id is not None:
                raise bad("Invalid input for operation: segmentation_id specified for flat network.",
                          "InvalidInput")
            if not physnet:
                raise bad("Invalid input for operation: physical_network required for flat provider network.",
                          "InvalidInput")
            if physnet not in self.settings.physical_networks:
                raise bad(f"Invalid input for operation: physical_network '{physnet}' unknown for flat "
                          "provider network.", "InvalidInput")
            key = f"flat:{physnet}"
            if s.scalar(select(m.Network.id).where(m.Network.segment_key == key)):
                raise conflict("FlatNetworkInUse",
                               f"Unable to create the flat network. Physical network {physnet} is in use.")
            return ntype, physnet, None, key
        if ntype == "local":
            if physnet is not None or seg_id is not None:
                raise bad("Invalid input for operation: local networks take no physical_network or "
                          "segmentation_id.", "InvalidInput")
            return ntype, None, None, f"local:{net_id}"
        if physnet is not None:
            raise bad("Invalid input for operation: provider:physical_network specified for vxlan network.",
                      "InvalidInput")
        if seg_id is not None:
            seg = to_int(seg_id, "provider:segmentation_id", 1, 16777215)
            key = f"vxlan:{seg}"
            if s.scalar(select(m.Network.id).where(m.Network.segment_key == key)):
                raise conflict("TunnelIdInUse", f"Unable to create the network. The tunnel ID {seg} is in use.")
            return ntype, None, seg, key
        used = set(s.scalars(select(m.Network.segmentation_id).where(m.Network.network_type == "vxlan")))
        for vni in range(self.settings.vni_min, self.settings.vni_max + 1):
            if vni not in used:
                return ntype, None, vni, f"vxlan:{vni}"
        raise conflict("NoNetworkAvailable", "Unable to create the network. No tenant network is available for "
                       "allocation.")

    # -- create / update / delete ------------------------------------------------------------

    def create_network(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        self.allowed(data, *NETWORK_KEYS)
        enforce_member(ctx, "create_network")
        admin = is_admin(ctx)
        for key in ("shared", "router:external", "is_default", *PROVIDER):
            if key in data and not admin:
                raise forbidden(f"(rule:create_network:{key}) is disallowed by policy", "PolicyNotAuthorized")
        hints = to_str_list(data.get("availability_zone_hints"), "availability_zone_hints")
        for zone in hints:
            if zone != self.settings.default_availability_zone:
                raise bad(f"AvailabilityZone {zone} could not be found.", "AvailabilityZoneNotFound")
        tags = self.validate_tags(data["tags"]) if "tags" in data else []

        def run(s: Session) -> dict[str, Any]:
            net_id = new_id()
            ntype, physnet, seg, key = self._segment(s, data, net_id)
            max_mtu = self.settings.default_mtu - (50 if ntype == "vxlan" else 0)
            mtu = max_mtu
            if data.get("mtu") is not None:
                mtu = to_int(data["mtu"], "mtu", 68) or max_mtu
                if mtu > max_mtu:
                    raise bad(f"Requested MTU is too big, maximum is {max_mtu}", "InvalidInput")
            row = self.new_row(
                m.Network, ctx, data, id=net_id,
                admin_state_up=to_bool(data.get("admin_state_up", True), "admin_state_up"),
                status="ACTIVE",
                shared=to_bool(data.get("shared", False), "shared"),
                external=to_bool(data.get("router:external", False), "router:external"),
                is_default=to_bool(data.get("is_default", False), "is_default"),
                mtu=mtu,
                port_security_enabled=to_bool(data.get("port_security_enabled", True), "port_security_enabled"),
                network_type=ntype, physical_network=physnet, segmentation_id=seg, segment_key=key,
                availability_zone_hints=hints,
                dns_domain=to_str(data.get("dns_domain", ""), "dns_domain") or "",
            )
            row.tags = tags
            enforce_write(ctx, row.project_id, "create_network")
            self.check_quota(s, ctx, row.project_id, "network", m.Network)
            s.add(row)
            self.bump(s)
            s.flush()
            return self.render_network(ctx, row, [])

        return self.tx(run)

    def update_network(self, ctx: RequestContext, network_id: str, data: dict[str, Any],
                       if_match: str | None = None) -> dict[str, Any]:
        self.allowed(data, *NETWORK_KEYS)

        def run(s: Session) -> dict[str, Any]:
            net = self.get_network_row(s, ctx, network_id)
            enforce_write(ctx, net.project_id, "update_network")
            self.check_if_match(net, if_match)
            self.check_project_change(ctx, net, data)
            admin = is_admin(ctx)
            for key in ("shared", "router:external", "is_default"):
                if key in data and not admin:
                    raise forbidden(f"(rule:update_network:{key}) is disallowed by policy", "PolicyNotAuthorized")
            for key in PROVIDER:
                if key in data:
                    if not admin:
                        raise forbidden(f"(rule:update_network:{key}) is disallowed by policy",
                                        "PolicyNotAuthorized")
                    current = {"provider:network_type": net.network_type,
                               "provider:physical_network": net.physical_network,
                               "provider:segmentation_id": net.segmentation_id}[key]
                    if data[key] != current:
                        raise bad("Invalid input for operation: plugin does not support updating provider "
                                  "attributes.", "InvalidInput")
            if "availability_zone_hints" in data:
                raise bad("Cannot update read-only attribute availability_zone_hints")
            self.set_std(net, data)
            if "admin_state_up" in data:
                net.admin_state_up = to_bool(data["admin_state_up"], "admin_state_up")
            if "shared" in data:
                shared = to_bool(data["shared"], "shared")
                if net.shared and not shared:
                    others = s.scalar(select(m.Port.id).where(
                        m.Port.network_id == net.id, m.Port.project_id != net.project_id,
                        m.Port.device_owner.not_in(("network:dhcp", "network:router_gateway",
                                                    "network:floatingip"))).limit(1))
                    if others:
                        raise conflict("InvalidSharedSetting",
                                       f"Unable to reconfigure sharing settings for network {net.id}. "
                                       "Multiple tenants are using it.")
                net.shared = shared
            if "router:external" in data:
                ext = to_bool(data["router:external"], "router:external")
                in_use = s.scalar(select(m.Router.id).where(m.Router.gw_network_id == net.id).limit(1)) or \
                    s.scalar(select(m.FloatingIP.id).where(m.FloatingIP.floating_network_id == net.id).limit(1))
                if net.external and not ext and in_use:
                    raise conflict("ExternalNetworkInUse",
                                   f"External network {net.id} cannot be updated to be made "
                                   "non-external, since it has existing gateway ports.")
                net.external = ext
            if "is_default" in data:
                net.is_default = to_bool(data["is_default"], "is_default")
            if "mtu" in data and data["mtu"] is not None:
                max_mtu = self.settings.default_mtu - (50 if net.network_type == "vxlan" else 0)
                mtu = to_int(data["mtu"], "mtu", 68) or max_mtu
                if mtu > max_mtu:
                    raise bad(f"Requested MTU is too big, maximum is {max_mtu}", "InvalidInput")
                net.mtu = mtu
            if "port_security_enabled" in data:
                net.port_security_enabled = to_bool(data["port_security_enabled"], "port_security_enabled")
            if "dns_domain" in data:
                net.dns_domain = to_str(data["dns_domain"], "dns_domain") or ""
            if "tags" in data:
                net.tags = self.validate_tags(data["tags"])
            self.touch(net)
            self.bump(s)
            s.flush()
            return self.render_network(ctx, net, self._subnet_map(s, [net.id]).get(net.id, []))

        return self.tx(run)

    def delete_network(self, ctx: RequestContext, network_id: str, if_match: str | None = None) -> None:
        def run(s: Session) -> None:
            net = self.get_network_row(s, ctx, network_id)
            enforce_write(ctx, net.project_id, "delete_network")
            self.check_if_match(net, if_match)
            for fip in list(s.scalars(select(m.FloatingIP).where(m.FloatingIP.floating_network_id == net.id))):
                if fip.port_id is None:  # unassociated floating IPs go with their network
                    s.delete(fip)
                    s.execute(delete(m.Port).where(m.Port.id == fip.floating_port_id))
            s.flush()
            ports = list(s.scalars(select(m.Port).where(m.Port.network_id == net.id)))
            blocking = [p for p in ports if p.device_owner not in AUTO_DELETE_OWNERS]
            if blocking:
                raise conflict("NetworkInUse",
                               f"Unable to complete operation on network {net.id}. There are one or more "
                               "ports still in use on the network.")
            for p in ports:
                s.delete(p)
            s.flush()
            for sub in s.scalars(select(m.Subnet).where(m.Subnet.network_id == net.id)):
                s.delete(sub)
            s.flush()
            s.delete(net)
            self.bump(s)

        self.tx(run)

    def _touch_network(self, s: Session, network_id: str) -> None:
        net = s.get(m.Network, network_id)
        if net is not None:
            net.updated_at = now()
            net.revision_number += 1
