"""Nova's microversion rule for multiattach volumes: a volume whose ``multiattach`` flag is set
may be attached (or booted from) only with compute API 2.60 or later, even the first time, so an
older client never shares a disk without asking for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kumo.common.microversion import APIVersion
from kumo.compute.errors import BadRequest
from kumo.compute.service.states import SHELVED_OFFLOADED
from kumo.compute.volume_client import Volumes

MIN_VERSION = "2.60"


def check(volume: Mapping[str, Any], version: APIVersion | None, vm_state: str | None = None) -> None:
    """400 when ``volume`` is multiattach and the request is older than 2.60, or (as Nova) when
    the server is shelved offloaded (it has no host to open the shared disk on)."""
    if not volume.get("multiattach"):
        return
    if version is None or not version.matches(MIN_VERSION):
        raise BadRequest(
            f"Multiattach volumes are only supported starting with compute API version {MIN_VERSION}."
        )
    if vm_state == SHELVED_OFFLOADED:
        raise BadRequest("Attaching multiattach volumes is not supported for shelved-offloaded instances.")


async def attached_elsewhere(vc: Volumes, volume_id: str) -> bool:
    """Whether the volume is a multiattach volume already in use by other servers (a new server
    may then take another attachment of it without waiting for it to become available)."""
    vol = await vc.get_volume(volume_id)
    return bool(vol.get("multiattach")) and vol.get("status") == "in-use"
