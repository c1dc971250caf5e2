"""The compute agent re-sends a real guest's console when it changed (a settled server too)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from kumo.agents.compute.agent import ComputeAgent
from kumo.agents.compute.driver import PowerState


class GrowingConsole:
    """Just enough driver: a running VM whose console gains a line when told to."""

    type = "QEMU"

    def __init__(self) -> None:
        self.lines = ["kumo-tiny: booting"]

    def observe(self, vm_id: str) -> PowerState:
        return PowerState.RUNNING

    def console_output(self, vm_id: str, length: int | None = None) -> str:
        return "\n".join(self.lines) + "\n"


SERVER: dict[str, Any] = {
    "id": "s1", "pending": None, "desired": "running", "power_state": 1,
    "spec": {"id": "s1", "name": "vm", "project_id": "p", "image": None,
             "flavor": {"vcpus": 1, "ram_mb": 128, "disk_gb": 1}},
}


def test_settled_server_console_is_reported_only_when_it_changes() -> None:
    posts: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(json.loads(request.content))
        return httpx.Response(204)

    async def scenario() -> None:
        driver = GrowingConsole()
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x") as client:
            agent = ComputeAgent(client, "http://x/compute/v2.1", "secret", driver, host="h")  # type: ignore[arg-type]
            await agent._reconcile(dict(SERVER))
            await agent._reconcile(dict(SERVER))  # nothing new on the console: nothing sent
            driver.lines.append("=== kumo-tiny ready ===")
            await agent._reconcile(dict(SERVER))

    asyncio.run(scenario())
    assert posts == [{"console": "kumo-tiny: booting\n"},
                     {"console": "kumo-tiny: booting\n=== kumo-tiny ready ===\n"}]
