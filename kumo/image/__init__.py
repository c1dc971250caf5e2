"""Image (Glance API v2)."""

from kumo.common.service import CatalogEntry, ServiceSpec


def _create_app(runtime):  # type: ignore[no-untyped-def]
    from kumo.image.app import create_app

    return create_app(runtime)


def _prepare(runtime):  # type: ignore[no-untyped-def]
    from kumo.image.app import prepare

    prepare(runtime)


SERVICE = ServiceSpec(
    name="image",
    prefix="/image",
    catalog=(CatalogEntry(type="image", name="glance", path="/image"),),
    create_app=_create_app,
    prepare=_prepare,
)
