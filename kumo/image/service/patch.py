"""JSON patch for images: Glance's two media types.

``application/openstack-images-v2.1-json-patch`` is RFC 6902
(``{"op": "replace", "path": "/name", "value": ...}``);
``application/openstack-images-v2.0-json-patch`` is the older draft form
(``{"replace": "/name", "value": ...}``). Glance accepts add, replace and
remove; paths name one top-level attribute (``/locations/N`` aside).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kumo.image.errors import BadRequest, UnsupportedMediaType

MEDIA_V21 = "application/openstack-images-v2.1-json-patch"
MEDIA_V20 = "application/openstack-images-v2.0-json-patch"
OPS = ("add", "replace", "remove")
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Op:
    op: str
    path: tuple[str, ...]  # decoded JSON pointer segments
    value: Any = None

    @property
    def attr(self) -> str:
        return self.path[0]


def check_media_type(content_type: str | None) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in (MEDIA_V21, MEDIA_V20):
        raise UnsupportedMediaType(
            f"Unsupported Content-Type {media or 'none'}: use {MEDIA_V21} or {MEDIA_V20}."
        )
    return media


def _pointer(path: Any) -> tuple[str, ...]:
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise BadRequest(f"Invalid JSON pointer for this resource: '{path}'")
    parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/"))
    if any(p == "" for p in parts):
        raise BadRequest(f"Invalid JSON pointer for this resource: '{path}'")
    if len(parts) > 1 and parts[0] != "locations":
        raise BadRequest(f"Nested paths are not allowed: '{path}'")
    return parts


def parse(body: Any, media: str) -> list[Op]:
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    ops = []
    for raw in body:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        if media == MEDIA_V21:
            op = raw.get("op")
            if op not in OPS:
                raise BadRequest(f"Operation objects must contain exactly one of {', '.join(OPS)}: {op!r}.")
            path = raw.get("path")
        else:
            found = [k for k in OPS if k in raw]
            if len(found) != 1:
                raise BadRequest(f"Operation objects must contain exactly one of {', '.join(OPS)}.")
            op = found[0]
            path = raw[op]
        value = raw.get("value", _MISSING)
        if op in ("add", "replace") and value is _MISSING:
            raise BadRequest(f"Operation object requires a member named 'value' for {op}.")
        if op == "remove" and value is not _MISSING and media == MEDIA_V20:
            raise BadRequest("Operation 'remove' takes no 'value'.")
        ops.append(Op(op, _pointer(path), None if value is _MISSING else value))
    return ops
