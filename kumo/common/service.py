"""The contract between a service package and the composition root (kumo.runtime).

Every service package exports ``SERVICE``: its name, URL prefix, catalog entries
and a factory that builds its ASGI app from a :class:`Runtime`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from kumo.common.auth import Invalidation, RemoteTokenValidator
from kumo.common.config import Settings


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    type: str  # e.g. "compute"
    name: str  # e.g. "nova"
    # appended to the service's base URL, e.g. "/compute/v2.1"; may hold "$(project_id)s",
    # which identity fills in with the token's project (Keystone's catalog templating)
    path: str


@dataclass(slots=True)
class Runtime:
    """What the composition root hands a service: settings and ways to reach its peers."""

    settings: Settings
    base_url: str  # where clients reach this cloud, e.g. http://127.0.0.1:5100
    identity_url: str  # e.g. http://127.0.0.1:5100/identity
    # Set when identity runs in this process: validation then goes through ASGI, not a socket.
    identity_transport: httpx.AsyncBaseTransport | None = None
    invalidation: Invalidation | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def token_validator(self) -> RemoteTokenValidator:
        client = httpx.AsyncClient(transport=self.identity_transport, timeout=30.0)
        return RemoteTokenValidator(
            client,
            self.identity_url,
            cache_seconds=self.settings.auth.token_cache_seconds,
            poll_seconds=self.settings.auth.revocation_poll_seconds,
            invalidation=self.invalidation,
        )


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    prefix: str  # mount point in the all-in-one app, e.g. "/identity"
    catalog: tuple[CatalogEntry, ...]
    create_app: Callable[[Runtime], Any]
    # One-time work before serving (migrations, bootstrap); runs once per start,
    # in the launcher process, before any worker process is started.
    prepare: Callable[[Runtime], None] | None = None
    # Paths at the host root that also belong to this service (Swift's "/info"):
    # the all-in-one app hands them to the service app with the path unchanged.
    root_paths: tuple[str, ...] = ()
