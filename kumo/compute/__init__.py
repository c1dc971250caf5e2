"""Compute (Nova API v2.1): flavors, keypairs, servers, scheduler and the agent API."""

from kumo.common.service import CatalogEntry, ServiceSpec


def _create_app(runtime):  # type: ignore[no-untyped-def]
    from kumo.compute.app import create_app

    return create_app(runtime)


def _prepare(runtime):  # type: ignore[no-untyped-def]
    from kumo.compute.app import prepare

    prepare(runtime)


SERVICE = ServiceSpec(
    name="compute",
    prefix="/compute",
    catalog=(CatalogEntry(type="compute", name="nova", path="/compute/v2.1"),),
    create_app=_create_app,
    prepare=_prepare,
    # the metadata API the network agent's proxies forward guests to (kumo.compute.api.metadata)
    root_paths=("/compute-metadata", "/compute-metadata/{path:path}"),
)
