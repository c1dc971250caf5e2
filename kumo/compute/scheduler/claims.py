"""Pick a host and record the claim atomically with the capacity check.

The compute node rows are locked (SELECT ... FOR UPDATE on PostgreSQL; on SQLite
the write transaction is already exclusive, BEGIN IMMEDIATE), so concurrent
creates never overcommit a host past its allocation ratios.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.compute.models import ComputeNode, ComputeService
from kumo.compute.scheduler.filters import FILTERS, Host, Request
from kumo.compute.scheduler.weighers import weigh


def _up(service: ComputeService | None, now: Any, down_time: int) -> bool:
    if service is None or service.forced_down or service.last_seen is None:
        return False
    return now - service.last_seen <= timedelta(seconds=down_time)


def schedule(session: Session, req: Request, settings: Any, now: Any) -> ComputeNode | None:
    """Choose a node and claim ``req`` on it, inside the caller's write transaction."""
    nodes = list(session.execute(select(ComputeNode).order_by(ComputeNode.id).with_for_update()).scalars())
    services = {
        s.host: s
        for s in session.execute(
            select(ComputeService).where(ComputeService.binary == "nova-compute")
        ).scalars()
    }
    ratios = {
        "cpu": settings.cpu_allocation_ratio,
        "ram": settings.ram_allocation_ratio,
        "disk": settings.disk_allocation_ratio,
    }
    hosts = [
        Host(n, services.get(n.host), _up(services.get(n.host), now, settings.service_down_time))
        for n in nodes
    ]
    for f in FILTERS:
        hosts = [h for h in hosts if f(req, h, ratios)]
    if not hosts:
        return None
    node = weigh(req, hosts, settings.weigher)[0].node
    claim(node, req.vcpus, req.ram_mb, req.disk_gb)
    return node


def claim(node: ComputeNode, vcpus: int, ram_mb: int, disk_gb: int) -> None:
    node.vcpus_used += vcpus
    node.memory_mb_used += ram_mb
    node.local_gb_used += disk_gb
    node.running_vms += 1


def release(session: Session, host: str | None, flavor: dict[str, Any] | None) -> None:
    if not host or not flavor:
        return
    node = session.execute(
        select(ComputeNode).where(ComputeNode.host == host).with_for_update()
    ).scalar_one_or_none()
    if node is None:
        return
    node.vcpus_used = max(0, node.vcpus_used - flavor.get("vcpus", 0))
    node.memory_mb_used = max(0, node.memory_mb_used - flavor.get("ram", 0))
    node.local_gb_used = max(0, node.local_gb_used - flavor.get("disk", 0) - flavor.get("ephemeral", 0))
    node.running_vms = max(0, node.running_vms - 1)


def fits(node: ComputeNode, settings: Any, vcpus: int, ram_mb: int, disk_gb: int) -> bool:
    return (
        node.vcpus_used + vcpus <= node.vcpus * settings.cpu_allocation_ratio
        and node.memory_mb_used + ram_mb <= node.memory_mb * settings.ram_allocation_ratio
        and node.local_gb_used + disk_gb <= node.local_gb * settings.disk_allocation_ratio
    )
