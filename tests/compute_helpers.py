"""Helpers of the compute functional tests: a second compute agent in the test process, and
small waits on the compute API."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx

from kumo.agents.compute.agent import ComputeAgent
from kumo.agents.compute.fake import FakeDriver
from tests.support import KumoCloud


def hdr(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def until(what: str, fn: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def server(nova: httpx.Client, sid: str) -> dict:
    return nova.get(f"/servers/{sid}", headers=hdr("2.80")).json()["server"]


def settled(nova: httpx.Client, sid: str, status: str):  # type: ignore[no-untyped-def]
    """A check for ``until``: the server in ``status`` with no task running."""

    def check() -> dict | None:
        s = server(nova, sid)
        return s if s["status"] == status and s["OS-EXT-STS:task_state"] is None else None

    return check


class AgentThread:
    """Runs a ComputeAgent for ``host`` on its own event loop over real HTTP; the driver
    outlives restarts."""

    def __init__(self, cloud: KumoCloud, driver: FakeDriver, host: str) -> None:
        self.cloud, self.driver, self.host = cloud, driver, host
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.agent: ComputeAgent | None = None

    def start(self) -> None:
        ready = threading.Event()
        secret = (self.cloud.data_dir / "compute-agent.secret").read_text().strip()

        async def main() -> None:
            async with httpx.AsyncClient(timeout=60) as client:
                self.agent = ComputeAgent(client, self.cloud.url + "/compute/v2.1", secret, self.driver,
                                          host=self.host, heartbeat_interval=0.5)  # fmt: skip
                ready.set()
                await self.agent.run()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            try:
                self.loop.run_until_complete(main())
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        if self.thread is None or self.loop is None or self.agent is None:
            return
        self.loop.call_soon_threadsafe(self.agent.stop)
        self.thread.join(30)
        assert not self.thread.is_alive()
        self.thread = None
