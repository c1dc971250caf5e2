"""Build the dashboard ASGI app: pages, vendored static assets, the session table."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from kumo.common.db import Database
from kumo.common.service import Runtime
from kumo.dashboard.sessions import SessionStore
from kumo.dashboard.web import make_templates

MIGRATIONS = Path(__file__).parent / "migrations"
STATIC = Path(__file__).parent / "static"


def prepare(runtime: Runtime) -> None:
    settings = runtime.settings
    db = Database(settings.database_url("dashboard"), echo=settings.database.echo)
    try:
        db.migrate("dashboard", MIGRATIONS)
    finally:
        db.dispose()


class _CachedStatic(StaticFiles):
    """Vendored files carry their version in the name: let browsers keep them for a day."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=86400"
        return response


def routes() -> list[Any]:
    from kumo.dashboard.views import (
        auth,
        compute,
        identity,
        images,
        network,
        overview,
        storage,
        topology,
        volumes,
    )

    out: list[Any] = []
    for module in (auth, overview, compute, images, network, topology, storage, volumes, identity):
        out.extend(module.ROUTES)
    out.append(Mount("/static", app=_CachedStatic(directory=str(STATIC)), name="static"))
    return out


class _SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                for k, v in (
                    (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"content-security-policy",
                     b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
                ):
                    if k not in names:
                        headers.append((k, v))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(runtime: Runtime) -> Any:
    settings = runtime.settings
    db = Database(settings.database_url("dashboard"), echo=settings.database.echo)
    templates = make_templates()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(60.0, connect=10.0),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        ) as http:
            app.state.http = http
            try:
                yield
            finally:
                db.dispose()

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        html = templates.get_template("error.html").render(
            base=str(request.scope.get("root_path", "")).rstrip("/"), session=None, csrf="",
            title=f"Error {exc.status_code}", message=str(exc.detail),
        )
        return HTMLResponse(html, status_code=exc.status_code)

    app = Starlette(routes=routes(), lifespan=lifespan, exception_handlers={HTTPException: not_found})
    app.state.templates = templates
    app.state.store = SessionStore(db)
    app.state.settings = settings
    app.state.identity_url = runtime.identity_url
    outer = _SecurityHeaders(app)
    outer.starlette = app  # type: ignore[attr-defined]
    return outer
