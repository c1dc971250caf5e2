"""Port binding with the cloud's service credentials, and whether a boot waits for its network.

Nova binds a server's ports to its compute host (``binding:host_id``) with its service user,
since Neutron lets only admins and services set a binding. The network service then gives the
port a ``binding:vif_type``: ``bridge`` where a live L2 agent wires ports on that host, else
``binding_failed`` (``unbound`` without a host). A bound port that is not ACTIVE yet will be
reported plugged by ``network-vif-plugged``: only then does a new guest wait for it (Nova's
libvirt driver asks for the events of the ports whose ``active`` is false).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from kumo.common.service import Runtime
from kumo.compute.metadata_net import NetworkFacts

log = logging.getLogger("kumo.compute.vif")
UNBOUND = ("", "unbound", "binding_failed")


def waits_for_event(port: dict[str, Any]) -> bool:
    """Whether ``port`` (the network API's admin view) will be reported by network-vif-plugged."""
    return port.get("binding:vif_type", "") not in UNBOUND and port.get("status") != "ACTIVE"


class PortBinder:
    """Binds ports with the service credentials (the cloud admin's, as the metadata API uses)."""

    def __init__(self, runtime: Runtime) -> None:
        self.login = NetworkFacts(runtime)
        self._lock: asyncio.Lock | None = None  # concurrent creates share one login

    async def _token(self, client: httpx.AsyncClient) -> tuple[str, str] | None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self.login._login(client)

    async def bind(self, port: dict[str, Any], host: str | None) -> dict[str, Any]:
        """``port`` bound to ``host`` as the network API shows it to a service (with its binding);
        the port unchanged when there are no service credentials or the network API refuses."""
        if "binding:vif_type" in port and (port.get("binding:host_id") or "") == (host or ""):
            return port  # the caller is an admin: the port is bound already and shows its binding
        try:
            async with httpx.AsyncClient(timeout=30.0) as client:
                login = await self._token(client)
                if login is None:
                    return port
                token, url = login
                r = await client.put(f"{url}/v2.0/ports/{port['id']}", headers={"X-Auth-Token": token},
                                     json={"port": {"binding:host_id": host or ""}})
                if r.status_code == 401:
                    self.login._token = None
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning("compute: binding port %s to %s failed: %s", port.get("id"), host, exc)
            return port
        if r.status_code != 200:
            log.warning("compute: binding port %s to %s: network answered %s", port.get("id"), host, r.status_code)
            return port
        return dict(r.json()["port"])
