"""Identity (Keystone API v3)."""

from kumo.common.service import CatalogEntry, ServiceSpec


def _create_app(runtime):  # type: ignore[no-untyped-def]
    from kumo.identity.app import create_app

    return create_app(runtime)


def _prepare(runtime):  # type: ignore[no-untyped-def]
    from kumo.identity.app import prepare

    prepare(runtime)


SERVICE = ServiceSpec(
    name="identity",
    prefix="/identity",
    catalog=(CatalogEntry(type="identity", name="keystone", path="/identity/v3"),),
    create_app=_create_app,
    prepare=_prepare,
)
