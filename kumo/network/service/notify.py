"""Telling compute about VM port changes: Neutron's nova notifier.

When a port bound to a server (``device_owner`` ``compute:*``, ``device_id`` the server id)
goes ACTIVE, compute is sent ``network-vif-plugged`` through ``POST
/os-server-external-events`` (``network-vif-unplugged`` when it goes DOWN again,
``network-vif-deleted`` when it is deleted), so a guest that waits paused for its network
can run. The port update never waits for compute: events are queued and sent by a
background task, retried briefly, and logged when they cannot be delivered.

Which ports get bound at all follows Neutron's ML2 rule: a port bound to a host gets a
``vif_type`` only where a live L2 agent that really wires ports runs on that host; elsewhere
the binding fails and no event will ever come (compute then does not wait).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.common.compute_events import ComputeEvents
from kumo.network import models as m
from kumo.network.service.core import now

log = logging.getLogger("kumo.network.notify")

L2_AGENT = "Linux bridge agent"


def is_vm_port(device_owner: str | None, device_id: str | None) -> bool:
    return bool(device_id) and str(device_owner or "").startswith("compute:")


def l2_agent_wires(s: Session, host: str, down_time: int) -> bool:
    """Whether a live L2 agent that wires ports (not the in-memory fake) runs on ``host``."""
    if not host:
        return False
    agent = s.scalar(select(m.Agent).where(m.Agent.agent_type == L2_AGENT, m.Agent.host == host))
    if agent is None or not agent.admin_state_up:
        return False
    if now() - agent.heartbeat_timestamp > timedelta(seconds=down_time):
        return False
    return (agent.configurations or {}).get("driver") not in ("fake", None)


def status_event(port_id: str, device_owner: str, device_id: str, old: str, new: str) -> dict[str, Any] | None:
    """The external event a status change means to compute (None when it means nothing)."""
    if not is_vm_port(device_owner, device_id) or old == new:
        return None
    if new == "ACTIVE":
        return {"name": "network-vif-plugged", "server_uuid": device_id, "tag": port_id, "status": "completed"}
    if new == "ERROR":
        return {"name": "network-vif-plugged", "server_uuid": device_id, "tag": port_id, "status": "failed"}
    if new == "DOWN" and old == "ACTIVE":
        return {"name": "network-vif-unplugged", "server_uuid": device_id, "tag": port_id, "status": "completed"}
    return None


def deleted_event(port_id: str, device_owner: str, device_id: str) -> dict[str, Any] | None:
    if not is_vm_port(device_owner, device_id):
        return None
    return {"name": "network-vif-deleted", "server_uuid": device_id, "tag": port_id, "status": "completed"}


class Notifier:
    """Does nothing: a network service with no compute to tell (tests, no credentials)."""

    def send(self, events: list[dict[str, Any] | None]) -> None:
        return None


class NovaNotifier(ComputeEvents, Notifier):
    """Sends the port events with the network service's own credentials
    (kumo.common.compute_events, shared with the block storage's ``volume-extended``)."""

    label = "network"
