"""The network agent: long-poll the desired state, reconcile it, heartbeat, report status.

One reconcile loop per kind of host object (bridges, DHCP namespaces, router namespaces,
the security-group ruleset); each runs a worker per object with retries and a periodic
full resync that also removes what the API no longer wants (kumo-named objects only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from kumo.agents.network import linkwatch, translate
from kumo.agents.network.client import NetworkApi
from kumo.agents.network.config import AgentSettings
from kumo.agents.network.driver import NetworkDriver
from kumo.common.reconcile import Reconciler

log = logging.getLogger("kumo.agents.network")

AGENT_TYPES = (
    ("Linux bridge agent", "kumo-linuxbridge-agent"),
    ("DHCP agent", "kumo-dhcp-agent"),
    ("L3 agent", "kumo-l3-agent"),
    ("Metadata agent", "kumo-metadata-agent"),
)
FIREWALL = "firewall"


class NetworkAgent:
    def __init__(self, driver: NetworkDriver, api: NetworkApi, config: AgentSettings) -> None:
        self.driver, self.api, self.config = driver, api, config
        self.host = config.host
        self.revision = -1
        self.doc: dict[str, Any] = {}
        self.desired = translate.Desired()
        self._status_wake = asyncio.Event()
        self._present: set[str] = set()  # VM port devices seen on this host
        self._sent: dict[str, str] = {}  # id -> status reported and not yet seen in a document
        self._tasks: list[asyncio.Task] = []
        self.ready = asyncio.Event()  # set after the first document was applied
        kw: dict[str, Any] = dict(on_success=self._converged, on_error=self._failed,
                                  resync_interval=config.resync_interval)
        self.networks: Reconciler = Reconciler("network", driver.ensure_network, driver.remove_network,
                                               driver.observe_networks, **kw)
        self.dhcp: Reconciler = Reconciler("dhcp", driver.ensure_dhcp, driver.remove_dhcp, driver.observe_dhcp, **kw)
        self.routers: Reconciler = Reconciler("router", driver.ensure_router, driver.remove_router,
                                              driver.observe_routers, **kw)
        self.firewall: Reconciler = Reconciler("firewall", driver.ensure_firewall,
                                               lambda _key: driver.remove_firewall(), **kw)
        self.reconcilers = (self.networks, self.dhcp, self.routers, self.firewall)

    # -- running -------------------------------------------------------------------------------

    async def run(self) -> None:
        self._tasks = [asyncio.create_task(self._heartbeats(), name="network-agent-heartbeat"),
                       asyncio.create_task(self._statuses(), name="network-agent-status")]
        if self.driver.name == "linux":  # taps appear in this network namespace: react at once
            self._tasks.append(asyncio.create_task(linkwatch.watch(self._status_wake.set),
                                                   name="network-agent-linkwatch"))
        try:
            await self._poll()
        finally:
            await self.stop()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for r in self.reconcilers:
            await r.close()

    async def _poll(self) -> None:
        delay = 1.0
        while True:
            try:
                doc = await self.api.state(self.host, self.revision, self.config.poll_wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("network agent: state poll failed (%s); retry in %.0fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            delay = 1.0
            await self.apply(doc)

    async def apply(self, doc: dict[str, Any]) -> None:
        """Reconcile towards ``doc`` (a full state document)."""
        self._present = present = await asyncio.to_thread(self.driver.observe_ports)
        self.doc, self.revision = doc, int(doc.get("revision", -1))
        self.desired = d = translate.desired(doc, self.host, present, self.driver.port_device)
        if not self.config.dhcp:  # DHCP lives on the network nodes
            d.dhcp, d.dhcp_ports = {}, {}
        if not self.config.l3:  # and so do routers and floating IPs
            d.routers, d.router_ports = {}, {}
        self.networks.update({self.driver.network_key(s): s for s in d.networks.values()})
        self.dhcp.update({self.driver.dhcp_key(s): s for s in d.dhcp.values()})
        self.routers.update({self.driver.router_key(s): s for s in d.routers.values()})
        self.firewall.update({FIREWALL: d.firewall})
        for status_id in list(self._sent):  # the document now shows what we reported
            if self._doc_status(status_id) == self._sent[status_id]:
                del self._sent[status_id]
        if not self.ready.is_set():
            self.ready.set()
            for r in self.reconcilers:  # resyncs (which remove strays) only once we know the state
                if r is not self.firewall:
                    self._tasks.append(asyncio.create_task(r.run(), name=f"network-agent-{r.name}-resync"))
        self._status_wake.set()

    async def wait_converged(self, timeout: float = 30.0) -> None:
        for r in self.reconcilers:
            await r.wait_idle(timeout)

    # -- reporting -----------------------------------------------------------------------------

    def _converged(self, _key: str, _spec: Any) -> None:
        self._status_wake.set()

    def _failed(self, key: str, _spec: Any, exc: Exception) -> None:
        log.warning("network agent: %s: %s", key, exc)

    async def _heartbeats(self) -> None:
        start = True
        while True:
            for agent_type, binary in AGENT_TYPES:
                if (agent_type == "DHCP agent" and not self.config.dhcp) or (
                        agent_type in ("L3 agent", "Metadata agent") and not self.config.l3):
                    continue
                try:
                    await self.api.report({
                        "agent_type": agent_type, "binary": binary, "host": self.host, "topic": "N/A",
                        "start_flag": start, "configurations": {
                            "bridge_mappings": self.config.bridge_mappings,
                            "interface_mappings": self.config.interface_mappings,
                            "tunnel_ip": self.config.tunnel_local_ip or None,
                            "driver": self.driver.name,
                        }})
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("network agent: heartbeat failed: %s", exc)
            start = False
            await asyncio.sleep(self.config.heartbeat_interval)

    def _doc_status(self, status_id: str) -> str | None:
        for kind in ("ports", "floating_ips"):
            for item in self.doc.get(kind) or ():
                if item["id"] == status_id:
                    return item.get("status")
        return None

    def wanted_statuses(self, present: set[str]) -> dict[tuple[str, str], str]:
        """(kind, id) -> the status this agent should report now."""
        d, wanted = self.desired, {}
        fw = self.firewall.applied().get(FIREWALL)
        filtered = {p.port_id for p in fw.ports} if fw is not None else set()
        dhcp_done = self.dhcp.applied()
        for pid, port in d.vm_ports.items():
            plugged = self.driver.port_device(pid) in present
            secured = port.get("port_security_enabled") is False or pid in filtered
            wanted[("port", pid)] = "ACTIVE" if plugged and secured and self._dhcp_ready(port, dhcp_done) else "DOWN"
        for pid, net_id in d.dhcp_ports.items():
            spec = d.dhcp[net_id]
            wanted[("port", pid)] = "ACTIVE" if dhcp_done.get(self.driver.dhcp_key(spec)) == spec else "DOWN"
        routers_done = self.routers.applied()
        for pid, rid in d.router_ports.items():
            spec = d.routers[rid]
            wanted[("port", pid)] = "ACTIVE" if routers_done.get(self.driver.router_key(spec)) == spec else "DOWN"
        for fip in (self.doc.get("floating_ips") or ()) if self.config.l3 else ():
            rid = fip.get("router_id")
            spec = d.routers.get(rid) if rid else None
            up = (spec is not None and fip.get("fixed_ip_address")
                  and routers_done.get(self.driver.router_key(spec)) == spec)
            wanted[("floatingip", fip["id"])] = "ACTIVE" if up else "DOWN"
        return wanted

    def _dhcp_ready(self, port: dict[str, Any], dhcp_done: dict[str, Any]) -> bool:
        """Whether the DHCP server this agent runs for the port's network already hands out its lease.

        Like Neutron's DHCP provisioning block: a VM port is not ACTIVE (so the guest is not let
        run) before its MAC/IP is in the live dnsmasq hosts file. Where DHCP runs on another node
        (``dhcp`` off here) the network is absent from the desired DHCP specs and only L2 counts.
        """
        spec = self.desired.dhcp.get(port.get("network_id") or "")
        if spec is None:
            return True
        want = {h for h in spec.hosts if h.mac_address == port.get("mac_address")}
        if not want:
            return True
        applied = dhcp_done.get(self.driver.dhcp_key(spec))
        return applied is not None and want <= set(applied.hosts)

    async def _statuses(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # taps come and go with the compute side
                await asyncio.wait_for(self._status_wake.wait(), 3.0)
            self._status_wake.clear()
            try:
                present = await asyncio.to_thread(self.driver.observe_ports)
                if present != self._present and self.ready.is_set():
                    await self.apply(self.doc)
                for (kind, item_id), status in self.wanted_statuses(present).items():
                    if self._sent.get(item_id, self._doc_status(item_id)) == status:
                        continue
                    if kind == "port":
                        await self.api.port_status(item_id, status, self.host)
                    else:
                        await self.api.floatingip_status(item_id, status)
                    self._sent[item_id] = status
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("network agent: status report failed: %s", exc)
                await asyncio.sleep(1.0)
                self._status_wake.set()
            await asyncio.sleep(0.1)  # coalesce bursts of convergence


@contextlib.asynccontextmanager
async def running(agent: NetworkAgent):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(agent.run(), name="network-agent")
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
