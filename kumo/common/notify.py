"""A generation counter that agents long-poll on (the agent APIs of compute and block storage).

In-process waiters wake at once when the generation moves; agents in other processes simply
time out and poll again, so a lost wake-up only delays convergence.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class Notifier:
    def __init__(self) -> None:
        self.generation = 0
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def bump(self) -> None:
        with self._lock:
            self.generation += 1
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # loop closed
                loop.call_soon_threadsafe(event.set)

    async def wait(self, seen: int, timeout: float) -> int:
        event = asyncio.Event()
        with self._lock:
            if self.generation != seen:
                return self.generation
            self._waiters.append((asyncio.get_running_loop(), event))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.generation
