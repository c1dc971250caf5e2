"""Object storage (Swift API v1): a proxy over storage nodes placed by a ring."""

from kumo.common.service import CatalogEntry, ServiceSpec


def _create_app(runtime):  # type: ignore[no-untyped-def]
    from kumo.object_store.app import create_app

    return create_app(runtime)


def _prepare(runtime):  # type: ignore[no-untyped-def]
    from kumo.object_store.app import prepare

    prepare(runtime)


SERVICE = ServiceSpec(
    name="object_store",
    prefix="/object-store",
    catalog=(CatalogEntry(type="object-store", name="swift", path="/object-store/v1/AUTH_$(project_id)s"),),
    create_app=_create_app,
    prepare=_prepare,
    root_paths=("/info",),
)
