"""Data-plane agents started in-process by the all-in-one app (additive: one function per agent)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from kumo.agents.running import running
from kumo.common.service import Runtime, ServiceSpec


@contextlib.asynccontextmanager
async def compute_agent(runtime: Runtime, service: ServiceSpec, app: Any) -> AsyncIterator[None]:
    """The compute agent for this host, talking to the in-process compute API through ASGI."""
    settings = runtime.settings
    if not settings.compute.run_agent or settings.workers > 1:
        yield
        return
    from kumo.agents.compute.agent import ComputeAgent
    from kumo.agents.compute.choose import build_driver
    from kumo.agents.compute.snapshot import host_credentials
    from kumo.compute.app import agent_secret

    driver = build_driver(settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path=service.prefix)
    async with httpx.AsyncClient(transport=transport, base_url=runtime.base_url, timeout=60.0) as client:
        agent = ComputeAgent(
            client,
            runtime.base_url + service.prefix + "/v2.1",
            agent_secret(runtime),
            driver,
            host=settings.compute.host,
            heartbeat_interval=settings.compute.heartbeat_interval,
            credentials=host_credentials(settings.data_dir),
        )
        # the compute API's console proxy reaches this host's VM consoles in-process (kumo.compute.api.consoles)
        resolvers = runtime.extras.setdefault("console_resolvers", {})
        if hasattr(driver, "console_socket"):
            resolvers[agent.host] = driver.console_socket
        spice = runtime.extras.setdefault("spice_resolvers", {})  # spice-direct consoles (2.99)
        if hasattr(driver, "spice_address") and getattr(driver, "spice_consoles", True):
            spice[agent.host] = driver.spice_address
        try:
            async with running(agent, "compute-agent"), _extra_fake_hosts(runtime, client, agent):
                yield
        finally:
            resolvers.pop(agent.host, None)
            spice.pop(agent.host, None)


@contextlib.asynccontextmanager
async def _extra_fake_hosts(runtime: Runtime, client: httpx.AsyncClient, first: Any) -> AsyncIterator[None]:
    """``compute.fake_hosts`` > 1 (fake driver only): more compute hosts in this process, named
    ``<host>-2``, ``<host>-3``..., each its own agent and FakeDriver (own data dir under compute/)."""
    settings = runtime.settings
    count = settings.compute.fake_hosts
    if count <= 1 or settings.compute.driver != "fake":
        yield
        return
    from kumo.agents.compute.agent import ComputeAgent
    from kumo.agents.compute.fake import FakeDriver

    resolvers = runtime.extras.setdefault("console_resolvers", {})
    names = [f"{first.host}-{i}" for i in range(2, count + 1)]
    async with contextlib.AsyncExitStack() as stack:
        for name in names:
            driver = FakeDriver(settings.data_dir / "compute" / "hosts" / name)
            agent = ComputeAgent(client, first.base.removesuffix("/kumo-agent"), first.headers["X-Kumo-Agent-Secret"],
                                 driver, host=name, heartbeat_interval=settings.compute.heartbeat_interval,
                                 credentials=first.credentials)  # fmt: skip
            resolvers[name] = driver.console_socket
            stack.callback(resolvers.pop, name, None)
            spice = runtime.extras.setdefault("spice_resolvers", {})
            spice[name] = driver.spice_address
            stack.callback(spice.pop, name, None)
            await stack.enter_async_context(running(agent, f"compute-agent-{name}"))
        yield


@contextlib.asynccontextmanager
async def network_agent(runtime: Runtime, service: ServiceSpec, app: Any) -> AsyncIterator[None]:
    """The network data-plane agent (linux driver when root and the tools are there)."""
    if runtime.settings.workers > 1:
        yield
        return
    from kumo.agents.network.runner import network_agent as run

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path=service.prefix)
    async with run(runtime.settings, identity_transport=runtime.identity_transport, network_transport=transport,
                   network_url=runtime.base_url + service.prefix):
        yield


@contextlib.asynccontextmanager
async def block_storage_agent(runtime: Runtime, service: ServiceSpec, app: Any) -> AsyncIterator[None]:
    """The volume agent for this host (file back end by default), through the in-process API."""
    settings = runtime.settings
    conf = settings.block_storage
    if not conf.run_agent or settings.workers > 1:
        yield
        return
    from kumo.agents.block_storage.agent import VolumeAgent, make_backend, make_exporter
    from kumo.block_storage.app import agent_secret

    backend = make_backend(conf.backend, settings.data_dir, conf)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path=service.prefix)
    async with httpx.AsyncClient(transport=transport, base_url=runtime.base_url, timeout=60.0) as client:
        agent = VolumeAgent(
            client,
            runtime.base_url + service.prefix + "/v3",
            agent_secret(runtime),
            backend,
            host=conf.host,
            zone=conf.zone,
            heartbeat_interval=conf.heartbeat_interval,
            scratch=settings.data_dir / "volumes" / "tmp",
            exporter=make_exporter(settings),
        )
        async with running(agent, "volume-agent"):
            yield


AGENTS = {"compute": compute_agent, "network": network_agent, "block_storage": block_storage_agent}


def agent_contexts(runtime: Runtime, apps: list[tuple[ServiceSpec, Any]]) -> list[Any]:
    """Async context managers running the agents of the services in ``apps``."""
    return [AGENTS[spec.name](runtime, spec, app) for spec, app in apps if spec.name in AGENTS]
