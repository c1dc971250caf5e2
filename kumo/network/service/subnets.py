"""Subnets (IPv4 and IPv6), their DHCP port, and subnet pools."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.network import ipam
from kumo.network import models as m
from kumo.network.errors import bad, conflict, forbidden, not_found
from kumo.network.policies import can_read, enforce_member, enforce_write, is_admin
from kumo.network.schemas import invalid, to_bool, to_int, to_uuid
from kumo.network.service.networks import Networks

SUBNET_KEYS = (
    "network_id", "ip_version", "cidr", "gateway_ip", "enable_dhcp", "allocation_pools", "dns_nameservers",
    "host_routes", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "prefixlen", "use_default_subnetpool",
    "service_types", "segment_id", "dns_publish_fixed_ip", "tags",
)
V6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
POOL_KEYS = ("prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen", "shared", "is_default",
             "default_quota", "address_scope_id", "ip_version", "tags")


def auto_address(sub: m.Subnet) -> bool:
    """SLAAC and DHCPv6-stateless subnets: addresses come from the MAC (EUI-64)."""
    return sub.ip_version == 6 and sub.ipv6_address_mode in ("slaac", "dhcpv6-stateless")


class Subnets(Networks):
    # -- visibility / rendering --------------------------------------------------------------

    def subnet_visible(self, ctx: RequestContext, sub: m.Subnet, net: m.Network | None) -> bool:
        return can_read(ctx, sub.project_id) or (net is not None and self.network_visible(ctx, net))

    def get_subnet_row(self, s: Session, ctx: RequestContext, subnet_id: Any) -> m.Subnet:
        sub = s.get(m.Subnet, subnet_id) if isinstance(subnet_id, str) else None
        if sub is None or not self.subnet_visible(ctx, sub, s.get(m.Network, sub.network_id)):
            raise not_found("subnet", subnet_id)
        return sub

    def render_subnet(self, sub: m.Subnet) -> dict[str, Any]:
        out = self.std(sub)
        out.update({
            "network_id": sub.network_id,
            "ip_version": sub.ip_version,
            "cidr": sub.cidr,
            "gateway_ip": sub.gateway_ip,
            "enable_dhcp": sub.enable_dhcp,
            "allocation_pools": list(sub.allocation_pools or []),
            "dns_nameservers": list(sub.dns_nameservers or []),
            "host_routes": list(sub.host_routes or []),
            "ipv6_ra_mode": sub.ipv6_ra_mode,
            "ipv6_address_mode": sub.ipv6_address_mode,
            "subnetpool_id": sub.subnetpool_id,
            "service_types": list(sub.service_types or []),
            "segment_id": sub.segment_id,
            "dns_publish_fixed_ip": sub.dns_publish_fixed_ip,
        })
        return out

    def list_subnets(self, ctx: RequestContext) -> list[dict[str, Any]]:
        def run(s: Session) -> list[dict[str, Any]]:
            nets = {n.id: n for n in s.scalars(select(m.Network))}
            return [self.render_subnet(x) for x in s.scalars(select(m.Subnet).order_by(m.Subnet.created_at))
                    if self.subnet_visible(ctx, x, nets.get(x.network_id))]

        return self.read(run)

    def show_subnet(self, ctx: RequestContext, subnet_id: str) -> dict[str, Any]:
        return self.read(lambda s: self.render_subnet(self.get_subnet_row(s, ctx, subnet_id)))

    # -- validation helpers ------------------------------------------------------------------

    @staticmethod
    def _dns(value: Any, version: int) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid("dns_nameservers", f"'{value}' is not a list")
        out: list[str] = []
        for v in value:
            ip = ipam.parse_ip(v, "dns_nameservers")
            if str(ip) in out or v in out:
                raise invalid("dns_nameservers", f"Duplicate nameserver '{v}'")
            out.append(v)
        if len(out) > 5:
            raise bad("Number of DNS nameservers exceeds the limit 5 for subnet", "DNSNameServersExhausted")
        return out

    @staticmethod
    def _routes(value: Any, version: int) -> list[dict[str, str]]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid("host_routes", f"'{value}' is not a list")
        out: list[dict[str, str]] = []
        for r in value:
            if not isinstance(r, dict) or set(r) != {"destination", "nexthop"}:
                raise invalid("host_routes", f"'{r}' is not a valid route")
            dest = ipam.parse_cidr(r["destination"], "host_routes", strict=False)
            hop = ipam.parse_ip(r["nexthop"], "host_routes")
            if dest.version != version or hop.version != version:
                raise bad(f"Invalid route: {r}", "InvalidInput")
            item = {"destination": str(dest), "nexthop": str(hop)}
            if item in out:
                raise invalid("host_routes", f"Duplicate hostroute '{r}'")
            out.append(item)
        if len(out) > 20:
            raise bad("Number of host routes exceeds the limit 20 for subnet", "HostRoutesExhausted")
        return out

    @staticmethod
    def _gateway(value: Any, net: ipam.IPNetwork) -> str | None:
        if value is None or value == "":
            return None
        ip = ipam.parse_ip(value, "gateway_ip")
        if ip.version != net.version:
            raise bad(f"Invalid input for gateway_ip. Reason: '{value}' is not of the subnet's IP version.",
                      "InvalidInput")
        if net.version == 4 and net.prefixlen < 31 and ip in (net.network_address, net.broadcast_address):
            raise bad(f"Gateway ip {ip} conflicts with the subnet's network or broadcast address.",
                      "InvalidInput")
        return str(ip)

    # -- create ------------------------------------------------------------------------------

    def create_subnet(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        self.allowed(data, *SUBNET_KEYS)
        enforce_member(ctx, "create_subnet")
        if "network_id" not in data:
            raise bad("Failed to parse request. Required attribute 'network_id' not specified")
        to_uuid(data["network_id"], "network_id")
        tags = self.validate_tags(data["tags"]) if "tags" in data else []

        def run(s: Session) -> dict[str, Any]:
            net = self.get_network_row(s, ctx, data["network_id"])
            if not is_admin(ctx) and net.project_id != ctx.project_id:
                raise forbidden("(rule:create_subnet) is disallowed by policy", "PolicyNotAuthorized")
            sub = self._build_subnet(s, ctx, data, net)
            sub.tags = tags
            enforce_write(ctx, sub.project_id, "create_subnet")
            self.check_quota(s, ctx, sub.project_id, "subnet", m.Subnet)
            s.add(sub)
            s.flush()
            self._touch_network(s, net.id)
            self.sync_dhcp_port(s, net)
            self.bump(s)
            return self.render_subnet(sub)

        return self.tx(run)

    def _build_subnet(self, s: Session, ctx: RequestContext, data: dict[str, Any], net: m.Network) -> m.Subnet:
        version = data.get("ip_version")
        pool: m.SubnetPool | None = None
        pool_id = data.get("subnetpool_id")
        if pool_id is None and to_bool(data.get("use_default_subnetpool", False), "use_default_subnetpool"):
            pool = s.scalar(select(m.SubnetPool).where(m.SubnetPool.is_default.is_(True),
                                                       m.SubnetPool.ip_version == (version or 4)))
            if pool is None:
                raise bad("No default subnetpool found for IPv%s" % (version or 4))
        elif pool_id is not None:
            pool = self.get_subnetpool_row(s, ctx, pool_id)
        if version is None:
            if pool is not None:
                version = pool.ip_version
            elif data.get("cidr"):
                version = ipam.parse_cidr(data["cidr"]).version
            else:
                raise bad("Failed to parse request. Required attribute 'ip_version' not specified")
        version = to_int(version, "ip_version")
        if version not in (4, 6):
            raise invalid("ip_version", f"'{version}' is not in [4, 6]")
        if pool is not None and pool.ip_version != version:
            raise bad(f"Cannot allocate IPv{version} subnet from IPv{pool.ip_version} subnet pool")
        existing = list(s.scalars(select(m.Subnet).where(m.Subnet.network_id == net.id)))
        if data.get("cidr") is not None:
            cidr = ipam.parse_cidr(data["cidr"])
            if "prefixlen" in data and data["prefixlen"] is not None:
                raise bad("Failed to create subnet: cidr and prefixlen must not be supplied together")
            if pool is not None:
                self._check_in_pool(s, pool, cidr)
        elif pool is not None:
            prefixlen = to_int(data.get("prefixlen", pool.default_prefixlen), "prefixlen", 0, 128)
            cidr = self._allocate_from_pool(s, pool, prefixlen or pool.default_prefixlen)
        else:
            raise bad("Bad subnets request: a cidr must be specified in the absence of a subnet pool")
        if cidr.version != version:
            raise invalid("cidr", f"'{cidr}' does not match the specified IP version {version}")
        if version == 4 and cidr.prefixlen == 0 or version == 6 and cidr.prefixlen == 0:
            raise bad("0 is not allowed as CIDR prefix length", "InvalidInput")
        for other in existing:
            if ipam.overlaps(cidr, ipaddress.ip_network(other.cidr)):
                raise bad(f"Invalid input for operation: Requested subnet with cidr: {cidr} for network: "
                          f"{net.id} overlaps with another subnet.", "InvalidInput")
        ra = data.get("ipv6_ra_mode")
        am = data.get("ipv6_address_mode")
        for attr, v in (("ipv6_ra_mode", ra), ("ipv6_address_mode", am)):
            if v is not None and v not in V6_MODES:
                raise invalid(attr, f"'{v}' is not in {list(V6_MODES)}")
        if version == 4 and (ra or am):
            raise bad("Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when "
                      "ip_version is 4.", "InvalidInput")
        if ra and am and ra != am:
            raise bad(f"Invalid input for operation: ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to "
                      f"'{am}' is not valid. If both attributes are set, they must be the same value.",
                      "InvalidInput")
        if am in ("slaac", "dhcpv6-stateless") and cidr.prefixlen != 64:
            raise bad(f"Invalid input for operation: Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses "
                      "the EUI-64 address format, which requires the prefix to be /64.", "InvalidInput")
        if "gateway_ip" in data:
            gateway = self._gateway(data["gateway_ip"], cidr)
        else:
            gateway = ipam.default_gateway(cidr)
        if data.get("allocation_pools") is not None:
            pools = ipam.validate_pools(cidr, data["allocation_pools"], gateway)
        else:
            pools = ipam.default_pools(cidr, gateway)
        sub = self.new_row(
            m.Subnet, ctx, data, project_id=data.get("project_id") or data.get("tenant_id") or net.project_id
            if is_admin(ctx) else None,
            network_id=net.id, ip_version=version, cidr=str(cidr), gateway_ip=gateway,
            enable_dhcp=to_bool(data.get("enable_dhcp", True), "enable_dhcp"),
            allocation_pools=pools,
            dns_nameservers=self._dns(data.get("dns_nameservers"), version),
            host_routes=self._routes(data.get("host_routes"), version),
            ipv6_ra_mode=ra, ipv6_address_mode=am,
            subnetpool_id=pool.id if pool is not None else None,
            service_types=[], segment_id=None,
            dns_publish_fixed_ip=to_bool(data.get("dns_publish_fixed_ip", False), "dns_publish_fixed_ip"),
        )
        return sub

    # -- update / delete ---------------------------------------------------------------------

    def update_subnet(self, ctx: RequestContext, subnet_id: str, data: dict[str, Any],
                      if_match: str | None = None) -> dict[str, Any]:
        self.allowed(data, *SUBNET_KEYS)

        def run(s: Session) -> dict[str, Any]:
            sub = self.get_subnet_row(s, ctx, subnet_id)
            enforce_write(ctx, sub.project_id, "update_subnet")
            self.check_if_match(sub, if_match)
            self.check_project_change(ctx, sub, data)
            for key in ("network_id", "ip_version", "cidr", "ipv6_ra_mode", "ipv6_address_mode",
                        "subnetpool_id", "prefixlen", "use_default_subnetpool"):
                if key in data and data[key] != getattr(sub, key, None):
                    raise bad(f"Cannot update read-only attribute {key}")
            net = s.get(m.Network, sub.network_id)
            cidr = ipaddress.ip_network(sub.cidr)
            self.set_std(sub, data)
            gateway = sub.gateway_ip
            if "gateway_ip" in data:
                gateway = self._gateway(data["gateway_ip"], cidr)
            pools = sub.allocation_pools
            if "allocation_pools" in data and data["allocation_pools"] is not None:
                pools = ipam.validate_pools(cidr, data["allocation_pools"], gateway)
            elif gateway and gateway != sub.gateway_ip and ipam.in_pools(ipaddress.ip_address(gateway), pools):
                raise conflict("GatewayConflictWithAllocationPools",
                               f"Gateway ip {gateway} conflicts with allocation pool.")
            if gateway != sub.gateway_ip and gateway is not None:
                holder = s.get(m.IPAllocation, (sub.id, gateway))
                if holder is not None:
                    port = s.get(m.Port, holder.port_id)
                    if port is not None and not port.device_owner.startswith("network:router"):
                        raise conflict("IpAddressInUse",
                                       f"Unable to complete operation for network {sub.network_id}. The IP "
                                       f"address {gateway} is in use.")
            sub.gateway_ip = gateway
            sub.allocation_pools = pools
            if "dns_nameservers" in data:
                sub.dns_nameservers = self._dns(data["dns_nameservers"], sub.ip_version)
            if "host_routes" in data:
                sub.host_routes = self._routes(data["host_routes"], sub.ip_version)
            if "enable_dhcp" in data:
                sub.enable_dhcp = to_bool(data["enable_dhcp"], "enable_dhcp")
            if "dns_publish_fixed_ip" in data:
                sub.dns_publish_fixed_ip = to_bool(data["dns_publish_fixed_ip"], "dns_publish_fixed_ip")
            if "tags" in data:
                sub.tags = self.validate_tags(data["tags"])
            self.touch(sub)
            s.flush()
            if net is not None:
                self.sync_dhcp_port(s, net)
            self.bump(s)
            return self.render_subnet(sub)

        return self.tx(run)

    def delete_subnet(self, ctx: RequestContext, subnet_id: str, if_match: str | None = None) -> None:
        def run(s: Session) -> None:
            sub = self.get_subnet_row(s, ctx, subnet_id)
            enforce_write(ctx, sub.project_id, "delete_subnet")
            self.check_if_match(sub, if_match)
            allocs = list(s.scalars(select(m.IPAllocation).where(m.IPAllocation.subnet_id == sub.id)))
            for a in allocs:
                port = s.get(m.Port, a.port_id)
                if port is None:
                    continue
                if port.device_owner == "network:dhcp":
                    continue
                if auto_address(sub) and not port.device_owner.startswith("network:router"):
                    continue  # SLAAC addresses go with the subnet
                raise conflict("SubnetInUse",
                               f"Unable to complete operation on subnet {sub.id}: One or more ports have an IP "
                               "allocation from this subnet.")
            for a in allocs:
                s.delete(a)
            s.flush()
            net = s.get(m.Network, sub.network_id)
            s.delete(sub)
            s.flush()
            if net is not None:
                self._touch_network(s, net.id)
                self.sync_dhcp_port(s, net)
            self.bump(s)

        self.tx(run)

    # -- subnet pools ------------------------------------------------------------------------

    def subnetpool_visible(self, ctx: RequestContext, pool: m.SubnetPool) -> bool:
        return pool.shared or can_read(ctx, pool.project_id)

    def get_subnetpool_row(self, s: Session, ctx: RequestContext, pool_id: Any) -> m.SubnetPool:
        pool = s.get(m.SubnetPool, pool_id) if isinstance(pool_id, str) else None
        if pool is None or not self.subnetpool_visible(ctx, pool):
            raise not_found("subnetpool", pool_id)
        return pool

    def render_subnetpool(self, pool: m.SubnetPool) -> dict[str, Any]:
        out = self.std(pool)
        out.update({
            "ip_version": pool.ip_version, "prefixes": list(pool.prefixes),
            "default_prefixlen": pool.default_prefixlen, "min_prefixlen": pool.min_prefixlen,
            "max_prefixlen": pool.max_prefixlen, "shared": pool.shared, "is_default": pool.is_default,
            "default_quota": pool.default_quota, "address_scope_id": pool.address_scope_id,
        })
        return out

    def list_subnetpools(self, ctx: RequestContext) -> list[dict[str, Any]]:
        return self.read(lambda s: [self.render_subnetpool(p) for p in s.scalars(select(m.SubnetPool))
                                    if self.subnetpool_visible(ctx, p)])

    def show_subnetpool(self, ctx: RequestContext, pool_id: str) -> dict[str, Any]:
        return self.read(lambda s: self.render_subnetpool(self.get_subnetpool_row(s, ctx, pool_id)))

    @staticmethod
    def _pool_prefixes(value: Any) -> list[ipam.IPNetwork]:
        if not isinstance(value, list) or not value:
            raise invalid("prefixes", f"'{value}' is not a non-empty list")
        nets = [ipam.parse_cidr(p, "prefixes", strict=False) for p in value]
        if len({n.version for n in nets}) != 1:
            raise bad("Illegal subnetpool: prefixes of mixed IP versions", "IllegalSubnetPoolPrefixBounds")
        v4 = [n for n in nets if n.version == 4]
        v6 = [n for n in nets if n.version == 6]
        merged: list[Any] = list(ipaddress.collapse_addresses(v4)) + list(ipaddress.collapse_addresses(v6))
        return merged

    def _pool_lens(self, data: dict[str, Any], version: int, cur: m.SubnetPool | None) -> tuple[int, int, int]:
        top = 32 if version == 4 else 128
        lo = to_int(data.get("min_prefixlen", cur.min_prefixlen if cur else 8), "min_prefixlen", 0, top)
        hi = to_int(data.get("max_prefixlen", cur.max_prefixlen if cur else top), "max_prefixlen", 0, top)
        dflt = to_int(data.get("default_prefixlen", cur.default_prefixlen if cur else lo), "default_prefixlen",
                      0, top)
        assert lo is not None and hi is not None and dflt is not None
        if not lo <= dflt <= hi:
            raise bad("Illegal prefix bounds: min_prefixlen <= default_prefixlen <= max_prefixlen required",
                      "IllegalSubnetPoolPrefixBounds")
        return lo, dflt, hi

    def create_subnetpool(self, ctx: RequestContext, data: dict[str, Any]) -> dict[str, Any]:
        self.allowed(data, *POOL_KEYS)
        enforce_member(ctx, "create_subnetpool")
        if "prefixes" not in data:
            raise bad("Failed to parse request. Required attribute 'prefixes' not specified")
        prefixes = self._pool_prefixes(data["prefixes"])
        version = prefixes[0].version
        lo, dflt, hi = self._pool_lens(data, version, None)
        for key in ("shared", "is_default"):
            if to_bool(data.get(key, False), key) and not is_admin(ctx):
                raise forbidden(f"(rule:create_subnetpool:{key}) is disallowed by policy", "PolicyNotAuthorized")

        def run(s: Session) -> dict[str, Any]:
            pool = self.new_row(
                m.SubnetPool, ctx, data, ip_version=version, prefixes=[str(p) for p in prefixes],
                default_prefixlen=dflt, min_prefixlen=lo, max_prefixlen=hi,
                shared=to_bool(data.get("shared", False), "shared"),
                is_default=to_bool(data.get("is_default", False), "is_default"),
                default_quota=to_int(data.get("default_quota"), "default_quota", 0, allow_none=True),
                address_scope_id=data.get("address_scope_id"),
            )
            if "tags" in data:
                pool.tags = self.validate_tags(data["tags"])
            enforce_write(ctx, pool.project_id, "create_subnetpool")
            self.check_quota(s, ctx, pool.project_id, "subnetpool", m.SubnetPool)
            s.add(pool)
            s.flush()
            return self.render_subnetpool(pool)

        return self.tx(run)

    def update_subnetpool(self, ctx: RequestContext, pool_id: str, data: dict[str, Any],
                          if_match: str | None = None) -> dict[str, Any]:
        self.allowed(data, *POOL_KEYS)

        def run(s: Session) -> dict[str, Any]:
            pool = self.get_subnetpool_row(s, ctx, pool_id)
            enforce_write(ctx, pool.project_id, "update_subnetpool")
            self.check_if_match(pool, if_match)
            self.set_std(pool, data)
            if "prefixes" in data:
                new = self._pool_prefixes(data["prefixes"])
                old = [ipaddress.ip_network(p) for p in pool.prefixes]
                for o in old:
                    if not any(o.subnet_of(n) for n in new if n.version == o.version):  # type: ignore[arg-type]
                        raise bad("Illegal update to prefixes: existing prefixes must be kept",
                                  "IllegalSubnetPoolPrefixUpdate")
                pool.prefixes = [str(p) for p in new]
            lo, dflt, hi = self._pool_lens(data, pool.ip_version, pool)
            pool.min_prefixlen, pool.default_prefixlen, pool.max_prefixlen = lo, dflt, hi
            if "is_default" in data:
                if not is_admin(ctx):
                    raise forbidden("(rule:update_subnetpool:is_default) is disallowed by policy",
                                    "PolicyNotAuthorized")
                pool.is_default = to_bool(data["is_default"], "is_default")
            if "default_quota" in data:
                pool.default_quota = to_int(data["default_quota"], "default_quota", 0, allow_none=True)
            if "shared" in data and to_bool(data["shared"], "shared") != pool.shared:
                raise bad("Cannot update read-only attribute shared")
            if "tags" in data:
                pool.tags = self.validate_tags(data["tags"])
            self.touch(pool)
            s.flush()
            return self.render_subnetpool(pool)

        return self.tx(run)

    def delete_subnetpool(self, ctx: RequestContext, pool_id: str, if_match: str | None = None) -> None:
        def run(s: Session) -> None:
            pool = self.get_subnetpool_row(s, ctx, pool_id)
            enforce_write(ctx, pool.project_id, "delete_subnetpool")
            self.check_if_match(pool, if_match)
            if s.scalar(select(m.Subnet.id).where(m.Subnet.subnetpool_id == pool.id).limit(1)):
                raise conflict("SubnetPoolInUse", f"Unable to delete subnet pool {pool.id}: it has subnets "
                                                  "allocated from it.")
            s.delete(pool)

        self.tx(run)

    def _check_in_pool(self, s: Session, pool: m.SubnetPool, cidr: ipam.IPNetwork) -> None:
        prefixes = [ipaddress.ip_network(p) for p in pool.prefixes]
        if not any(cidr.version == p.version and cidr.subnet_of(p) for p in prefixes):  # type: ignore[arg-type]
            raise bad(f"Cidr {cidr} is not within the prefixes of subnet pool {pool.id}",
                      "SubnetAllocationError")
        if not pool.min_prefixlen <= cidr.prefixlen <= pool.max_prefixlen:
            raise bad(f"Prefix length {cidr.prefixlen} is outside the pool's bounds", "SubnetAllocationError")
        for other in s.scalars(select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == pool.id)):
            if ipam.overlaps(cidr, ipaddress.ip_network(other)):
                raise bad(f"Cidr {cidr} overlaps with another subnet of pool {pool.id}", "SubnetAllocationError")

    def _allocate_from_pool(self, s: Session, pool: m.SubnetPool, prefixlen: int) -> ipam.IPNetwork:
        if not pool.min_prefixlen <= prefixlen <= pool.max_prefixlen:
            raise bad(f"Prefix length {prefixlen} is outside the pool's bounds "
                      f"[{pool.min_prefixlen}, {pool.max_prefixlen}]", "SubnetAllocationError")
        used = [ipaddress.ip_network(c) for c in s.scalars(select(m.Subnet.cidr).where(
            m.Subnet.subnetpool_id == pool.id))]
        for prefix in (ipaddress.ip_network(p) for p in pool.prefixes):
            if prefixlen < prefix.prefixlen:
                continue
            for count, cand in enumerate(prefix.subnets(new_prefix=prefixlen)):
                if count >= 100000:
                    break
                if not any(ipam.overlaps(cand, u) for u in used):
                    return cand
        raise conflict("SubnetAllocationError", "Insufficient prefix space to allocate subnet size "
                                                f"/{prefixlen}")
