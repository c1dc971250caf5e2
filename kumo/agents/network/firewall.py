"""Security groups as iptables rules: pure functions from FirewallSpec to chain contents.

Layout (per family, filter table, host namespace):

    FORWARD  -m physdev --physdev-is-bridged -j KUMO-FORWARD      (the one rule kumo adds)
    KUMO-FORWARD: for every filtered port, ``--physdev-out DEV -j KUMO-I<port>`` (towards the
      VM) then ``--physdev-in DEV -j KUMO-O<port>`` (from the VM); each chain RETURNs what it
      allows and DROPs the rest, so both ends of a VM-to-VM flow are checked; finally traffic
      in or out of a kumo port (ktap+/kv+) is accepted, anything else returns to the host.
    KUMO-I<port>: established/related, DHCP replies, the group's ingress rules; default DROP.
    KUMO-O<port>: DHCP discovery, anti-spoofing (KUMO-S<port>: MAC+IP of the port and its
      allowed address pairs), no DHCP server, established/related, egress rules; default DROP.
"""

from __future__ import annotations

import ipaddress

from kumo.agents.network import names
from kumo.agents.network.specs import FilterRule, FirewallSpec, PortFilter

PREFIX = "KUMO-"
JUMP_MATCH = ["-m", "physdev", "--physdev-is-bridged"]
KUMO_PORTS = ("ktap+", "kv+")  # every port kumo puts on its bridges


def forward_chain(prefix: str = PREFIX) -> str:
    return f"{prefix}FORWARD"
_PORT_PROTOCOLS = {"tcp", "udp", "sctp", "dccp", "6", "17", "132", "33"}


def _family(version: int) -> str:
    return "IPv4" if version == 4 else "IPv6"


def _version(address: str) -> int:
    return ipaddress.ip_network(address, strict=False).version


def _protocol(rule: FilterRule, version: int) -> list[str]:
    proto = (rule.protocol or "").lower()
    if proto in ("", "any"):
        return []
    if version == 6 and proto in ("icmp", "icmpv6", "ipv6-icmp", "1", "58"):
        proto = "ipv6-icmp"
    elif version == 4 and proto in ("icmp", "1"):
        proto = "icmp"
    args = ["-p", proto]
    if proto in ("icmp", "ipv6-icmp"):
        if rule.port_range_min is not None:
            flag = "--icmp-type" if version == 4 else "--icmpv6-type"
            kind = str(rule.port_range_min)
            if rule.port_range_max is not None:
                kind += f"/{rule.port_range_max}"
            args += [flag, kind]
    elif proto in _PORT_PROTOCOLS and (rule.port_range_min is not None or rule.port_range_max is not None):
        lo = rule.port_range_min if rule.port_range_min is not None else 1
        hi = rule.port_range_max if rule.port_range_max is not None else 65535
        name = {"6": "tcp", "17": "udp", "132": "sctp", "33": "dccp"}.get(proto, proto)
        args += ["-m", name, "--dport", str(lo) if lo == hi else f"{lo}:{hi}"]
    return args


def _rule(rule: FilterRule, version: int) -> str | None:
    if rule.ethertype != _family(version):
        return None
    args: list[str] = []
    if rule.remote_ip_prefix:
        if _version(rule.remote_ip_prefix) != version:
            return None
        net = str(ipaddress.ip_network(rule.remote_ip_prefix, strict=False))
        if not net.endswith("/0"):
            args += ["-s" if rule.direction == "ingress" else "-d", net]
    args += _protocol(rule, version)
    return " ".join([*args, "-j", "RETURN"])


def _eui64_link_local(mac: str) -> str:
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    groups = [f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2)]
    return "fe80::" + ":".join(groups) + "/128"


def port_chains(port: PortFilter, version: int, prefix: str = PREFIX) -> dict[str, list[str]]:
    """The I/O/S chains of one port for one IP version."""
    i, o, s = (names.chain(k, port.port_id, prefix) for k in "IOS")
    est = "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    invalid = "-m conntrack --ctstate INVALID -j DROP"
    ingress, egress, spoof = [est, invalid], [], []
    if version == 4:
        ingress.append("-p udp -m udp --sport 67 --dport 68 -j RETURN")
        egress.append("-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -j RETURN")
    else:
        # neighbour discovery / router advertisements / DHCPv6 replies towards the VM
        ingress += [f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in (130, 131, 132, 134, 135, 136)]
        ingress.append("-p udp -m udp --sport 547 --dport 546 -j RETURN")
        egress += [f"-s ::/128 -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in (131, 135, 143)]
    egress.append(f"-j {s}")
    pairs = [(a, port.mac_address) for a in port.addresses]
    pairs += [(a, m or port.mac_address) for a, m in port.allowed_address_pairs]
    if version == 6:
        pairs += [(_eui64_link_local(port.mac_address), port.mac_address)]
        pairs += [(_eui64_link_local(m), m) for _a, m in port.allowed_address_pairs if m]
    seen = set()
    for addr, mac in pairs:
        if _version(addr) != version or (addr, mac) in seen:
            continue
        seen.add((addr, mac))
        net = str(ipaddress.ip_network(addr, strict=False))
        spoof.append(f"-s {net} -m mac --mac-source {mac.lower()} -j RETURN")
    spoof.append("-j DROP")
    if version == 4:
        egress += ["-p udp -m udp --sport 68 --dport 67 -j RETURN", "-p udp -m udp --sport 67 --dport 68 -j DROP"]
    else:
        egress += ["-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j DROP",
                   "-p udp -m udp --sport 546 --dport 547 -j RETURN",
                   "-p udp -m udp --sport 547 --dport 546 -j DROP"]
        egress += [f"-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN" for t in (130, 131, 132, 133, 135, 136, 143)]
    egress += [est, invalid]
    for rule in port.rules:
        text = _rule(rule, version)
        if text is None:
            continue
        target = ingress if rule.direction == "ingress" else egress
        if text not in target:
            target.append(text)
    ingress.append("-j DROP")
    egress.append("-j DROP")
    return {i: ingress, o: egress, s: spoof}


def build_chains(spec: FirewallSpec, version: int, prefix: str = PREFIX,
                 accept: tuple[str, ...] = KUMO_PORTS) -> dict[str, list[str]]:
    """Every KUMO-* filter chain for ``spec`` and IP ``version`` (KUMO-FORWARD first).

    ``prefix`` and ``accept`` (bridge-port patterns accepted after the checks) let tests run
    their own isolated chains beside a real agent's.
    """
    forward: list[str] = []
    chains: dict[str, list[str]] = {forward_chain(prefix): forward}
    ports = sorted(spec.ports, key=lambda p: p.port_id)
    for port in ports:
        forward.append(f"-m physdev --physdev-out {port.device} --physdev-is-bridged -j {names.chain('I', port.port_id, prefix)}")
    for port in ports:
        forward.append(f"-m physdev --physdev-in {port.device} --physdev-is-bridged -j {names.chain('O', port.port_id, prefix)}")
        chains.update(port_chains(port, version, prefix))
    for dev in accept:
        forward.append(f"-m physdev --physdev-out {dev} --physdev-is-bridged -j ACCEPT")
        forward.append(f"-m physdev --physdev-in {dev} --physdev-is-bridged -j ACCEPT")
    return chains
