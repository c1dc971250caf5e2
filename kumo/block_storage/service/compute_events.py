"""What the block storage tells compute: Cinder's nova notifier.

When an attached (``in-use``) volume was extended (3.42), each server it is attached to gets
the ``volume-extended`` external event (tag: the volume id), so that compute grows the disk
the guest sees. The events go through :class:`kumo.common.compute_events.ComputeEvents` (set
by the app as ``svc.extras["compute_events"]``), sent in the background with the block
storage's own credentials; the extend itself never waits for compute.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kumo.block_storage.models import Attachment
from kumo.block_storage.service.core import BlockStorageService


def extended_events(s: Any, volume_id: str) -> list[dict[str, Any]]:
    servers = sorted({a.instance_uuid for a in s.execute(
        select(Attachment).where(Attachment.volume_id == volume_id, Attachment.status == "attached")).scalars()
        if a.instance_uuid})
    return [{"name": "volume-extended", "server_uuid": sid, "tag": volume_id} for sid in servers]


def volume_extended(svc: BlockStorageService, volume_id: str) -> None:
    sender = svc.extras.get("compute_events")
    if sender is None:
        return
    with svc.db.reader() as s:
        events = extended_events(s, volume_id)
    if events:
        sender.send(events)
