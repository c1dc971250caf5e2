"""Host filters: each takes the request and a host and says whether the host can take it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kumo.compute.models import ComputeNode, ComputeService


@dataclass(frozen=True)
class Request:
    vcpus: int
    ram_mb: int
    disk_gb: int
    availability_zone: str | None = None
    image_properties: dict[str, Any] = field(default_factory=dict)
    group_policy: str | None = None
    group_hosts: tuple[str, ...] = ()  # hosts of the group's other members
    max_server_per_host: int | None = None
    force_host: str | None = None
    ignore_hosts: tuple[str, ...] = ()  # never these (a migration's source host)
    same_host: tuple[str, ...] = ()  # hint: one of these hosts (kumo.compute.scheduler.hints)
    different_host: tuple[str, ...] = ()  # hint: none of these hosts


@dataclass
class Host:
    node: ComputeNode
    service: ComputeService | None
    up: bool


def service_ok(req: Request, h: Host, _r: dict[str, float]) -> bool:
    return h.service is not None and not h.service.disabled and h.up


def resources(req: Request, h: Host, ratios: dict[str, float]) -> bool:
    n = h.node
    return (
        n.vcpus_used + req.vcpus <= n.vcpus * ratios["cpu"]
        and n.memory_mb_used + req.ram_mb <= n.memory_mb * ratios["ram"]
        and n.local_gb_used + req.disk_gb <= n.local_gb * ratios["disk"]
    )


def availability_zone(req: Request, h: Host, _r: dict[str, float]) -> bool:
    if not req.availability_zone:
        return True
    zone = h.service.zone if h.service else "nova"
    return zone == req.availability_zone


def image_properties(req: Request, h: Host, _r: dict[str, float]) -> bool:
    arch = req.image_properties.get("hw_architecture") or req.image_properties.get("architecture")
    if arch and arch not in ("x86_64", "i686", "x86"):
        return False
    htype = req.image_properties.get("img_hv_type") or req.image_properties.get("hypervisor_type")
    return not htype or htype.lower() in (h.node.hypervisor_type.lower(), "qemu", "kvm", "fake")


def group_filter(req: Request, h: Host, _r: dict[str, float]) -> bool:
    if req.group_policy == "affinity" and req.group_hosts:
        return h.node.host in req.group_hosts
    if req.group_policy == "anti-affinity":
        limit = req.max_server_per_host or 1
        return req.group_hosts.count(h.node.host) < limit
    return True


def forced_host(req: Request, h: Host, _r: dict[str, float]) -> bool:
    return (not req.force_host or h.node.host == req.force_host) and h.node.host not in req.ignore_hosts


def host_hints(req: Request, h: Host, _r: dict[str, float]) -> bool:
    """SameHostFilter and DifferentHostFilter."""
    if req.same_host and h.node.host not in req.same_host:
        return False
    return h.node.host not in req.different_host


FILTERS = [service_ok, forced_host, availability_zone, resources, image_properties, group_filter, host_hints]
