"""Network (Neutron API v2.0): the control plane — networks, subnets, ports, routers,
floating IPs, security groups, quotas, agents and the internal agent API."""

from kumo.common.service import CatalogEntry, ServiceSpec


def _create_app(runtime):  # type: ignore[no-untyped-def]
    from kumo.network.app import create_app

    return create_app(runtime)


def _prepare(runtime):  # type: ignore[no-untyped-def]
    from kumo.network.app import prepare

    prepare(runtime)


SERVICE = ServiceSpec(
    name="network",
    prefix="/network",
    catalog=(CatalogEntry(type="network", name="neutron", path="/network"),),
    create_app=_create_app,
    prepare=_prepare,
)
