"""Swapping a server's volume (``PUT .../os-volume_attachments/{old}`` with another ``volumeId``).

As Nova since the 2025 security fix, the swap is Cinder's callback for the migration (or retype)
of an attached volume, not a user operation: a request whose old volume is not migrating is
refused with 409 before anything changes. kumo's block storage does not migrate attached
volumes, so no swap can legitimately start; a volume an operator marked migrating by hand
(``os-reset_status``) gets the honest 501.
"""

from __future__ import annotations

from typing import Any

from kumo.common.errors import NotImplementedYet
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.volume_client import Volumes


async def check(vc: Volumes, old_volume_id: str, new_volume_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Nova's checks, in Nova's order: the old volume exists (404) and is migrating (409), the new
    one exists (400: it is named in the body, not the path)."""
    try:
        old = await vc.get_volume(old_volume_id)
    except NotFound:
        raise NotFound(f"Volume {old_volume_id} could not be found.") from None
    if old.get("migration_status") in (None, ""):
        raise Conflict(f"volume {old_volume_id} is not migrating; this API should only be called by Cinder")
    try:
        new = await vc.get_volume(new_volume_id)
    except NotFound:
        raise BadRequest(f"Volume {new_volume_id} could not be found.") from None
    return old, new


async def swap(vc: Volumes, old_volume_id: str, new_volume_id: str) -> None:
    await check(vc, old_volume_id, new_volume_id)
    raise NotImplementedYet(
        "Swapping the volume of a server for a migrating volume is not supported by kumo "
        "(its block storage does not migrate attached volumes)."
    )
