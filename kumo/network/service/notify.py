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

import asyncio
import contextlib
import logging
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.network import models as m
from kumo.network.service.core import now

log = logging.getLogger("kumo.network.notify")

L2_AGENT = "Linux bridge agent"
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)  # then the events are dropped (and logged)


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


class NovaNotifier(Notifier):
    """Sends external events to compute with the network service's own credentials.

    ``send`` may be called from any thread (the service's operations run in a thread pool);
    the events are handed to :meth:`run`, a task in the app's event loop.
    """

    def __init__(self, identity_url: str, password: Any, *, identity_transport: Any = None,
                 user: str = "admin", project: str = "admin") -> None:
        self.identity_url = identity_url.rstrip("/")
        self.password = password  # a callable returning the password ("" when unknown)
        self.identity_transport = identity_transport
        self.user, self.project = user, project
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._token: tuple[str, float, str] | None = None  # token, expiry (monotonic), compute URL
        self._lock = threading.Lock()
        self.sent = 0  # events compute accepted (diagnostics and tests)

    def send(self, events: list[dict[str, Any] | None]) -> None:
        wanted = [e for e in events if e]
        with self._lock:
            loop, queue = self._loop, self._queue
        if not wanted or loop is None or queue is None:
            return
        for event in wanted:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nothing to tell any more
                loop.call_soon_threadsafe(queue.put_nowait, event)

    async def run(self) -> None:
        """Deliver queued events until cancelled (all queued at once go in one request)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        with self._lock:
            self._loop, self._queue = asyncio.get_running_loop(), queue
        try:
            async with httpx.AsyncClient(timeout=30.0) as compute, \
                    httpx.AsyncClient(transport=self.identity_transport, timeout=30.0) as identity:
                with contextlib.suppress(Exception):  # log in ahead: the first boot need not wait for it
                    await asyncio.sleep(1.0)
                    await self._login(identity)
                while True:
                    batch = [await queue.get()]
                    while not queue.empty():
                        batch.append(queue.get_nowait())
                    await self._deliver(identity, compute, batch)
        finally:
            with self._lock:
                self._loop, self._queue = None, None

    async def _login(self, identity: httpx.AsyncClient) -> tuple[str, str] | None:
        if self._token and self._token[1] > time.monotonic():
            return self._token[0], self._token[2]
        password = self.password()
        if not password:
            return None
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": self.user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": self.project, "domain": {"id": "default"}}}}}
        r = await identity.post(self.identity_url + "/v3/auth/tokens", json=body)
        if r.status_code != 201:
            raise RuntimeError(f"identity refused the network service's login ({r.status_code})")
        url = next((ep["url"] for entry in r.json()["token"].get("catalog", []) if entry.get("type") == "compute"
                    for ep in entry.get("endpoints", []) if ep.get("interface") in ("internal", "public")), None)
        if not url:
            return None
        self._token = (r.headers["X-Subject-Token"], time.monotonic() + 600, url.rstrip("/"))
        return self._token[0], self._token[2]

    async def _deliver(self, identity: httpx.AsyncClient, compute: httpx.AsyncClient,
                       events: list[dict[str, Any]]) -> None:
        last = ""
        for delay in (0.0, *RETRY_DELAYS):
            if delay:
                await asyncio.sleep(delay)
            try:
                login = await self._login(identity)
                if login is None:
                    log.info("network: no compute service or credentials; %d event(s) not sent", len(events))
                    return
                token, url = login
                r = await compute.post(f"{url}/os-server-external-events", json={"events": events},
                                       headers={"X-Auth-Token": token, "X-OpenStack-Nova-API-Version": "2.1"})
            except (httpx.HTTPError, RuntimeError, KeyError, ValueError) as exc:
                last = str(exc) or type(exc).__name__
                continue
            if r.status_code == 401:
                self._token, last = None, "401"
                continue
            if r.status_code >= 500:
                last = str(r.status_code)
                continue
            if r.status_code in (200, 207):
                self.sent += sum(1 for e in r.json().get("events", []) if e.get("code") == 200)
                log.info("network: told compute %s", ", ".join(f"{e['name']} {e['tag']}" for e in events))
            else:  # 404: none of the servers exists any more (deleted meanwhile)
                log.info("network: compute answered %s to %d event(s)", r.status_code, len(events))
            return
        log.warning("network: could not tell compute about %d port event(s): %s", len(events), last)
