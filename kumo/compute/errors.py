"""Compute errors, rendered in Nova's format ``{"itemNotFound": {"code": 404, "message": ...}}``."""

from __future__ import annotations

from kumo.common.asgi.faults import nova
from kumo.common.errors import APIError, BadRequest, Conflict, Forbidden, NotFound

__all__ = [
    "APIError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "OverLimit",
    "nova",
    "invalid_state",
]


class OverLimit(APIError):
    """Quota exceeded: Nova answers 403 with an ``forbidden`` body (413 overLimit for some)."""

    status, fault = 403, "forbidden"


def invalid_state(server_id: str, attr: str, state: str | None, action: str) -> Conflict:
    return Conflict(f"Cannot '{action}' instance {server_id} while it is in {attr} {state}")
