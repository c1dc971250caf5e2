"""An image's locations: every copy of its data, one per store (Glance's ``locations``)."""

from __future__ import annotations

from typing import Any

from kumo.image.models import Image


def get(image: Image) -> list[dict[str, Any]]:
    return [dict(loc) for loc in (image.locations or [])]


def set_all(image: Image, locs: list[dict[str, Any]]) -> None:
    """Replace the locations; ``store``/``location`` follow the first one."""
    image.locations = [dict(loc) for loc in locs]
    image.location = locs[0]["url"] if locs else None
    image.store = locs[0].get("store") if locs else None


def add(image: Image, store_id: str, url: str) -> None:
    locs = [loc for loc in get(image) if loc.get("store") != store_id]
    locs.append({"url": url, "metadata": {"store": store_id}, "store": store_id})
    set_all(image, locs)


def store_ids(image: Image, weights: dict[str, int] | None = None) -> list[str]:
    """The stores holding the image: highest weight first, then by name."""
    ids = {str(loc["store"]) for loc in get(image) if loc.get("store")}
    w = weights or {}
    return sorted(ids, key=lambda sid: (-w.get(sid, 0), sid))


def in_store(image: Image, store_id: str) -> dict[str, Any] | None:
    for loc in get(image):
        if loc.get("store") == store_id:
            return loc
    return None
