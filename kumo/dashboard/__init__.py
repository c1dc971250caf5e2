"""Dashboard: a Horizon-like web UI that drives every kumo service over its public API."""

from kumo.common.service import ServiceSpec


def _create_app(runtime):  # type: ignore[no-untyped-def]
    from kumo.dashboard.app import create_app

    return create_app(runtime)


def _prepare(runtime):  # type: ignore[no-untyped-def]
    from kumo.dashboard.app import prepare

    prepare(runtime)


SERVICE = ServiceSpec(
    name="dashboard",
    prefix="/dashboard",
    catalog=(),  # like Horizon, the dashboard is a client of the catalog, not an entry in it
    create_app=_create_app,
    prepare=_prepare,
)
