"""``ip``/``bridge``/``sysctl`` wrappers: namespaces, links, addresses, routes.

Host-side links are always kumo-named; a link inside a kumo namespace is kumo-named too.
Sysctls are only ever written inside a kumo namespace, never host-wide.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kumo.privileged.cmd import CommandError, PrivilegedError, check_name, run

NETNS_DIR = Path("/var/run/netns")


# -- namespaces ------------------------------------------------------------------------------


def netns_list(prefix: str = "k") -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / check_name(name, "netns")).exists()


def netns_add(name: str) -> None:
    """Create namespace ``name`` (idempotent) with its loopback up."""
    if not netns_exists(name):
        try:
            run(["ip", "netns", "add", name])
        except CommandError:
            if not netns_exists(name):
                raise
    run(["ip", "link", "set", "lo", "up"], netns=name)


def netns_delete(name: str) -> None:
    if netns_exists(name):
        run(["ip", "netns", "delete", name])


def netns_sysctl(name: str, key: str, value: str) -> None:
    """Set a sysctl inside namespace ``name`` (per-namespace keys only, e.g. net.ipv4.ip_forward)."""
    if not key.startswith(("net.ipv4.", "net.ipv6.")):
        raise PrivilegedError(f"refusing sysctl {key}: only per-namespace net.* keys")
    run(["sysctl", "-q", "-w", f"{key}={value}"], netns=check_name(name, "netns"))


# -- links -----------------------------------------------------------------------------------


def links(netns: str | None = None, prefix: str = "k", kind: str | None = None) -> list[dict]:
    """``ip -j -d link`` entries whose name starts with ``prefix`` (in ``netns`` if given)."""
    argv = ["ip", "-j", "-d", "link", "show"]
    if kind:
        argv += ["type", kind]
    out = run(argv, netns=netns)
    return [e for e in json.loads(out or "[]") if e.get("ifname", "").startswith(prefix)]


def link_names(netns: str | None = None, prefix: str = "k", kind: str | None = None) -> set[str]:
    return {e["ifname"] for e in links(netns, prefix, kind)}


def link_exists(name: str, netns: str | None = None) -> bool:
    check_name(name)
    if netns is None:
        return Path("/sys/class/net", name).exists()
    return run(["ip", "link", "show", "dev", name], netns=netns, check=False) != ""


def link_info(name: str, netns: str | None = None) -> dict | None:
    check_name(name)
    out = run(["ip", "-j", "-d", "link", "show", "dev", name], netns=netns, check=False)
    entries = json.loads(out) if out.strip() else []
    return entries[0] if entries else None


def link_delete(name: str, netns: str | None = None) -> None:
    check_name(name)
    if link_exists(name, netns):
        run(["ip", "link", "delete", "dev", name], netns=netns, check=False)


def bridge_add(name: str, mtu: int | None = None) -> None:
    """A host bridge with no address and no IPv6 link-local (the host stays off tenant links)."""
    check_name(name)
    if not link_exists(name):
        run(["ip", "link", "add", name, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
    _host_side(name, mtu)


def _host_side(name: str, mtu: int | None) -> None:
    run(["ip", "link", "set", "dev", name, "addrgenmode", "none"], check=False)
    argv = ["ip", "link", "set", "dev", name]
    if mtu:
        argv += ["mtu", str(mtu)]
    run([*argv, "up"])


def set_master(name: str, bridge: str, netns: str | None = None) -> None:
    check_name(name)
    check_name(bridge)
    info = link_info(name, netns)
    if info is None or info.get("master") != bridge:
        run(["ip", "link", "set", "dev", name, "master", bridge], netns=netns)


def tap_add(name: str, bridge: str, mac: str | None = None, mtu: int | None = None) -> None:
    """A persistent tap (for QEMU's ``-netdev tap,ifname=...``) plugged into ``bridge``."""
    check_name(name)
    if not link_exists(name):
        run(["ip", "tuntap", "add", "dev", name, "mode", "tap"])
    if mac:
        run(["ip", "link", "set", "dev", name, "address", mac])
    set_master(name, bridge)
    _host_side(name, mtu)


def veth_add(host: str, peer: str, bridge: str | None, netns: str | None, mac: str | None = None,
             mtu: int | None = None) -> None:
    """A veth pair: ``host`` stays in the host (in ``bridge``), ``peer`` moves into ``netns``."""
    check_name(host)
    check_name(peer)
    if not link_exists(host):
        if netns is not None and link_exists(peer, netns):
            run(["ip", "link", "delete", "dev", peer], netns=netns, check=False)
        run(["ip", "link", "add", host, "type", "veth", "peer", "name", peer])
        if mac:
            run(["ip", "link", "set", "dev", peer, "address", mac])
        if netns is not None:
            run(["ip", "link", "set", "dev", peer, "netns", check_name(netns, "netns")])
    if bridge:
        set_master(host, bridge)
    _host_side(host, mtu)
    if mac:
        info = link_info(peer, netns)
        if info and info.get("address") != mac.lower():
            run(["ip", "link", "set", "dev", peer, "address", mac], netns=netns)
    argv = ["ip", "link", "set", "dev", peer]
    if mtu:
        argv += ["mtu", str(mtu)]
    run([*argv, "up"], netns=netns)


def vxlan_add(name: str, bridge: str, vni: int, local_ip: str, peers: list[str], dstport: int = 4789,
              underlay: str | None = None) -> None:
    """A VXLAN device in ``bridge`` flooding to ``peers`` (head-end replication)."""
    check_name(name)
    if not link_exists(name):
        argv = ["ip", "link", "add", name, "type", "vxlan", "id", str(vni), "local", local_ip,
                "dstport", str(dstport), "nolearning"]
        if underlay:
            argv += ["dev", underlay]
        run(argv)
    set_master(name, bridge)
    _host_side(name, None)
    current = {e.get("dst") for e in json.loads(run(["bridge", "-j", "fdb", "show", "dev", name]) or "[]")
               if e.get("mac") == "00:00:00:00:00:00"}
    for peer in set(peers) - current:
        run(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", name, "dst", peer])
    for peer in current - set(peers) - {None}:
        run(["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", name, "dst", peer], check=False)


def attach_uplink(iface: str, bridge: str) -> None:
    """Enslave a configured real interface to a kumo bridge (real deployments only).

    Refuses an interface carrying the host's default route: that is the host's uplink.
    """
    check_name(bridge)
    routes = json.loads(run(["ip", "-j", "route", "show", "default"]) or "[]")
    if any(r.get("dev") == iface for r in routes):
        raise PrivilegedError(f"refusing to bridge {iface}: it carries the host's default route")
    info = json.loads(run(["ip", "-j", "link", "show", "dev", iface]) or "[]")
    if info and info[0].get("master") != bridge:
        run(["ip", "link", "set", "dev", iface, "master", bridge])
    run(["ip", "link", "set", "dev", iface, "up"])


# -- addresses and routes (inside kumo namespaces) ------------------------------------------


def addresses(dev: str, netns: str) -> set[str]:
    check_name(dev)
    out = run(["ip", "-j", "addr", "show", "dev", dev], netns=netns)
    result = set()
    for entry in json.loads(out or "[]"):
        for a in entry.get("addr_info", []):
            if a.get("scope") != "link":
                result.add(f"{a['local']}/{a['prefixlen']}")
    return result


def set_addresses(dev: str, netns: str, wanted: set[str]) -> None:
    """Make ``dev``'s global addresses exactly ``wanted`` (CIDR strings)."""
    check_name(netns, "netns")
    have = addresses(dev, netns)
    for cidr in sorted(wanted - have):
        run(["ip", "addr", "replace", cidr, "dev", dev], netns=netns)
    for cidr in sorted(have - wanted):
        run(["ip", "addr", "del", cidr, "dev", dev], netns=netns, check=False)


def static_routes(netns: str) -> set[tuple[str, str]]:
    out = run(["ip", "-j", "route", "show", "proto", "static"], netns=check_name(netns, "netns"))
    return {(r["dst"] if r["dst"] != "default" else "0.0.0.0/0", r.get("gateway", ""))
            for r in json.loads(out or "[]")}


def set_static_routes(netns: str, wanted: set[tuple[str, str]]) -> None:
    """Make the namespace's ``proto static`` IPv4 routes exactly ``wanted`` ((dst, via) pairs)."""
    have = static_routes(netns)
    for dst, via in have - wanted:
        run(["ip", "route", "del", dst, "via", via, "proto", "static"], netns=netns, check=False)
    for dst, via in sorted(wanted - have):
        run(["ip", "route", "replace", dst, "via", via, "proto", "static"], netns=netns)


def conntrack_flush(netns: str, address: str) -> None:
    """Forget connections to/from ``address`` inside a kumo namespace (best effort)."""
    for flag in ("-d", "-s"):
        try:
            run(["conntrack", "-D", flag, address], netns=check_name(netns, "netns"), check=False)
        except CommandError:
            return  # conntrack not installed
