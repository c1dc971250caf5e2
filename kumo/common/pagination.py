"""``limit`` / ``marker`` pagination with ``next`` links, the OpenStack way."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from kumo.common.errors import BadRequest, NotFound

T = TypeVar("T")


def parse_limit(query: Mapping[str, str], maximum: int = 1000) -> int | None:
    raw = query.get("limit")
    if raw is None or raw == "":
        return None
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be an integer, not {raw!r}") from None
    if limit < 0:
        raise BadRequest("limit must be zero or positive")
    return min(limit, maximum)


def paginate(
    items: Sequence[T], limit: int | None, marker: str | None, key: Callable[[T], str]
) -> tuple[list[T], bool]:
    """Slice an ordered sequence after ``marker``; returns the page and whether more follow."""
    start = 0
    if marker:
        for i, item in enumerate(items):
            if key(item) == marker:
                start = i + 1
                break
        else:
            raise NotFound(f"Marker {marker} could not be found.")
    if limit is None:
        return list(items[start:]), False
    page = list(items[start : start + limit])
    return page, start + limit < len(items)


def next_link(base_url: str, query: Mapping[str, Any], marker: str, limit: int) -> str:
    params = [(k, v) for k, v in query.items() if k not in ("marker", "limit")]
    params += [("limit", str(limit)), ("marker", marker)]
    return f"{base_url}?{urlencode(params)}"
