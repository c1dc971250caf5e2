"""A router namespace's nat table: floating IPs (DNAT + SNAT) and SNAT to the gateway IP."""

from __future__ import annotations

import ipaddress

from kumo.agents.network.specs import RouterSpec


def nat_table(spec: RouterSpec, gateway_device: str | None) -> str:
    """iptables-restore text for the whole nat table (the namespace is kumo's alone)."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]"]
    if gateway_device and spec.gateway is not None:
        for fip in sorted(spec.floating_ips, key=lambda f: f.floating_ip):
            lines.append(f"-A PREROUTING -d {fip.floating_ip}/32 -j DNAT --to-destination {fip.fixed_ip}")
            lines.append(f"-A OUTPUT -d {fip.floating_ip}/32 -j DNAT --to-destination {fip.fixed_ip}")
        for fip in sorted(spec.floating_ips, key=lambda f: f.floating_ip):
            lines.append(f"-A POSTROUTING -s {fip.fixed_ip}/32 -o {gateway_device} -j SNAT --to-source {fip.floating_ip}")
        gw_ip = next((str(ipaddress.ip_interface(a).ip) for a in spec.gateway.addresses
                      if ipaddress.ip_interface(a).version == 4), None)
        if spec.enable_snat and gw_ip:
            lines.append(f"-A POSTROUTING -o {gateway_device} -m conntrack ! --ctstate DNAT -j SNAT --to-source {gw_ip}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
