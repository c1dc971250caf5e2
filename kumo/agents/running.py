"""Running an agent's main loop as a task for the life of a context (all-in-one and joined nodes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol


class Agent(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


@contextlib.asynccontextmanager
async def running(agent: Agent, name: str) -> AsyncIterator[Any]:
    """Run ``agent.run()`` while the context is open; on exit ask it to stop, cancel, and wait."""
    task = asyncio.create_task(agent.run(), name=name)
    try:
        yield agent
    finally:
        agent.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
