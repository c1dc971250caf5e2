"""Build the image ASGI app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from kumo.common.asgi import API, create_service_app
from kumo.common.db import Database
from kumo.common.service import Runtime
from kumo.image.api import ROUTERS
from kumo.image.errors import glance
from kumo.image.service import ImageService
from kumo.image.store import FileStore, make_store

MIGRATIONS = Path(__file__).parent / "migrations"


def prepare(runtime: Runtime) -> None:
    settings = runtime.settings
    db = Database(settings.database_url("image"), echo=settings.database.echo)
    try:
        db.migrate("image", MIGRATIONS)
    finally:
        db.dispose()
    make_store(settings.image.store, settings.data_dir)


def build_service(runtime: Runtime) -> ImageService:
    settings = runtime.settings
    db = Database(settings.database_url("image"), echo=settings.database.echo)
    store = make_store(settings.image.store, settings.data_dir)
    staging = FileStore(settings.data_dir / "images" / "staging", store_id="staging")
    return ImageService(db=db, store=store, staging=staging, settings=settings.image)


def create_app(runtime: Runtime) -> Any:
    service = build_service(runtime)
    api = API()
    for router in ROUTERS:
        api.routes.extend(router.routes)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.db.dispose()

    return create_service_app(
        api=api,
        renderer=glance,
        validator=runtime.token_validator(),
        lifespan=lifespan,
        auth_uri=runtime.identity_url,
        state={"images": service, "runtime": runtime},
    )
