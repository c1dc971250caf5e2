"""What compute hosts report about themselves beyond inventory: their uptime."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kumo.compute.models import ComputeNode
from kumo.compute.service.core import ComputeService as Svc


def record_uptime(svc: Svc, host: str, uptime: Any) -> None:
    """The host's ``uptime(1)`` line from its agent (os-hypervisors uptime; ``uptime`` from 2.88)."""
    if not isinstance(uptime, str) or not uptime.strip():
        return
    with svc.db.session() as s:
        node = s.execute(select(ComputeNode).where(ComputeNode.host == host)).scalar_one_or_none()
        if node is not None:
            node.uptime = uptime[:255]
