"""dnsmasq configuration for a DHCP namespace: pure functions producing arguments and files.

The command line only depends on the subnets (a change restarts dnsmasq); hosts and options
live in files that dnsmasq re-reads on SIGHUP.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from kumo.agents.network.specs import DhcpSpec, SubnetSpec

METADATA_IP = "169.254.169.254"
LEASE_SECONDS = 86400


def _tag(index: int) -> str:
    return f"subnet{index}"


def dhcp_subnets(spec: DhcpSpec) -> list[SubnetSpec]:
    return [s for s in spec.subnets if s.enable_dhcp and s.ip_version == 4]


def dnsmasq_argv(spec: DhcpSpec, interface: str, state: Path) -> list[str]:
    argv = [
        "dnsmasq", "--keep-in-foreground", "--no-hosts", "--no-resolv", "--port=0", "--bind-interfaces",
        f"--interface={interface}", "--except-interface=lo", "--no-ping", "--dhcp-authoritative",
        "--conf-file=/dev/null", "--user=root", "--group=root", "--log-facility=-",
        f"--dhcp-hostsfile={state / 'hosts'}", f"--dhcp-optsfile={state / 'opts'}",
        f"--dhcp-leasefile={state / 'leases'}", f"--domain={spec.domain}",
    ]
    for index, subnet in enumerate(dhcp_subnets(spec)):
        net = ipaddress.ip_network(subnet.cidr, strict=False)
        argv.append(f"--dhcp-range=set:{_tag(index)},{net.network_address},static,{net.netmask},{LEASE_SECONDS}s")
    return argv


def hosts_file(spec: DhcpSpec) -> str:
    lines = [f"{h.mac_address.lower()},{h.ip_address},{h.hostname}" for h in sorted(spec.hosts, key=lambda h: h.mac_address)
             if ipaddress.ip_address(h.ip_address).version == 4]
    return "\n".join(lines) + ("\n" if lines else "")


def without_conflicts(leases: str, spec: DhcpSpec) -> str | None:
    """The lease file without the leases of addresses the hosts file now gives another MAC; None
    when there are none. dnsmasq will not offer an address still leased to another MAC (a port
    deleted, its address reused by a new one) and reads its lease file only when it starts, so
    these leases go while it is stopped (Neutron's DHCP agent releases them with dhcp_release)."""
    wanted = {h.ip_address: h.mac_address.lower() for h in spec.hosts}
    keep, dropped = [], False
    for line in leases.splitlines():
        f = line.split()
        if len(f) >= 3 and f[2] in wanted and f[1].lower() != wanted[f[2]]:
            dropped = True
            continue
        keep.append(line)
    return ("\n".join(keep) + ("\n" if keep else "")) if dropped else None


def _dhcp_ip_in(spec: DhcpSpec, subnet: SubnetSpec) -> str | None:
    net = ipaddress.ip_network(subnet.cidr, strict=False)
    for cidr in spec.addresses:
        iface = ipaddress.ip_interface(cidr)
        if iface.ip in net:
            return str(iface.ip)
    return None


def opts_file(spec: DhcpSpec) -> str:
    lines = []
    for index, subnet in enumerate(dhcp_subnets(spec)):
        tag = _tag(index)
        routes: list[str] = []
        dhcp_ip = _dhcp_ip_in(spec, subnet)
        if dhcp_ip:
            routes.append(f"{METADATA_IP}/32,{dhcp_ip}")
        routes += [f"{dst},{via}" for dst, via in subnet.host_routes]
        if subnet.gateway_ip:
            routes.append(f"0.0.0.0/0,{subnet.gateway_ip}")
            lines.append(f"tag:{tag},option:router,{subnet.gateway_ip}")
        else:
            lines.append(f"tag:{tag},option:router")
        if routes:
            lines.append(f"tag:{tag},option:classless-static-route,{','.join(routes)}")
            lines.append(f"tag:{tag},249,{','.join(routes)}")  # the Windows twin of option 121
        dns = [d for d in subnet.dns_nameservers if ipaddress.ip_address(d).version == 4]
        if dns:
            lines.append(f"tag:{tag},option:dns-server,{','.join(dns)}")
        if spec.mtu and spec.mtu != 1500:
            lines.append(f"tag:{tag},option:mtu,{spec.mtu}")
    return "\n".join(lines) + ("\n" if lines else "")
