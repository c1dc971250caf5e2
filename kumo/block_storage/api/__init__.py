"""Block storage's routers, one module per URL collection."""

from kumo.block_storage.api import (
    agent,
    attachments,
    backups,
    encryption,
    groups,
    hosts,
    quotas,
    snapshots,
    transfers,
    types,
    versions,
    volumes,
)

ROUTERS = [
    versions.api,
    volumes.api,
    snapshots.api,
    types.api,
    encryption.api,
    quotas.api,
    attachments.api,
    transfers.api,
    backups.api,
    groups.api,
    hosts.api,
    agent.api,
]
