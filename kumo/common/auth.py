"""Token validation for services other than identity.

A service validates a user's token by asking the identity API
(``GET /v3/auth/tokens`` with the token as both ``X-Auth-Token`` and
``X-Subject-Token``, which Keystone's policy allows for one's own token) and
caches the answer. The cache honours revocation:

* in one process (all-in-one), identity bumps a shared :class:`Invalidation`
  counter on every change that can invalidate tokens, and every cached answer
  older than the newest bump is asked again, so a revoked token is refused by
  every service at once;
* across processes, where there is no shared counter, an answer is trusted for
  ``revocation_poll_seconds`` at most.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import httpx

from kumo.common.errors import ServiceUnavailable


class TokenValidator(Protocol):
    async def validate(self, token: str) -> dict[str, Any] | None:
        """The token body (``{"token": {...}}``) if the token is valid, else None."""


class Invalidation:
    """A generation counter shared in-process between identity and its consumers."""

    __slots__ = ("generation",)

    def __init__(self) -> None:
        self.generation = 0

    def bump(self) -> None:
        self.generation += 1


class RemoteTokenValidator:
    def __init__(
        self,
        client: httpx.AsyncClient,
        identity_url: str,
        *,
        cache_seconds: float = 300.0,
        poll_seconds: float = 2.0,
        invalidation: Invalidation | None = None,
        max_entries: int = 10000,
    ) -> None:
        self.client = client
        self.url = identity_url.rstrip("/") + "/v3/auth/tokens"
        self.invalidation = invalidation
        # Without a shared signal, a cached answer may hide a revocation only briefly.
        self.ttl = cache_seconds if invalidation is not None else min(cache_seconds, poll_seconds)
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, int, dict[str, Any] | None]] = {}
        self._inflight: dict[str, asyncio.Future[dict[str, Any] | None]] = {}

    def _generation(self) -> int:
        return self.invalidation.generation if self.invalidation is not None else 0

    async def validate(self, token: str) -> dict[str, Any] | None:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now and hit[1] == self._generation():
            return hit[2]
        pending = self._inflight.get(token)
        if pending is not None:
            return await pending
        fut: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._inflight[token] = fut
        try:
            generation = self._generation()
            body = await self._ask(token)
            expires = now + self.ttl
            if body is not None:
                expires = min(expires, now + _seconds_left(body))
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[token] = (expires, generation, body)
            fut.set_result(body)
            return body
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved
            raise
        finally:
            del self._inflight[token]

    async def _ask(self, token: str) -> dict[str, Any] | None:
        headers = {"X-Auth-Token": token, "X-Subject-Token": token}
        try:
            resp = await self.client.get(self.url, params={"nocatalog": "1"}, headers=headers)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"The identity service could not be reached: {exc}") from exc
        if resp.status_code == 200:
            return resp.json()
        if resp.status_code in (401, 403, 404):
            return None
        raise ServiceUnavailable(f"The identity service answered {resp.status_code} while validating a token.")


def _seconds_left(body: dict[str, Any]) -> float:
    from datetime import UTC, datetime

    expires_at = (body.get("token") or {}).get("expires_at")
    if not expires_at:
        return 0.0
    try:
        when = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
