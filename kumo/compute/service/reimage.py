"""2.93: rebuilding a volume-backed server re-images its root volume (Nova's volume-backed rebuild).

The rebuild is recorded with a ``hold`` in its pending state: the agent is told to keep the VM
stopped and is not handed the rebuild yet. The API process's task (kumo.compute.api.volume_flows
.reimage_and_rebuild) swaps the root volume's Cinder attachment for a reserved one, asks block
storage to re-image it (``os-reimage`` with ``reimage_reserved``), polls the volume's status (kumo
has no ``volume-reimaged`` external event), re-attaches, then lifts the hold; the agent then
restarts the VM on the re-imaged disk. These are the database steps of that flow."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kumo.compute.models import Server, VolumeAttachment
from kumo.compute.service.core import ComputeService, now


def state(svc: ComputeService, server_id: str) -> dict[str, Any] | None:
    """The held rebuild's pending state, None when the server no longer waits for a re-image."""
    with svc.db.reader() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted or not (server.pending or {}).get("hold"):
            return None
        return dict(server.pending or {})


def root_mapping(svc: ComputeService, server_id: str) -> VolumeAttachment | None:
    with svc.db.reader() as s:
        return (
            s.execute(
                select(VolumeAttachment).where(
                    VolumeAttachment.server_id == server_id, VolumeAttachment.boot_index == 0
                )
            )
            .scalars()
            .first()
        )


def swap_attachment(svc: ComputeService, row_id: int, attachment_id: str, connection_info: dict[str, Any]) -> None:
    with svc.db.session() as s:
        row = s.get(VolumeAttachment, row_id)
        if row is not None:
            row.attachment_id = attachment_id
            row.connection_info = connection_info or row.connection_info
            row.updated_at = now()


def release(svc: ComputeService, server_id: str, seq: int) -> bool:
    """The root volume is re-imaged: hand the rebuild to the agent. False when it was superseded."""
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        pending = dict(server.pending or {}) if server is not None else {}
        if server is None or server.deleted or pending.get("seq") != seq or not pending.get("hold"):
            return False
        for key in ("hold", "vm_stopped", "reimage"):
            pending.pop(key, None)
        server.pending = pending
        server.updated_at = now()
    svc.notifier.bump()
    return True


def fail(svc: ComputeService, server_id: str, seq: int, message: str) -> None:
    """As Nova: a failed volume-backed rebuild leaves the server in ERROR with the reason."""
    from kumo.compute.service.servers import set_error

    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted or (server.pending or {}).get("seq") != seq:
            return
        set_error(server, message)
        server.updated_at = now()
    svc.notifier.bump()


def recover_interrupted(svc: ComputeService) -> int:
    """At start-up: a held rebuild whose API task died with the process (the caller's token is gone,
    so it cannot be resumed) goes to ERROR instead of staying in REBUILD; rebuilding again (from
    ERROR) re-images the volume. Returns how many servers were failed."""
    from kumo.compute.service.servers import set_error

    count = 0
    with svc.db.session() as s:
        for server in s.execute(select(Server).where(Server.deleted.is_(False), Server.pending.is_not(None))).scalars():
            if (server.pending or {}).get("hold"):
                set_error(server, "The rebuild was interrupted by a restart of the compute API; please rebuild again.")
                server.updated_at = now()
                count += 1
    return count
