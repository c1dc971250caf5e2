"""Block storage (Cinder API v3): volumes, snapshots, types, QoS, quotas, attachments, transfers,
backups, and the internal API of the volume agents."""

from kumo.common.service import CatalogEntry, ServiceSpec


def _create_app(runtime):  # type: ignore[no-untyped-def]
    from kumo.block_storage.app import create_app

    return create_app(runtime)


def _prepare(runtime):  # type: ignore[no-untyped-def]
    from kumo.block_storage.app import prepare

    prepare(runtime)


SERVICE = ServiceSpec(
    name="block_storage",
    prefix="/volume",
    catalog=(
        CatalogEntry(type="block-storage", name="cinder", path="/volume/v3/$(project_id)s"),
        CatalogEntry(type="volumev3", name="cinderv3", path="/volume/v3/$(project_id)s"),
    ),
    create_app=_create_app,
    prepare=_prepare,
)
