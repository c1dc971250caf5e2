"""What the network driver is asked to build: frozen, hashable, no ORM rows, no HTTP types."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SubnetSpec:
    id: str
    cidr: str
    ip_version: int = 4
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.cidr, strict=False).prefixlen


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """An L2 segment: a bridge (plus a VXLAN device or uplink when the segment needs one)."""

    id: str
    network_type: str = "local"  # local | flat | vlan | vxlan
    physical_network: str | None = None
    segmentation_id: int | None = None
    mtu: int = 1500
    vxlan_peers: tuple[str, ...] = ()  # other agents' tunnel IPs
    external: bool = False
    subnets: tuple[SubnetSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class FixedIP:
    subnet_id: str
    ip_address: str


@dataclass(frozen=True, slots=True)
class PortSpec:
    """A VM port as the compute side plugs it (``plug_port``)."""

    id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[FixedIP, ...] = ()
    mtu: int = 1500
    physical_network: str | None = None


@dataclass(frozen=True, slots=True)
class DhcpHost:
    mac_address: str
    ip_address: str
    hostname: str


@dataclass(frozen=True, slots=True)
class MetadataHost:
    ip_address: str
    device_id: str
    project_id: str


@dataclass(frozen=True, slots=True)
class DhcpSpec:
    """The DHCP namespace of one network: its port's addresses, dnsmasq hosts, metadata."""

    network_id: str
    mac_address: str  # the DHCP port's MAC
    addresses: tuple[str, ...]  # the DHCP port's IPs as CIDRs, e.g. 10.0.0.2/24
    subnets: tuple[SubnetSpec, ...]
    hosts: tuple[DhcpHost, ...] = ()
    metadata: tuple[MetadataHost, ...] = ()
    mtu: int = 1500
    physical_network: str | None = None
    domain: str = "openstacklocal"


@dataclass(frozen=True, slots=True)
class RouterLeg:
    port_id: str
    network_id: str
    mac_address: str
    addresses: tuple[str, ...]  # CIDRs, e.g. 10.0.0.1/24
    physical_network: str | None = None
    mtu: int = 1500


@dataclass(frozen=True, slots=True)
class FloatingIPSpec:
    floating_ip: str
    fixed_ip: str


@dataclass(frozen=True, slots=True)
class RouterSpec:
    id: str
    interfaces: tuple[RouterLeg, ...] = ()
    gateway: RouterLeg | None = None
    gateway_nexthop: str | None = None  # the external subnet's gateway_ip
    enable_snat: bool = True
    routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)
    floating_ips: tuple[FloatingIPSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class FilterRule:
    """One security-group rule after expansion (a remote group becomes remote prefixes)."""

    direction: str  # ingress | egress
    ethertype: str = "IPv4"  # IPv4 | IPv6
    protocol: str | None = None  # tcp | udp | icmp | ipv6-icmp | a number | None (any)
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class PortFilter:
    """Filtering for one port with port security enabled."""

    port_id: str
    device: str  # the tap (or test veth) name on the bridge
    mac_address: str
    addresses: tuple[str, ...]  # fixed IPs
    allowed_address_pairs: tuple[tuple[str, str], ...] = ()  # (ip or cidr, mac)
    rules: tuple[FilterRule, ...] = ()


@dataclass(frozen=True, slots=True)
class FirewallSpec:
    ports: tuple[PortFilter, ...] = field(default=())
