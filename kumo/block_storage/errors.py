"""Block storage errors, rendered as Cinder renders them: ``{"itemNotFound": {"code": 404, "message": ...}}``."""

from __future__ import annotations

from kumo.common.asgi.faults import nova as cinder
from kumo.common.errors import APIError, BadRequest, Conflict, Forbidden, NotFound

__all__ = [
    "APIError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "OverQuota",
    "cinder",
    "invalid_status",
    "not_found",
]


class OverQuota(APIError):
    """Cinder answers 413 ``overLimit`` when a request would exceed a quota."""

    status, fault = 413, "overLimit"


def not_found(kind: str, item_id: str) -> NotFound:
    return NotFound(f"{kind} {item_id} could not be found.")


def invalid_status(kind: str, item_id: str, status: str, action: str) -> BadRequest:
    """Cinder's InvalidVolume / InvalidSnapshot / InvalidBackup: a 400."""
    return BadRequest(f"Invalid {kind}: {kind.capitalize()} {item_id} status must be one of the allowed "
                    f"states to {action}, but current status is: {status}.")
