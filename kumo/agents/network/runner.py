"""Start the network agent: in-process (all-in-one) or as ``kumo agent network``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx

from kumo.agents.network import host
from kumo.agents.network.agent import NetworkAgent
from kumo.agents.network.client import NetworkApi, admin_auth
from kumo.agents.network.config import AgentSettings
from kumo.common import shared_secret
from kumo.common.config import Settings

log = logging.getLogger("kumo.agents.network")


def metadata_secret_file(data_dir: Path) -> Path:
    """The secret shared with the compute metadata API (``<data_dir>/metadata-secret``)."""
    return shared_secret.ensure(data_dir / "metadata-secret")


@contextlib.asynccontextmanager
async def network_agent(
    settings: Settings,
    *,
    identity_transport: httpx.AsyncBaseTransport | None = None,
    network_transport: httpx.AsyncBaseTransport | None = None,
    network_url: str | None = None,
    cloud: str = "kumo-admin",
    say: Callable[[str], None] = log.warning,
    **overrides: object,
) -> AsyncIterator[NetworkAgent | None]:
    """Run the agent for as long as the context is open; yields None when it cannot run."""
    config = AgentSettings.from_settings(settings, **overrides)
    try:
        auth = admin_auth(settings.data_dir, cloud)
    except (OSError, KeyError) as exc:
        say(f"network data plane not started: no {cloud} credentials in {settings.data_dir} ({exc})")
        yield None
        return
    lock = None
    if config.driver in ("auto", "linux") and host.why_not_linux() is None:
        lock = host.host_lock(config.lock_file)
        if lock is None:
            say("network data plane not started: another kumo network agent runs on this host")
            yield None
            return
    driver, why = host.make_driver(config, config.driver, metadata_secret_file(settings.data_dir))
    say(why)
    if driver is None:
        yield None
        return
    config.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    async with (httpx.AsyncClient(transport=identity_transport, timeout=60.0) as identity,
                httpx.AsyncClient(transport=network_transport, timeout=90.0) as network):
        api = NetworkApi(auth, identity=identity, network=network, network_url=network_url)
        agent = NetworkAgent(driver, api, config)
        task = asyncio.create_task(agent.run(), name="network-agent")
        try:
            yield agent
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            if config.teardown_on_stop:
                try:
                    await asyncio.to_thread(host.teardown, driver)
                except Exception:
                    log.exception("network agent: teardown failed")
            if lock is not None:
                lock.close()
