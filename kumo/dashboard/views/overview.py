"""Overview: the project's quota usage as gauges (drawn server-side as SVG: no chart JS to load)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from kumo.dashboard.client import ApiError, Cloud
from kumo.dashboard.web import Page, page


@dataclass(frozen=True, slots=True)
class Gauge:
    label: str
    used: float
    limit: float  # -1: unlimited
    unit: str = ""

    @property
    def fraction(self) -> float:
        if self.limit is None or self.limit < 0:
            return 0.0
        if self.limit == 0:
            return 1.0 if self.used else 0.0
        return min(1.0, max(0.0, self.used / self.limit))

    @property
    def dash(self) -> str:
        """stroke-dasharray for an SVG circle of radius 40 (the used arc)."""
        circumference = 2 * math.pi * 40
        return f"{circumference * self.fraction:.1f} {circumference:.1f}"

    @property
    def text(self) -> str:
        limit = "∞" if self.limit < 0 else _num(self.limit)
        return f"{_num(self.used)}{self.unit} of {limit}{self.unit}"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


async def _compute(cloud: Cloud) -> list[Gauge]:
    a = (await cloud.get("compute", "/limits")).get("limits", {}).get("absolute", {})
    return [
        Gauge("Instances", a.get("totalInstancesUsed", 0), a.get("maxTotalInstances", -1)),
        Gauge("vCPUs", a.get("totalCoresUsed", 0), a.get("maxTotalCores", -1)),
        Gauge("RAM", a.get("totalRAMUsed", 0) / 1024, _gib(a.get("maxTotalRAMSize", -1)), " GiB"),
    ]


def _gib(mib: float) -> float:
    return mib if mib < 0 else mib / 1024


async def _network(cloud: Cloud, project_id: str) -> list[Gauge]:
    q = (await cloud.get("network", f"/quotas/{project_id}/details")).get("quota", {})
    out = []
    for key, label in (("floatingip", "Floating IPs"), ("security_group", "Security groups"),
                       ("network", "Networks"), ("port", "Ports")):
        if key in q:
            out.append(Gauge(label, q[key].get("used", 0), q[key].get("limit", -1)))
    return out


async def _volume(cloud: Cloud) -> list[Gauge]:
    a = (await cloud.get("block-storage", "/limits")).get("limits", {}).get("absolute", {})
    return [
        Gauge("Volumes", a.get("totalVolumesUsed", 0), a.get("maxTotalVolumes", -1)),
        Gauge("Volume storage", a.get("totalGigabytesUsed", 0), a.get("maxTotalVolumeGigabytes", -1), " GiB"),
    ]


@page()
async def overview(p: Page) -> Response:
    assert p.session is not None
    if not p.session.project_id:
        return p.render("overview.html", sections=[], problems=["This user has no project: ask an administrator for a role assignment."])
    cloud = p.cloud
    tasks: list[tuple[str, Any]] = []
    if cloud.has("compute"):
        tasks.append(("Compute", _compute(cloud)))
    if cloud.has("network"):
        tasks.append(("Network", _network(cloud, p.session.project_id)))
    if cloud.has("block-storage", "volumev3", "volume"):
        tasks.append(("Volumes", _volume(cloud)))
    results = await asyncio.gather(*(t for _, t in tasks), return_exceptions=True)
    sections, problems = [], []
    for (name, _), result in zip(tasks, results, strict=True):
        if isinstance(result, ApiError):
            problems.append(f"{name}: {result.message}")
        elif isinstance(result, BaseException):
            raise result
        else:
            sections.append((name, result))
    return p.render("overview.html", sections=sections, problems=problems)


ROUTES = [Route("/", overview, methods=["GET"])]
