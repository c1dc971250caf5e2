"""Build the compute ASGI app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from kumo.common import shared_secret
from kumo.common.asgi import API, create_service_app
from kumo.common.db import Database
from kumo.common.service import Runtime
from kumo.compute.api import ROUTERS
from kumo.compute.api.common import MicroversionMiddleware
from kumo.compute.errors import nova
from kumo.compute.service import ComputeService

MIGRATIONS = Path(__file__).parent / "migrations"


def agent_secret(runtime: Runtime) -> str:
    """The shared secret agents present on the internal agent API (generated once per data dir)."""
    settings = runtime.settings
    return shared_secret.load(settings.data_dir / "compute-agent.secret", settings.compute.agent_secret)


def build_service(runtime: Runtime) -> ComputeService:
    settings = runtime.settings
    db = Database(settings.database_url("compute"), echo=settings.database.echo)
    svc = ComputeService(
        db=db, settings=settings.compute, agent_secret=agent_secret(runtime), region=settings.identity.region
    )
    svc.extras["endpoints"] = runtime.extras.get("endpoints", [])
    from kumo.compute.service import quotas

    svc.extras["quota_limit"] = lambda project_id, resource: quotas.limit_for(svc, project_id, resource)
    return svc


def prepare(runtime: Runtime) -> None:
    settings = runtime.settings
    db = Database(settings.database_url("compute"), echo=settings.database.echo)
    try:
        db.migrate("compute", MIGRATIONS)
    finally:
        db.dispose()
    svc = build_service(runtime)
    try:
        from kumo.compute.service import flavors

        flavors.bootstrap(svc)
        from kumo.compute.service import agents

        agents.ensure_control_services(svc)
        agents.recover_interrupted_builds(svc)
        from kumo.compute.service import reimage

        reimage.recover_interrupted(svc)
        agents.finish_released_deletes(svc)
    finally:
        svc.db.dispose()


def create_app(runtime: Runtime) -> Any:
    service = build_service(runtime)
    from kumo.compute.vif import PortBinder

    service.extras["port_binder"] = PortBinder(runtime)  # binds ports with the service credentials
    api = API()
    for router in ROUTERS:
        api.routes.extend(router.routes)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.db.dispose()

    inner = create_service_app(
        api=api,
        renderer=nova,
        validator=runtime.token_validator(),
        lifespan=lifespan,
        request_id_header="x-compute-request-id",
        auth_uri=runtime.identity_url,
        state={"compute": service, "runtime": runtime},
    )
    outer = MicroversionMiddleware(inner)
    outer.starlette = inner.starlette  # type: ignore[attr-defined]
    outer.service = service  # type: ignore[attr-defined]
    return outer
