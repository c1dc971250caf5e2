"""Request checks with Swift's limits and messages (swift.common.constraints)."""

from __future__ import annotations

import time

from kumo.object_store import constraints as C
from kumo.object_store.errors import SwiftError

_META_PREFIX = {"account": "x-account-meta-", "container": "x-container-meta-", "object": "x-object-meta-"}


def metadata(headers: dict[str, str], kind: str) -> None:
    prefix = _META_PREFIX[kind]
    count = 0
    size = 0
    for key, value in headers.items():
        if isinstance(value, str) and len(value) > C.MAX_HEADER_SIZE:
            raise SwiftError(400, f"Header value too long: {key[: C.MAX_META_NAME_LENGTH]}")
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if not name:
            raise SwiftError(400, "Metadata name cannot be empty")
        count += 1
        size += len(name) + len(value)
        if len(name) > C.MAX_META_NAME_LENGTH:
            raise SwiftError(400, f"Metadata name too long: {key}; max {C.MAX_META_NAME_LENGTH}")
        if len(value) > C.MAX_META_VALUE_LENGTH:
            raise SwiftError(400, f"Metadata value longer than {C.MAX_META_VALUE_LENGTH}: {key}")
        if count > C.MAX_META_COUNT:
            raise SwiftError(400, f"Too many metadata items; max {C.MAX_META_COUNT}")
        if size > C.MAX_META_OVERALL_SIZE:
            raise SwiftError(400, f"Total metadata too large; max {C.MAX_META_OVERALL_SIZE}")


def removals(headers: dict[str, str], kind: str) -> dict[str, str]:
    """Turn X-Remove-<Kind>-Meta-Foo (and X-Remove-Versions-Location, ...) into empty values."""
    out = {k: v for k, v in headers.items() if not k.startswith("x-remove-")}
    for key in headers:
        if key.startswith("x-remove-"):
            target = "x-" + key[len("x-remove-") :]
            if kind == "object" and target.startswith(_META_PREFIX[kind]):
                out.pop(target, None)  # an object's metadata is replaced whole: leaving it out removes it
            elif target.startswith(_META_PREFIX[kind]) or target in _REMOVABLE:
                out[target] = ""
    return out


_REMOVABLE = (
    "x-container-read",
    "x-container-write",
    "x-versions-location",
    "x-history-location",
    "x-container-sync-to",
    "x-container-sync-key",
)


def container_name(name: str) -> None:
    if len(name.encode()) > C.MAX_CONTAINER_NAME_LENGTH:
        raise SwiftError(
            400, f"Container name length of {len(name.encode())} longer than {C.MAX_CONTAINER_NAME_LENGTH}"
        )


def object_name(name: str) -> None:
    if len(name.encode()) > C.MAX_OBJECT_NAME_LENGTH:
        raise SwiftError(
            400, f"Object name length of {len(name.encode())} longer than {C.MAX_OBJECT_NAME_LENGTH}"
        )


def delete_at(headers: dict[str, str]) -> None:
    """X-Delete-After becomes X-Delete-At; both must be whole seconds in the future."""
    now = time.time()
    if "x-delete-after" in headers:
        value = headers.pop("x-delete-after")
        try:
            after = int(value)
        except ValueError:
            raise SwiftError(400, "Non-integer X-Delete-After") from None
        if after < 0:
            raise SwiftError(400, "X-Delete-After in past")
        headers["x-delete-at"] = str(int(now + after))
    if headers.get("x-delete-at"):
        try:
            at = int(float(headers["x-delete-at"]))
        except ValueError:
            raise SwiftError(400, "Non-integer X-Delete-At") from None
        if at < now:
            raise SwiftError(400, "X-Delete-At in past")
        headers["x-delete-at"] = str(at)


def limit(query: dict[str, str], maximum: int) -> int:
    raw = query.get("limit")
    if raw is None or raw == "":
        return maximum
    try:
        value = int(raw)
    except ValueError:
        raise SwiftError(412, "Value of limit must be a positive integer") from None
    if value < 0:
        raise SwiftError(412, "Value of limit must be a positive integer")
    if value > maximum:
        raise SwiftError(412, f"Maximum limit is {maximum}")
    return value
