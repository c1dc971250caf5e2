"""Build the block storage ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from kumo.block_storage.api import ROUTERS
from kumo.block_storage.api.common import VolumeMiddleware
from kumo.block_storage.errors import cinder
from kumo.block_storage.service import BlockStorageService
from kumo.common import shared_secret
from kumo.common.asgi import API, create_service_app
from kumo.common.compute_events import ComputeEvents, admin_password
from kumo.common.db import Database
from kumo.common.service import Runtime

MIGRATIONS = Path(__file__).parent / "migrations"


def agent_secret(runtime: Runtime) -> str:
    """The shared secret volume agents present on the internal agent API (generated once per data dir)."""
    settings = runtime.settings
    return shared_secret.load(settings.data_dir / "volume-agent.secret", settings.block_storage.agent_secret)


def build_service(runtime: Runtime) -> BlockStorageService:
    settings = runtime.settings
    db = Database(settings.database_url("block_storage"), echo=settings.database.echo)
    svc = BlockStorageService(db=db, settings=settings.block_storage, agent_secret=agent_secret(runtime))
    svc.extras["endpoints"] = runtime.extras.get("endpoints", [])
    svc.extras["control_host"] = settings.block_storage.host or socket.gethostname()
    return svc


def prepare(runtime: Runtime) -> None:
    settings = runtime.settings
    db = Database(settings.database_url("block_storage"), echo=settings.database.echo)
    try:
        db.migrate("block_storage", MIGRATIONS)
    finally:
        db.dispose()
    svc = build_service(runtime)
    try:
        from kumo.block_storage.service import types

        types.bootstrap(svc)
    finally:
        svc.db.dispose()


class _VolumeEvents(ComputeEvents):
    label = "block storage"
    api_version = "2.51"


def create_app(runtime: Runtime) -> Any:
    service = build_service(runtime)
    api = API()
    for router in ROUTERS:
        api.routes.extend(router.routes)
    # volume-extended events to compute (kumo.block_storage.service.compute_events)
    events = _VolumeEvents(runtime.identity_url, lambda: admin_password(runtime),
                           identity_transport=runtime.identity_transport)
    service.extras["compute_events"] = events

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.get_running_loop().create_task(events.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            service.db.dispose()

    inner = create_service_app(
        api=api,
        renderer=cinder,
        validator=runtime.token_validator(),
        lifespan=lifespan,
        auth_uri=runtime.identity_url,
        state={"volumes": service, "runtime": runtime},
    )
    outer = VolumeMiddleware(inner)
    outer.starlette = inner.starlette  # type: ignore[attr-defined]
    outer.service = service  # type: ignore[attr-defined]
    return outer
