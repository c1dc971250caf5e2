"""Weighers: higher is better. Spread (free RAM) by default, pack by config; soft group policies."""

from __future__ import annotations

from kumo.compute.scheduler.filters import Host, Request


def weigh(req: Request, hosts: list[Host], mode: str) -> list[Host]:
    def score(h: Host) -> tuple[float, float]:
        n = h.node
        free = float(n.memory_mb - n.memory_mb_used)  # Nova's RAM weigher: absolute free RAM
        ram = free if mode == "spread" else -free
        group = 0.0
        if req.group_policy == "soft-affinity":
            group = req.group_hosts.count(n.host)
        elif req.group_policy == "soft-anti-affinity":
            group = -req.group_hosts.count(n.host)
        return (group, ram)

    return sorted(hosts, key=score, reverse=True)
