"""Node roles: what ``kumo serve controller|compute|network|storage`` runs.

- ``controller``: every registered service's API (identity, compute API + scheduler + metadata,
  image, network API, object-storage proxy, block storage / dashboard when present) plus the
  node registry at ``/nodes``; no data-plane agent.
- ``compute``: the compute agent and this host's network agent (bridges, VXLAN, security groups
  for local ports), talking to the controller over HTTP.
- ``network``: the network agent hosting DHCP, routers, floating IPs and the metadata proxy.
- ``storage``: an object-storage node (the devices the ring gives this node's name) and a volume
  agent (block storage back end; NBD exports for compute hosts when ``block_storage.nbd_port`` is set).

Any service can still be served alone (``kumo serve image``); the compute and network *APIs*
alone are ``compute-api`` and ``network-api`` (every service also answers to ``<name>-api``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kumo import __version__
from kumo.agents.running import running
from kumo.common.config import Settings
from kumo.common.service import ServiceSpec

log = logging.getLogger("kumo.runtime.roles")

NODE_ROLES = ("controller", "compute", "network", "storage")
AGENT_ROLES = ("compute", "network", "storage")
NODE_FILE = "node.json"  # written by `kumo join`: endpoints and where the registry is
KEY_FILE = "node-key"
NODE_CLOUD = "kumo-node"  # the cloud in clouds.yaml holding this node's service user


@dataclass
class Plan:
    services: list[ServiceSpec] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)  # compute | network | storage
    controller: bool = False


def resolve(names: list[str]) -> Plan:
    """Role and service names -> what to run in this process. KeyError for an unknown name."""
    from kumo.runtime.node import SERVICE as NODES
    from kumo.runtime.services import all_services

    known = {s.name: s for s in [*all_services(), NODES]}
    known |= {n.replace("_", "-"): s for n, s in list(known.items())}
    plan = Plan()
    for name in names:
        if name == "controller":
            plan.controller = True
            plan.services += [*all_services(), NODES]
        elif name in AGENT_ROLES:
            plan.agents.append(name)
        elif name.removesuffix("-api") in known:
            plan.services.append(known[name.removesuffix("-api")])
        else:
            raise KeyError(f"unknown role or service {name!r}; roles: {', '.join(NODE_ROLES)}; "
                           f"services: {', '.join(sorted({s.name for s in known.values()}))}")
    plan.services = list({s.name: s for s in plan.services}.values())
    plan.agents = list(dict.fromkeys(plan.agents))
    if plan.services and plan.agents:
        raise KeyError("run API services and node agents (compute, network, storage) as separate processes")
    return plan


def controller_environment() -> None:
    """A controller runs no data-plane agent in its API processes (inherited by isolated children)."""
    os.environ["KUMO_COMPUTE__RUN_AGENT"] = "false"
    os.environ["KUMO_NETWORK_AGENT__DRIVER"] = "none"
    os.environ.setdefault("KUMO_NODE__ROLES", '["controller"]')


def write_nodes_url(settings: Settings, url: str) -> None:
    (settings.data_dir / "nodes-url").write_text(url + "\n")


# -- joined nodes: the agents ------------------------------------------------------------------


@dataclass(frozen=True)
class NodeInfo:
    name: str
    key: str
    nodes_url: str
    endpoints: dict[str, str]
    config: dict[str, Any]

    @classmethod
    def load(cls, settings: Settings) -> NodeInfo:
        d = settings.data_dir
        try:
            doc = json.loads((d / NODE_FILE).read_text())
            key = (d / KEY_FILE).read_text().strip()
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"this node has not joined a cloud ({exc}); run `kumo join` first") from exc
        return cls(settings.node.name or doc["name"], key, doc["nodes_url"], doc.get("endpoints", {}), doc)


def _verify(settings: Settings) -> Any:
    return settings.node.ca_file or True


async def _heartbeats(settings: Settings, info: NodeInfo, client: httpx.AsyncClient) -> None:
    url = f"{info.nodes_url}/v1/nodes/{info.name}/heartbeat"
    while True:
        try:
            r = await client.post(url, json={"version": __version__}, headers={"X-Kumo-Node-Key": info.key})
            if r.status_code >= 400:
                log.warning("node heartbeat: the registry answered %s: %s", r.status_code, r.text[:200])
        except httpx.HTTPError as exc:
            log.warning("node heartbeat failed: %s", exc)
        await asyncio.sleep(settings.node.heartbeat_interval)


@contextlib.asynccontextmanager
async def _compute_agent(settings: Settings, info: NodeInfo, client: httpx.AsyncClient) -> AsyncIterator[None]:
    from kumo.agents.compute.agent import ComputeAgent
    from kumo.agents.compute.choose import build_driver
    from kumo.agents.compute.snapshot import host_credentials

    driver = build_driver(settings, cloud=NODE_CLOUD)
    agent = ComputeAgent(client, info.endpoints["compute"], settings.compute.agent_secret, driver,
                         host=settings.compute.host or info.name,
                         heartbeat_interval=settings.compute.heartbeat_interval,
                         credentials=host_credentials(settings.data_dir))
    async with running(agent, "compute-agent"):
        yield


@contextlib.asynccontextmanager
async def _network_agent(settings: Settings, info: NodeInfo, say: Callable[[str], None],
                         roles: list[str]) -> AsyncIterator[None]:
    from kumo.agents.network.runner import network_agent

    # A compute-only node wires its own ports; DHCP, routers and floating IPs live on network nodes.
    hosting = "network" in roles
    async with network_agent(settings, cloud=NODE_CLOUD, say=say, network_url=info.endpoints.get("network"),
                             host=info.name, teardown_on_stop=False, dhcp=hosting, l3=hosting) as agent:
        if agent is None:
            say("network agent: not running on this node")
        yield


@contextlib.asynccontextmanager
async def _storage_node(settings: Settings, info: NodeInfo) -> AsyncIterator[None]:
    """The object-storage node named like this node (with its replicator, auditor, updater and
    expirer), on ``host:port``; the ring comes with the join (or ``kumo object-store ring push``)."""
    import uvicorn

    from kumo.object_store.node_server import storage_node_app
    from kumo.object_store.sync_realms import load as load_sync_realms

    # container sync needs the realm key the proxy checks: only with one configured here
    sync = settings.object_store
    realms = None
    if sync.container_sync_realm_key or sync.container_sync_realms_file:
        proxy = info.endpoints.get("object-store", "")
        realms = load_sync_realms(settings, proxy.split("/v1/", 1)[0] + "/v1/" if "/v1/" in proxy else "")
    app = storage_node_app(settings.data_dir, info.name, settings.object_store, realms)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                                           lifespan="on"))
    task = asyncio.create_task(server.serve(), name="storage-node")
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 10)


def _volume_api(endpoints: dict[str, str]) -> str | None:
    """The block storage API root (``.../volume/v3``) from the catalog's project-scoped URL."""
    url = endpoints.get("block-storage") or endpoints.get("volumev3")
    if not url:
        return None
    url = url.rstrip("/")
    return url if url.endswith("/v3") else url.rsplit("/", 1)[0]


@contextlib.asynccontextmanager
async def _volume_agent(settings: Settings, info: NodeInfo, client: httpx.AsyncClient,
                        say: Callable[[str], None]) -> AsyncIterator[None]:
    """A storage node's volume agent: its back end under the data dir, NBD exports for the
    compute hosts when ``block_storage.nbd_port`` is set (docs/multinode.md)."""
    from kumo.agents.block_storage.agent import VolumeAgent, make_backend, make_exporter

    conf = settings.block_storage
    base = _volume_api(info.endpoints)
    if base is None or not conf.agent_secret:
        say("volume agent: not running (no block storage endpoint or agent secret; re-join the node)")
        yield
        return
    exporter = make_exporter(settings)
    agent = VolumeAgent(client, base, conf.agent_secret, make_backend(conf.backend, settings.data_dir, conf),
                        host=conf.host or info.name, zone=conf.zone, heartbeat_interval=conf.heartbeat_interval,
                        scratch=settings.data_dir / "volumes" / "tmp", exporter=exporter)
    say(f"volume agent: {agent.host}" + (f", NBD exports on {exporter.address}:{exporter.port}" if exporter else ""))
    async with running(agent, "volume-agent"):
        yield


async def run_agents(settings: Settings, roles: list[str], say: Callable[[str], None],
                     stop: asyncio.Event | None = None) -> None:
    """Run this node's agents until ``stop`` is set (or forever)."""
    info = NodeInfo.load(settings)
    stop = stop or asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=60.0, verify=_verify(settings)))
        if "compute" in roles:
            await stack.enter_async_context(_compute_agent(settings, info, client))
            say(f"compute agent: host {settings.compute.host or info.name}, driver {settings.compute.driver}")
        if "compute" in roles or "network" in roles:
            await stack.enter_async_context(_network_agent(settings, info, say, roles))
        if "storage" in roles:
            await stack.enter_async_context(_storage_node(settings, info))
            say(f"object-storage node {info.name} on {settings.host}:{settings.port}")
            await stack.enter_async_context(_volume_agent(settings, info, client, say))
        beat = asyncio.create_task(_heartbeats(settings, info, client), name="node-heartbeat")
        say(f"node {info.name} ({', '.join(roles)}) is running; controller {info.config.get('controller_url')}")
        try:
            await stop.wait()
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat


def serve_agents(settings: Settings, roles: list[str], say: Callable[[str], None]) -> int:
    import signal

    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if settings.node.ca_file:  # every HTTP client of this process (httpx honours SSL_CERT_FILE)
        os.environ["SSL_CERT_FILE"] = settings.node.ca_file

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_agents(settings, roles, say, stop)

    asyncio.run(main())
    return 0


def default_name() -> str:
    return socket.gethostname().split(".")[0].lower()


def local_address(controller_url: str) -> str:
    """This host's address on the route to the controller (what other nodes reach it at)."""
    host = httpx.URL(controller_url).host
    port = httpx.URL(controller_url).port or 80
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        return s.getsockname()[0]


def ensure_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def supervise_controller(settings: Settings, specs: list[ServiceSpec], console: Any, config_file: str | None) -> int:
    """``kumo serve controller --isolated``: one process per API (and one for the node registry),
    each restarted by the supervisor when it dies; identity keeps the main port."""
    from kumo.runtime import assemble, supervisor

    host = settings.base_url.rsplit(":", 1)[0]
    urls = {name: f"{host}:{port}" for name, port in supervisor.ports_for(settings, specs).items()}
    assemble.prepare(settings, specs, urls)
    write_nodes_url(settings, urls["nodes"] + "/nodes")
    console.print(f"node registry: {urls['nodes']}/nodes")
    return supervisor.supervise(settings, specs, console, config_file)
