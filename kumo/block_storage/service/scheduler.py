"""Placing volumes on storage hosts: up, enabled, in the zone, with the capacity, and whose
capabilities satisfy the volume type's extra specs (Cinder's capabilities filter, for the keys a
back end reports)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.models import Host, VolumeType
from kumo.block_storage.service import agents
from kumo.block_storage.service.core import BlockStorageService

CAPABILITY_KEYS = ("volume_backend_name", "storage_protocol", "vendor_name")


class NoValidHost(Exception):
    """Hosts exist, but none can take the volume."""


def capabilities(h: Host) -> dict[str, str]:
    cap = h.capacity or {}
    return {"volume_backend_name": h.backend, "storage_protocol": str(cap.get("storage_protocol", "file")),
            "vendor_name": str(cap.get("vendor_name", "kumo"))}


def _satisfies(h: Host, vtype: VolumeType | None, size: int) -> bool:
    caps = capabilities(h)
    for key, want in ((vtype.extra_specs or {}) if vtype else {}).items():
        name = key.split(":", 1)[1] if key.startswith("capabilities:") else key
        if name not in CAPABILITY_KEYS:
            continue
        want = want.strip()
        if want.startswith("<in>"):
            if want[4:].strip() not in caps[name]:
                return False
        elif want.startswith("<or>"):
            if caps[name] not in [w.strip() for w in want[4:].split("<or>")]:
                return False
        elif want.startswith(("<is>", "==", "s==")):
            if caps[name].lower() != want.split(None, 1)[-1].strip().lower():
                return False
        elif caps[name] != want:
            return False
    free = (h.capacity or {}).get("free_gb")
    return free is None or float(free) >= size


def pick(s: Session, svc: BlockStorageService, zone: str, vtype: VolumeType | None, size: int) -> str | None:
    """The pool (``host@backend#pool``) for a new volume; None while no agent has registered
    (an agent then claims the volume when it polls); NoValidHost when none fits."""
    hosts = list(s.execute(select(Host)).scalars())
    if not hosts:
        return None
    fit = [h for h in hosts if not h.disabled and h.zone == zone and agents.is_up(svc, h)
           and _satisfies(h, vtype, size)]
    if not fit:
        raise NoValidHost("No valid backend was found.")
    best = max(fit, key=lambda h: float((h.capacity or {}).get("free_gb") or 0))
    return agents.pool_host(best.host, best.backend)
