"""Run an assembled app under uvicorn, one process or several workers."""

from __future__ import annotations

import os
from collections.abc import Callable

import uvicorn

from kumo.common.config import Settings
from kumo.common.service import ServiceSpec
from kumo.runtime.assemble import build_app


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
        await super().startup(sockets)
        if self._on_ready is not None and not self.should_exit:
            self._on_ready()


def serve(
    settings: Settings,
    services: list[ServiceSpec],
    on_ready: Callable[[], None] | None = None,
    config_file: str | None = None,
) -> None:
    log_level = settings.log_level.lower()
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level,
        "access_log": log_level == "debug",
        "lifespan": "on",
        "timeout_graceful_shutdown": 10,
        # Keep idle client connections longer than clients do (uvicorn's 5 s default races with
        # clients reusing a pooled connection just as the server closes it: "connection reset").
        "timeout_keep_alive": 75,
    }
    if settings.workers <= 1:
        app = build_app(settings, services)
        _Server(uvicorn.Config(app, **common), on_ready).run()
        return
    # Several workers: each process builds the app from the environment set here.
    os.environ["KUMO_SERVICES"] = ",".join(s.name for s in services)
    os.environ["KUMO_DATA_DIR"] = str(settings.data_dir)
    os.environ["KUMO_HOST"] = settings.host
    os.environ["KUMO_PORT"] = str(settings.port)
    if config_file:
        os.environ["KUMO_CONFIG_FILE"] = config_file
    if on_ready is not None:
        on_ready()
    uvicorn.run("kumo.runtime.assemble:app_from_env", factory=True, workers=settings.workers, **common)
