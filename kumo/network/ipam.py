"""Address arithmetic: CIDR and pool validation, default gateways and pools, picking
free addresses, EUI-64. Pure functions (no database); the service keeps them honest
under concurrency with the (subnet_id, ip_address) primary key of IP allocations."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

from kumo.network.errors import bad, conflict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(value: Any, what: str = "ip_address") -> IPAddress:
    if not isinstance(value, str):
        raise bad(f"Invalid input for {what}. Reason: '{value}' is not a valid IP address.", "InvalidInput")
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        raise bad(f"Invalid input for {what}. Reason: '{value}' is not a valid IP address.", "InvalidInput") from None
    return ip


def parse_cidr(value: Any, what: str = "cidr", strict: bool = True) -> IPNetwork:
    if not isinstance(value, str) or "/" not in value:
        raise bad(f"Invalid input for {what}. Reason: '{value}' is not a valid IP subnet.", "InvalidInput")
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise bad(f"Invalid input for {what}. Reason: '{value}' is not a valid IP subnet.", "InvalidInput") from None
    if strict and ipaddress.ip_interface(value.strip()).ip != net.network_address:
        raise bad(
            f"Invalid input for {what}. Reason: '{value}' isn't a recommended CIDR, use '{net}' instead.",
            "InvalidInput",
        )
    return net


def default_gateway(net: IPNetwork) -> str | None:
    if net.version == 4 and net.prefixlen >= 31:
        return None
    if net.version == 6 and net.prefixlen >= 127:
        return None
    return str(net.network_address + 1)


def _first_last(net: IPNetwork) -> tuple[int, int]:
    """The usable range: IPv4 skips network and broadcast; IPv6 skips the router anycast."""
    first = int(net.network_address)
    last = int(net.broadcast_address)
    if net.version == 4:
        if net.prefixlen >= 31:
            return first, last
        return first + 1, last - 1
    if net.prefixlen >= 127:
        return first, last
    return first + 1, last


def _ip(version: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def default_pools(net: IPNetwork, gateway: str | None) -> list[dict[str, str]]:
    first, last = _first_last(net)
    ranges = [(first, last)]
    if gateway:
        g = int(ipaddress.ip_address(gateway))
        if ipaddress.ip_address(gateway) in net:
            ranges = _carve(ranges, g)
    return [{"start": _ip(net.version, a), "end": _ip(net.version, b)} for a, b in ranges if a <= b]


def _carve(ranges: list[tuple[int, int]], point: int) -> list[tuple[int, int]]:
    out = []
    for a, b in ranges:
        if a <= point <= b:
            if a <= point - 1:
                out.append((a, point - 1))
            if point + 1 <= b:
                out.append((point + 1, b))
        else:
            out.append((a, b))
    return out


def validate_pools(net: IPNetwork, pools: Any, gateway: str | None) -> list[dict[str, str]]:
    """Check requested pools: well formed, inside the cidr, not overlapping, gateway outside."""
    if not isinstance(pools, list):
        raise bad("Invalid input for allocation_pools. Reason: it is not a list.", "InvalidInput")
    spans: list[tuple[int, int]] = []
    out: list[dict[str, str]] = []
    for pool in pools:
        if not isinstance(pool, dict) or set(pool) - {"start", "end"} or "start" not in pool or "end" not in pool:
            raise bad(f"Invalid input for allocation_pools. Reason: '{pool}' is not a valid pool.", "InvalidInput")
        start = parse_ip(pool["start"], "allocation_pools")
        end = parse_ip(pool["end"], "allocation_pools")
        if start.version != net.version or end.version != net.version:
            raise bad(f"The allocation pool {pool['start']}-{pool['end']} is not valid.", "InvalidAllocationPool")
        if start > end:
            raise bad(f"The allocation pool {start}-{end} is not valid.", "InvalidAllocationPool")
        if start not in net or end not in net:
            raise bad(f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.",
                      "OutOfBoundsAllocationPool")
        if net.version == 4 and net.prefixlen < 31 and (
            start == net.network_address or end == net.broadcast_address
        ):
            raise bad(f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.",
                      "OutOfBoundsAllocationPool")
        span = (int(start), int(end))
        for other in spans:
            if span[0] <= other[1] and other[0] <= span[1]:
                raise conflict("OverlappingAllocationPools",
                               f"Found overlapping allocation pools: {_ip(net.version, other[0])}-"
                               f"{_ip(net.version, other[1])} and {start}-{end} for subnet {net}.")
        spans.append(span)
        out.append({"start": str(start), "end": str(end)})
    if gateway:
        g = int(ipaddress.ip_address(gateway))
        for a, b in spans:
            if a <= g <= b:
                raise conflict("GatewayConflictWithAllocationPools",
                               f"Gateway ip {gateway} conflicts with allocation pool "
                               f"{_ip(net.version, a)}-{_ip(net.version, b)}.")
    return out


def in_pools(ip: IPAddress, pools: Iterable[dict[str, str]]) -> bool:
    v = int(ip)
    return any(int(ipaddress.ip_address(p["start"])) <= v <= int(ipaddress.ip_address(p["end"])) for p in pools)


def pool_size(pools: Iterable[dict[str, str]]) -> int:
    return sum(int(ipaddress.ip_address(p["end"])) - int(ipaddress.ip_address(p["start"])) + 1 for p in pools)


def free_addresses(pools: Iterable[dict[str, str]], used: set[str], version: int) -> Iterator[str]:
    """Free addresses of the pools in order (lowest first), skipping ``used``."""
    used_ints = {int(ipaddress.ip_address(u)) for u in used}
    for pool in pools:
        a = int(ipaddress.ip_address(pool["start"]))
        b = int(ipaddress.ip_address(pool["end"]))
        v = a
        while v <= b:
            if v not in used_ints:
                yield _ip(version, v)
            v += 1


def eui64(net: IPNetwork, mac: str) -> str:
    """The SLAAC address of ``mac`` in a /64 (RFC 4291 modified EUI-64)."""
    parts = [int(x, 16) for x in mac.split(":")]
    parts[0] ^= 0x02
    iid = parts[:3] + [0xFF, 0xFE] + parts[3:]
    value = int(net.network_address) | int.from_bytes(bytes(iid), "big")
    return str(ipaddress.IPv6Address(value))


def overlaps(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and a.overlaps(b)


def normalize_mac(value: Any) -> str:
    if not isinstance(value, str):
        raise bad(f"Invalid input for mac_address. Reason: '{value}' is not a valid MAC address.", "InvalidInput")
    parts = value.replace("-", ":").split(":")
    try:
        if len(parts) != 6 or any(len(p) not in (1, 2) for p in parts):
            raise ValueError
        nums = [int(p, 16) for p in parts]
    except ValueError:
        raise bad(f"Invalid input for mac_address. Reason: '{value}' is not a valid MAC address.",
                  "InvalidInput") from None
    if nums == [0] * 6 or nums == [255] * 6 or nums[0] & 1:
        raise bad(f"Invalid input for mac_address. Reason: '{value}' is not a valid MAC address.", "InvalidInput")
    return ":".join(f"{n:02x}" for n in nums)
