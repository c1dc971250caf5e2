"""Version documents (the root of each API)."""

from __future__ import annotations

from typing import Any


def version_entry(
    version_id: str,
    href: str,
    status: str = "CURRENT",
    updated: str = "2026-11-01T00:00:00Z",
    media_type: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": version_id,
        "status": status,
        "updated": updated,
        "links": [{"rel": "self", "href": href}],
    }
    if media_type:
        entry["media-types"] = [{"base": "application/json", "type": media_type}]
    entry.update(extra)
    return entry
