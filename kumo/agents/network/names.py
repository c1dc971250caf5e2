"""Host object names derived from API ids (all kumo-prefixed, all within IFNAMSIZ)."""

from __future__ import annotations


def bridge(network_id: str) -> str:
    return f"kbr-{network_id[:11]}"


def tap(port_id: str) -> str:
    return f"ktap-{port_id[:10]}"


def vxlan(network_id: str) -> str:
    return f"kvx-{network_id[:11]}"


def dhcp_netns(network_id: str) -> str:
    return f"kdhcp-{network_id}"


def router_netns(router_id: str) -> str:
    return f"krouter-{router_id}"


def dhcp_veth(network_id: str) -> tuple[str, str]:
    """(host end in the bridge, end inside the DHCP namespace)."""
    return f"kvd{network_id[:11]}", f"kvn{network_id[:11]}"


def router_leg(port_id: str) -> tuple[str, str]:
    return f"kvr{port_id[:11]}", f"kvq{port_id[:11]}"


def gateway_leg(port_id: str) -> tuple[str, str]:
    return f"kvg{port_id[:11]}", f"kvh{port_id[:11]}"


def chain(kind: str, port_id: str, prefix: str = "KUMO-") -> str:
    """iptables chain for a port: I (to the VM), O (from the VM), S (anti-spoofing)."""
    return f"{prefix}{kind}{port_id[:10]}"
