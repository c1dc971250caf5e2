"""Validation of image attributes, as Glance's image schema states them."""

from __future__ import annotations

import re
import uuid
from typing import Any

from kumo.image.errors import BadRequest, Forbidden, read_only, reserved
from kumo.image.formats import CONTAINER_FORMATS, DISK_FORMATS
from kumo.image.schemas import CORE, READ_ONLY, RESERVED, RESERVED_PREFIX, VISIBILITIES

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_INT = 2**31 - 1


def check_writable(attr: str) -> None:
    if attr in READ_ONLY:
        raise read_only(attr)
    if attr in RESERVED or attr.startswith(RESERVED_PREFIX):
        raise reserved(attr)


def _bad(attr: str, value: Any, why: str) -> BadRequest:
    return BadRequest(f"Invalid value {value!r} for '{attr}': {why}")


def value(attr: str, v: Any) -> Any:
    """The stored form of ``v`` for ``attr``, or 400."""
    if attr == "name":
        if v is not None and (not isinstance(v, str) or len(v) > 255):
            raise _bad(attr, v, "must be a string of at most 255 characters or null")
        return v
    if attr == "visibility":
        if v not in VISIBILITIES:
            raise _bad(attr, v, f"must be one of {', '.join(VISIBILITIES)}")
        return v
    if attr in ("protected", "os_hidden"):
        if not isinstance(v, bool):
            raise _bad(attr, v, "must be a boolean")
        return v
    if attr in ("min_disk", "min_ram"):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_INT:
            raise _bad(attr, v, "must be a non-negative integer")
        return v
    if attr == "container_format":
        if v is not None and v not in CONTAINER_FORMATS:
            raise _bad(attr, v, f"must be one of {', '.join(CONTAINER_FORMATS)}")
        return v
    if attr == "disk_format":
        if v is not None and v not in DISK_FORMATS:
            raise _bad(attr, v, f"must be one of {', '.join(DISK_FORMATS)}")
        return v
    if attr == "owner":
        if v is not None and (not isinstance(v, str) or len(v) > 255):
            raise _bad(attr, v, "must be a string of at most 255 characters or null")
        return v
    if attr == "tags":
        return tags(v)
    if attr == "id":
        if not isinstance(v, str) or not _UUID.match(v):
            raise _bad(attr, v, "must be a UUID")
        return str(uuid.UUID(v))
    if attr == "locations":
        raise Forbidden("It's not allowed to add locations if locations are invisible.")
    return prop(attr, v)


def tags(v: Any) -> list[str]:
    if not isinstance(v, list):
        raise _bad("tags", v, "must be a list of strings")
    out: list[str] = []
    for t in v:
        tag(t)
        if t not in out:
            out.append(t)
    if len(out) > 128:
        raise BadRequest("Maximum number of tags (128) exceeded.")
    return out


def tag(t: Any) -> str:
    if not isinstance(t, str) or not t or len(t) > 255:
        raise _bad("tags", t, "each tag must be a string of 1 to 255 characters")
    return t


def prop(key: str, v: Any) -> str:
    if len(key) > 255:
        raise BadRequest(f"Property name is too long: {key[:40]}...")
    if key in ("kernel_id", "ramdisk_id"):
        if v is not None and (not isinstance(v, str) or not _UUID.match(v)):
            raise _bad(key, v, "must be a UUID")
        return v
    if not isinstance(v, str):
        raise _bad(key, v, "custom properties must be strings")
    if len(v) > 65535:
        raise BadRequest(f"Property {key} value is too long.")
    return v


def is_core(attr: str) -> bool:
    return attr in CORE
