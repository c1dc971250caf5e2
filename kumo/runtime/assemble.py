"""Assemble services into one ASGI app (all-in-one) or serve a chosen few."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from kumo.common.auth import Invalidation
from kumo.common.config import Settings
from kumo.common.service import Runtime, ServiceSpec
from kumo.runtime import credentials
from kumo.runtime.services import all_services, by_name


def make_runtime(
    settings: Settings, services: list[ServiceSpec], service_urls: dict[str, str] | None = None
) -> Runtime:
    """``service_urls`` maps a service to where clients reach it (default: this cloud's base URL)."""
    base = settings.base_url
    urls = service_urls or {}
    endpoints = [(e.type, e.name, urls.get(s.name, base) + e.path) for s in services for e in s.catalog]
    if os.environ.get("KUMO_RUNTIME_ENDPOINTS"):  # isolated children: every service's endpoint, not just ours
        endpoints = [tuple(e) for e in json.loads(os.environ["KUMO_RUNTIME_ENDPOINTS"])]
    return Runtime(
        settings=settings,
        base_url=base,
        identity_url=settings.identity_url or f"{urls.get('identity', base)}/identity",
        invalidation=Invalidation(),
        extras={"endpoints": endpoints},
    )


def prepare(
    settings: Settings, services: list[ServiceSpec], service_urls: dict[str, str] | None = None
) -> Runtime:
    """One-time start-up work: credentials, migrations, bootstrap, client config files."""
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    runtime = make_runtime(settings, services, service_urls)
    admin_pw = credentials.password(settings.data_dir, "admin", settings.identity.admin_password)
    demo_pw = credentials.password(settings.data_dir, "demo", settings.identity.demo_password)
    runtime.extras["bootstrap"] = {"admin_password": admin_pw, "demo_password": demo_pw}
    for service in services:
        if service.prepare is not None:
            service.prepare(runtime)
    if any(s.name == "identity" for s in services):
        credentials.write_client_config(
            settings.data_dir, runtime.identity_url + "/v3", admin_pw, demo_pw, settings.identity.region
        )
    return runtime


def build_app(settings: Settings, services: list[ServiceSpec]) -> Starlette:
    """One ASGI app serving ``services`` under their path prefixes."""
    runtime = make_runtime(settings, services)
    apps: list[tuple[ServiceSpec, Any]] = []
    for service in services:  # identity first: the others validate tokens through it
        app = service.create_app(runtime)
        if service.name == "identity":
            runtime.identity_transport = httpx.ASGITransport(
                app=app, raise_app_exceptions=False, root_path=service.prefix
            )
        apps.append((service, app))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for _service, app in apps:
                await stack.enter_async_context(app.starlette.router.lifespan_context(app.starlette))
            from kumo.runtime.agents import agent_contexts

            for agent in agent_contexts(runtime, apps):
                await stack.enter_async_context(agent)
            yield

    async def root(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "name": "kumo",
                "services": {s.name: str(request.base_url).rstrip("/") + s.prefix for s, _ in apps},
            }
        )

    routes: list[Any] = [Route("/", root)]
    for service, app in apps:
        for path in service.root_paths:
            routes.append(Route(path, endpoint=_AtRoot(app)))
        routes.append(Mount(service.prefix, app=app))
    return Starlette(routes=routes, lifespan=lifespan)


class _AtRoot:
    """An ASGI app that hands the request on with its path unchanged (root_path "")."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app({**scope, "root_path": ""}, receive, send)


def app_from_env() -> Starlette:
    """uvicorn factory for worker processes: settings from the environment the parent set."""
    settings = Settings.load(os.environ.get("KUMO_CONFIG_FILE") or None)
    names = [n for n in os.environ.get("KUMO_SERVICES", "").split(",") if n]
    return build_app(settings, by_name(names) if names else all_services())
