"""What a server was booted with, kept for the microversions that show it back.

- 2.98: ``server.image.properties`` -- the image's properties as they were when the server was
  built (or last rebuilt): the inheritable base fields (min_ram, min_disk, disk_format,
  container_format) and every custom property, as strings of at most 255 characters, the way
  Nova keeps them in the instance's system metadata. Later edits of the image do not show.
- 2.100: ``server.scheduler_hints`` -- the ``os:scheduler_hints`` of the create request, as given.

Both live in ``Server.system_metadata`` (keys below), next to what other features keep there.
"""

from __future__ import annotations

from typing import Any

IMAGE_KEY = "image_properties"
HINTS_KEY = "requested_scheduler_hints"

# Glance's own image attributes: not properties (the first four are kept anyway, as Nova does)
_INHERITED = ("min_ram", "min_disk", "disk_format", "container_format")
_GLANCE_CORE = frozenset(
    {
        "id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo",
        "os_hash_value", "owner", "size", "virtual_size", "created_at", "updated_at", "tags", "self",
        "file", "schema", "direct_url", "locations", "stores", "min_ram", "min_disk", "disk_format",
        "container_format",
    }
)  # fmt: skip
# never copied to a server: signature material (Nova leaves these out of system metadata too)
_SKIPPED_PREFIXES = ("img_signature",)
MAX_VALUE = 255


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        value = "True" if value else "False"
    return str(value)[:MAX_VALUE]


def image_properties(image: dict[str, Any] | None) -> dict[str, str | None]:
    """The properties of a Glance v2 image (its JSON body) to keep with a server built from it."""
    if not image:
        return {}
    out: dict[str, str | None] = {}
    for key in _INHERITED:
        if image.get(key) is not None:
            out[key] = _text(image[key])
    for key, value in image.items():
        if key in _GLANCE_CORE or key.startswith(_SKIPPED_PREFIXES) or not 1 <= len(key) <= MAX_VALUE:
            continue
        out[key] = _text(value)
    return out


def saved_image_properties(system_metadata: dict[str, Any] | None) -> dict[str, Any]:
    return dict((system_metadata or {}).get(IMAGE_KEY) or {})


def saved_hints(system_metadata: dict[str, Any] | None) -> dict[str, Any]:
    return dict((system_metadata or {}).get(HINTS_KEY) or {})


def with_boot_info(
    system_metadata: dict[str, Any] | None, image: dict[str, Any] | None, hints: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``system_metadata`` with the image's properties (and the hints, when given) recorded."""
    meta = dict(system_metadata or {})
    meta[IMAGE_KEY] = image_properties(image)
    if hints is not None:
        meta[HINTS_KEY] = dict(hints)
    return meta
