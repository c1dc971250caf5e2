"""Build the identity ASGI app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.applications import Starlette

from kumo.common.asgi import API, create_service_app
from kumo.common.asgi.faults import keystone
from kumo.common.db import Database
from kumo.common.service import Runtime
from kumo.identity.api import ROUTERS
from kumo.identity.bootstrap import Endpoint, bootstrap
from kumo.identity.service.core import Identity
from kumo.identity.service.tokens import Tokens
from kumo.identity.tokens import KeyRepository, TokenFormatter

MIGRATIONS = Path(__file__).parent / "migrations"


def key_repository(runtime: Runtime) -> KeyRepository:
    return KeyRepository(runtime.settings.data_dir / "fernet-keys", runtime.settings.identity.max_active_keys)


def prepare(runtime: Runtime) -> None:
    """Migrate, create keys, and bootstrap (idempotent)."""
    settings = runtime.settings
    db = Database(settings.database_url("identity"), echo=settings.database.echo)
    try:
        db.migrate("identity", MIGRATIONS)
        keys = key_repository(runtime)
        keys.setup()
        ident = Identity(db, settings.identity, TokenFormatter(keys))
        creds = runtime.extras.get("bootstrap", {})
        bootstrap(
            ident,
            admin_password=creds.get("admin_password") or settings.identity.admin_password,
            demo_password=creds.get("demo_password") or settings.identity.demo_password,
            region=settings.identity.region,
            endpoints=[Endpoint(*e) for e in runtime.extras.get("endpoints", [])],
        )
        Tokens(ident).prune()
    finally:
        db.dispose()


class _LocalValidator:
    """Identity validates tokens itself, without an HTTP round trip."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    async def validate(self, token: str) -> dict[str, Any] | None:
        from kumo.common.errors import NotFound

        try:
            return await anyio.to_thread.run_sync(lambda: self.tokens.validate(token, catalog=False))
        except NotFound:
            return None


def create_app(runtime: Runtime) -> Any:
    settings = runtime.settings
    db = Database(settings.database_url("identity"), echo=settings.database.echo)
    ident = Identity(db, settings.identity, TokenFormatter(key_repository(runtime)), runtime.invalidation)
    tokens = Tokens(ident)
    api = API()
    for router in ROUTERS:
        api.routes.extend(router.routes)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            db.dispose()

    return create_service_app(
        api=api,
        renderer=keystone,
        validator=_LocalValidator(tokens),
        lifespan=lifespan,
        auth_uri=runtime.identity_url,
        state={"identity": ident, "tokens": tokens, "runtime": runtime},
    )
