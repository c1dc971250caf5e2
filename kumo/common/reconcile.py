"""The generic level-triggered reconcile loop (DESIGN.md §2, §8.7).

A :class:`Reconciler` takes snapshots of the desired state (``key -> spec``) and converges
the world with idempotent ``ensure(spec)`` / ``remove(key)`` callables, one worker per key:

- a key whose spec changed (or that is new) is ensured; a key that vanished is removed;
- ``TemporaryError(delay)`` retries after ``max(delay, backoff)``; other exceptions too
  (with backoff, reported), so no object is ever stuck;
- ``PermanentError`` is reported through ``on_error`` and not retried until the spec changes
  or the next full resync;
- every ``resync_interval`` seconds everything desired is ensured again and ``observe()``
  (what exists) is diffed against the desired keys, removing what nobody wants any more.

Sync callables run in threads (they shell out); at most ``concurrency`` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

S = TypeVar("S")
_REMOVE: Any = object()  # desired "spec" of a key that must go away


class TemporaryError(Exception):
    """Retry later (after at least ``delay`` seconds)."""

    def __init__(self, message: str = "", delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(Exception):
    """Retrying will not help; the message is shown to the user (resource goes to ERROR)."""


@dataclass
class _Slot:
    desired: Any = _REMOVE
    applied: Any = None  # the spec last converged; None: unknown
    failed: Any = None  # the spec that failed permanently
    attempts: int = 0
    force: bool = False  # ensure again even if applied (full resync)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class Reconciler(Generic[S]):
    def __init__(
        self,
        name: str,
        ensure: Callable[[S], None],
        remove: Callable[[str], None],
        observe: Callable[[], Iterable[str]] | None = None,
        *,
        on_success: Callable[[str, S | None], None] | None = None,
        on_error: Callable[[str, S | None, Exception], None] | None = None,
        resync_interval: float = 60.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        concurrency: int = 4,
    ) -> None:
        self.name = name
        self._ensure, self._remove, self._observe = ensure, remove, observe
        self._on_success, self._on_error = on_success, on_error
        self.resync_interval = resync_interval
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self._sem = asyncio.Semaphore(concurrency)
        self._slots: dict[str, _Slot] = {}
        self._desired: dict[str, S] = {}
        self._closed = False

    # -- input -----------------------------------------------------------------------------

    def update(self, desired: Mapping[str, S]) -> None:
        """A new snapshot of everything that should exist."""
        self._desired = dict(desired)
        for key, spec in self._desired.items():
            self._set(key, spec)
        for key in list(self._slots):
            if key not in self._desired:
                self._set(key, _REMOVE)

    def _set(self, key: str, spec: Any, force: bool = False) -> None:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        if force or slot.desired != spec:
            slot.desired = spec
            slot.force = slot.force or force
            slot.wake.set()  # a changed spec cuts a retry delay short
        if self._needs_work(slot) and (slot.task is None or slot.task.done()):
            slot.task = asyncio.get_running_loop().create_task(self._worker(key, slot), name=f"{self.name}:{key}")

    @staticmethod
    def _needs_work(slot: _Slot) -> bool:
        if slot.force:
            return True
        return slot.desired != slot.applied and not (slot.failed is not None and slot.desired == slot.failed)

    async def resync(self) -> None:
        """Ensure everything desired again and remove whatever exists but is not desired."""
        for key, spec in self._desired.items():
            self._set(key, spec, force=True)
        if self._observe is not None:
            existing = await asyncio.to_thread(lambda: set(self._observe()))  # type: ignore[misc]
            for key in existing - set(self._desired):
                self._set(key, _REMOVE, force=True)

    # -- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Periodic full resync until cancelled (the first one at once)."""
        while not self._closed:
            try:
                await self.resync()
            except Exception:
                log.exception("%s: resync failed", self.name)
            await asyncio.sleep(self.resync_interval)

    async def close(self) -> None:
        self._closed = True
        tasks = [s.task for s in self._slots.values() if s.task is not None and not s.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no key has work pending (tests)."""
        deadline = time.monotonic() + timeout
        while any(s.task is not None and not s.task.done() for s in self._slots.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: not idle after {timeout}s: {self.pending()}")
            await asyncio.sleep(0.02)

    def pending(self) -> list[str]:
        return sorted(k for k, s in self._slots.items() if s.task is not None and not s.task.done())

    def applied(self) -> dict[str, S]:
        return {k: s.applied for k, s in self._slots.items() if s.applied not in (None, _REMOVE)}

    def failed(self) -> dict[str, S]:
        return {k: s.failed for k, s in self._slots.items() if s.failed is not None}

    async def _worker(self, key: str, slot: _Slot) -> None:
        while True:
            slot.wake.clear()
            spec = slot.desired
            if not self._needs_work(slot):
                if spec is _REMOVE and self._slots.get(key) is slot:
                    del self._slots[key]
                return
            slot.force = False
            try:
                async with self._sem:
                    if spec is _REMOVE:
                        await asyncio.to_thread(self._remove, key)
                    else:
                        await asyncio.to_thread(self._ensure, spec)
            except asyncio.CancelledError:
                raise
            except PermanentError as exc:
                log.warning("%s %s: %s", self.name, key, exc)
                slot.failed, slot.attempts, slot.applied = spec, 0, None
                self._report_error(key, spec, exc)
                continue
            except Exception as exc:
                slot.applied = None  # the world is in an unknown state now
                slot.attempts += 1
                delay = min(self.backoff_max, self.backoff_base * 2 ** (slot.attempts - 1))
                if isinstance(exc, TemporaryError):
                    delay = max(delay if slot.attempts > 3 else 0, exc.delay)
                    log.info("%s %s: retry in %.1fs: %s", self.name, key, delay, exc)
                else:
                    log.exception("%s %s: failed, retry in %.1fs", self.name, key, delay)
                    self._report_error(key, spec, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(slot.wake.wait(), delay)
                slot.wake.set()
                continue
            slot.applied, slot.failed, slot.attempts = spec, None, 0
            if self._on_success is not None:
                try:
                    self._on_success(key, None if spec is _REMOVE else spec)
                except Exception:
                    log.exception("%s %s: on_success failed", self.name, key)

    def _report_error(self, key: str, spec: Any, exc: Exception) -> None:
        if self._on_error is not None:
            try:
                self._on_error(key, None if spec is _REMOVE else spec, exc)
            except Exception:
                log.exception("%s %s: on_error failed", self.name, key)
