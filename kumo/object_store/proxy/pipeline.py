"""The middleware pipeline, outermost first (Swift's proxy-server pipeline order)."""

from __future__ import annotations

from typing import Any

from kumo.object_store import constraints as C
from kumo.object_store.constraints import swift_info
from kumo.object_store.proxy import bulk, symlink, tempurl, versioning
from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.container_sync import container_sync_middleware
from kumo.object_store.proxy.container_sync import info as container_sync_info
from kumo.object_store.proxy.copy import copy_middleware
from kumo.object_store.proxy.core import Proxy
from kumo.object_store.proxy.dlo import dlo_middleware
from kumo.object_store.proxy.formpost import formpost_middleware
from kumo.object_store.proxy.keystone import keystone_auth
from kumo.object_store.proxy.quotas import account_quotas, container_quotas
from kumo.object_store.proxy.slo import slo_middleware
from kumo.object_store.proxy.staticweb import staticweb_middleware
from kumo.object_store.proxy.symlink import symlink_middleware
from kumo.object_store.proxy.types import Handler
from kumo.object_store.proxy.versioning import versioning_middleware
from kumo.object_store.sync_realms import SyncRealms


def build_pipeline(backend: Backend, realms: SyncRealms | None = None) -> tuple[Handler, dict[str, Any]]:
    proxy = Proxy(backend)
    realms = realms if realms is not None else SyncRealms()
    info: dict[str, Any] = {"swift": swift_info(), "crossdomain": {}}
    # (name advertised in /info or None, middleware, its /info section)
    stages: list[tuple[str | None, Any, dict[str, Any]]] = [
        ("bulk_delete", lambda app: app, bulk.INFO_DELETE),
        ("bulk_upload", bulk.bulk_middleware, bulk.INFO_UPLOAD),
        ("tempurl", tempurl.tempurl_middleware(backend), tempurl.INFO),
        ("formpost", formpost_middleware(backend), {}),
        ("container_sync", container_sync_middleware(backend, realms), container_sync_info(realms)),
        (None, keystone_auth, {}),
        ("staticweb", staticweb_middleware(backend), {}),
        ("copy", copy_middleware, {}),
        ("container_quotas", container_quotas(backend), {}),
        ("account_quotas", account_quotas(backend), {}),
        (
            "slo",
            slo_middleware,
            {
                "max_manifest_segments": C.MAX_MANIFEST_SEGMENTS,
                "max_manifest_size": C.MAX_MANIFEST_SIZE,
                "min_segment_size": C.MIN_SEGMENT_SIZE,
                "yield_frequency": 10,
                "allow_async_delete": False,
            },
        ),
        ("dlo", dlo_middleware, {"max_segments": 10000}),
        ("versioned_writes", versioning_middleware(backend), versioning.INFO),
        ("symlink", symlink_middleware, symlink.INFO),
    ]
    app: Handler = proxy
    for name, middleware, section in reversed(stages):
        app = middleware(app)
        if name:
            info[name] = section
    return app, info
