"""Build the network ASGI app."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette

from kumo.common.asgi import API, create_service_app
from kumo.common.asgi.faults import neutron
from kumo.common.db import Database
from kumo.common.service import Runtime
from kumo.network import bootstrap
from kumo.network.api import ROUTERS
from kumo.network.service import NetworkService
from kumo.network.service.notify import NovaNotifier
from kumo.network.settings import load

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger("kumo.network")


def prepare(runtime: Runtime) -> None:
    settings = runtime.settings
    db = Database(settings.database_url("network"), echo=settings.database.echo)
    try:
        db.migrate("network", MIGRATIONS)
    finally:
        db.dispose()


def build_service(runtime: Runtime) -> NetworkService:
    settings = runtime.settings
    db = Database(settings.database_url("network"), echo=settings.database.echo)
    return NetworkService(db, load(settings))


def _admin_password(runtime: Runtime) -> str:
    given = (runtime.extras.get("bootstrap") or {}).get("admin_password") or runtime.settings.identity.admin_password
    if given:
        return str(given)
    path = Path(runtime.settings.data_dir) / "admin-password"  # written by the launcher on first start
    return path.read_text().strip() if path.is_file() else ""


async def _bootstrap(service: NetworkService, runtime: Runtime) -> None:
    password = _admin_password(runtime)
    if not password:
        log.warning("network: no admin password known; default topology not created")
        return
    async with httpx.AsyncClient(transport=runtime.identity_transport, timeout=30.0) as client:
        for attempt in range(60):
            try:
                await bootstrap.run(service, client, runtime.identity_url, password)
                return
            except (httpx.HTTPError, OSError) as exc:
                if attempt == 59:
                    log.warning("network: default topology not created: %s", exc)
                    return
                await anyio.sleep(min(0.2 * (attempt + 1), 2.0))


def create_app(runtime: Runtime) -> Any:
    service = build_service(runtime)
    api = API()
    for router in ROUTERS:
        api.routes.extend(router.routes)

    notifier = NovaNotifier(runtime.identity_url, lambda: _admin_password(runtime),
                            identity_transport=runtime.identity_transport)
    service.notifier = notifier

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(notifier.run)  # port events to compute (network-vif-plugged)
            if service.settings.bootstrap_topology:
                with anyio.move_on_after(10) as scope:  # normally done at once (identity in-process)
                    await _bootstrap(service, runtime)
                if scope.cancelled_caught:
                    tg.start_soon(_bootstrap, service, runtime)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                service.db.dispose()

    return create_service_app(
        api=api,
        renderer=neutron,
        validator=runtime.token_validator(),
        lifespan=lifespan,
        auth_uri=runtime.identity_url,
        state={"network": service, "runtime": runtime},
    )
