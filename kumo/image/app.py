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
from kumo.image.http_store import HttpStore
from kumo.image.service import ImageService
from kumo.image.service.cache import ImageCache
from kumo.image.service.imports import recover_interrupted
from kumo.image.service.web import check_uri
from kumo.image.store import STORE_KINDS, FileStore, Store, make_store
from kumo.image.swift_store import Credentials, SwiftStore

MIGRATIONS = Path(__file__).parent / "migrations"


def prepare(runtime: Runtime) -> None:
    settings = runtime.settings
    db = Database(settings.database_url("image"), echo=settings.database.echo)
    try:
        db.migrate("image", MIGRATIONS)
        recover_interrupted(db)
    finally:
        db.dispose()
    store_ids(runtime)  # a bad store configuration fails at start
    make_store("file", settings.data_dir)


def store_ids(runtime: Runtime) -> list[str]:
    """The enabled stores: configured, or "file" plus "swift" when this cloud has object storage."""
    st = runtime.settings.image
    ids = list(st.enabled_stores)
    if not ids:
        ids = ["file"]
        if any(e[0] == "object-store" for e in runtime.extras.get("endpoints", [])):
            ids.append("swift")
        ids.append("web")
    for sid in ids:
        if sid not in STORE_KINDS:
            raise ValueError(f"unknown image store {sid!r}: expected one of {', '.join(STORE_KINDS)}")
    if st.store not in ids or st.store == "web":
        raise ValueError(
            f"the default image store {st.store!r} is not an enabled writable store ({', '.join(ids)})"
        )
    return ids


def _swift_password(runtime: Runtime) -> str:
    st = runtime.settings.image
    if st.swift_password:
        return st.swift_password
    path = runtime.settings.data_dir / f"{st.swift_user}-password"  # the bootstrap password file
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def build_stores(runtime: Runtime) -> dict[str, Store]:
    settings = runtime.settings
    st = settings.image
    stores: dict[str, Store] = {}
    for sid in store_ids(runtime):
        if sid == "file":
            stores[sid] = make_store("file", settings.data_dir)
        elif sid == "web":
            stores[sid] = HttpStore(st, check_uri)
        else:
            creds = Credentials(
                auth_url=runtime.identity_url,
                user=st.swift_user,
                password=lambda: _swift_password(runtime),
                project=st.swift_project,
            )
            stores[sid] = SwiftStore(
                creds, store_id=sid, container=st.swift_container, segment_size=st.swift_segment_size
            )
    return stores


def build_service(runtime: Runtime) -> ImageService:
    settings = runtime.settings
    db = Database(settings.database_url("image"), echo=settings.database.echo)
    staging = FileStore(settings.data_dir / "images" / "staging", store_id="staging")
    return ImageService(
        db=db,
        stores_by_id=build_stores(runtime),
        default_store=settings.image.store,
        staging=staging,
        settings=settings.image,
        identity_url=runtime.identity_url,
        cache=ImageCache(settings.data_dir / "images" / "cache") if settings.image.cache_enabled else None,
    )


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
