"""Image errors, rendered the way Glance's webob faults render for JSON clients.

Glance answers errors through webob: with ``Accept: application/json`` (what the
SDK, tempest and glanceclient send) the body is
``{"code": "404 Not Found", "title": "Not Found", "message": "..."}``; kumo sends
that body whatever the Accept header says.
"""

from __future__ import annotations

import json

from kumo.common.errors import (
    APIError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)


def glance(err: APIError) -> tuple[bytes, str]:
    title = err.title
    body = {"code": f"{err.status} {title}", "title": title, "message": err.message}
    return json.dumps(body).encode(), "application/json"


class RangeNotSatisfiable(APIError):
    status, fault = 416, "rangeNotSatisfiable"


def image_not_found(image_id: str) -> NotFound:
    return NotFound(f"No image found with ID {image_id}")


def read_only(attr: str) -> Forbidden:
    return Forbidden(f"Attribute '{attr}' is read-only.")


def reserved(attr: str) -> Forbidden:
    return Forbidden(f"Attribute '{attr}' is reserved.")


class InvalidImageData(BadRequest):
    """Uploaded data that does not match its disk_format or fails a safety check."""


__all__ = [
    "APIError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InvalidImageData",
    "NotFound",
    "PayloadTooLarge",
    "RangeNotSatisfiable",
    "UnsupportedMediaType",
    "glance",
    "image_not_found",
    "read_only",
    "reserved",
]
