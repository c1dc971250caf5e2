"""Telling compute about changes it must act on: ``POST /os-server-external-events``.

Neutron tells Nova about ports (``network-vif-plugged`` ...), Cinder about volumes grown under
a guest (``volume-extended``). A service queues events with :meth:`ComputeEvents.send` (never
waiting for compute); a background task logs in with the service's own credentials, finds
compute in the catalog and delivers them, retried briefly, logged when they cannot be.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("kumo.notify.compute")
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)  # then the events are dropped (and logged)


class ComputeEvents:
    """Sends external events to compute with the sending service's own credentials.

    ``send`` may be called from any thread (the service's operations run in a thread pool);
    the events are handed to :meth:`run`, a task in the app's event loop. ``label`` names the
    sender in logs.
    """

    label = "service"
    api_version = "2.1"  # volume-extended needs 2.51

    def __init__(self, identity_url: str, password: Any, *, identity_transport: Any = None,
                 user: str = "admin", project: str = "admin") -> None:
        self.identity_url = identity_url.rstrip("/")
        self.password = password  # a callable returning the password ("" when unknown)
        self.identity_transport = identity_transport
        self.user, self.project = user, project
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[dict[str, Any]] | None = None
        self._token: tuple[str, float, str] | None = None  # token, expiry (monotonic), compute URL
        self._lock = threading.Lock()
        self.sent = 0  # events compute accepted (diagnostics and tests)

    def send(self, events: list[dict[str, Any] | None]) -> None:
        wanted = [e for e in events if e]
        with self._lock:
            loop, queue = self._loop, self._queue
        if not wanted or loop is None or queue is None:
            return
        for event in wanted:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nothing to tell any more
                loop.call_soon_threadsafe(queue.put_nowait, event)

    async def run(self) -> None:
        """Deliver queued events until cancelled (all queued at once go in one request)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        with self._lock:
            self._loop, self._queue = asyncio.get_running_loop(), queue
        try:
            async with httpx.AsyncClient(timeout=30.0) as compute, \
                    httpx.AsyncClient(transport=self.identity_transport, timeout=30.0) as identity:
                with contextlib.suppress(Exception):  # log in ahead: the first boot need not wait for it
                    await asyncio.sleep(1.0)
                    await self._login(identity)
                while True:
                    batch = [await queue.get()]
                    while not queue.empty():
                        batch.append(queue.get_nowait())
                    await self._deliver(identity, compute, batch)
        finally:
            with self._lock:
                self._loop, self._queue = None, None

    async def _login(self, identity: httpx.AsyncClient) -> tuple[str, str] | None:
        if self._token and self._token[1] > time.monotonic():
            return self._token[0], self._token[2]
        password = self.password()
        if not password:
            return None
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": self.user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": self.project, "domain": {"id": "default"}}}}}
        r = await identity.post(self.identity_url + "/v3/auth/tokens", json=body)
        if r.status_code != 201:
            raise RuntimeError(f"identity refused the {self.label} service's login ({r.status_code})")
        url = next((ep["url"] for entry in r.json()["token"].get("catalog", []) if entry.get("type") == "compute"
                    for ep in entry.get("endpoints", []) if ep.get("interface") in ("internal", "public")), None)
        if not url:
            return None
        self._token = (r.headers["X-Subject-Token"], time.monotonic() + 600, url.rstrip("/"))
        return self._token[0], self._token[2]

    async def _deliver(self, identity: httpx.AsyncClient, compute: httpx.AsyncClient,
                       events: list[dict[str, Any]]) -> None:
        last = ""
        for delay in (0.0, *RETRY_DELAYS):
            if delay:
                await asyncio.sleep(delay)
            try:
                login = await self._login(identity)
                if login is None:
                    log.info("%s: no compute service or credentials; %d event(s) not sent", self.label, len(events))
                    return
                token, url = login
                r = await compute.post(f"{url}/os-server-external-events", json={"events": events},
                                       headers={"X-Auth-Token": token, "X-OpenStack-Nova-API-Version": self.api_version})
            except (httpx.HTTPError, RuntimeError, KeyError, ValueError) as exc:
                last = str(exc) or type(exc).__name__
                continue
            if r.status_code == 401:
                self._token, last = None, "401"
                continue
            if r.status_code >= 500:
                last = str(r.status_code)
                continue
            if r.status_code in (200, 207):
                self.sent += sum(1 for e in r.json().get("events", []) if e.get("code") == 200)
                log.info("%s: told compute %s", self.label, ", ".join(f"{e['name']} {e['tag']}" for e in events))
            else:  # 404: none of the servers exists any more (deleted meanwhile)
                log.info("%s: compute answered %s to %d event(s)", self.label, r.status_code, len(events))
            return
        log.warning("%s: could not tell compute about %d event(s): %s", self.label, len(events), last)


def admin_password(runtime: Any) -> str:
    """The admin password a service logs in with (given at bootstrap, in the settings, or the
    file the launcher writes on first start); "" when unknown: nothing is then sent."""
    given = (runtime.extras.get("bootstrap") or {}).get("admin_password") or runtime.settings.identity.admin_password
    if given:
        return str(given)
    path = Path(runtime.settings.data_dir) / "admin-password"
    return path.read_text().strip() if path.is_file() else ""
