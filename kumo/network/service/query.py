"""Neutron's list semantics on rendered dicts: attribute filters, tag filters,
``fields``, ``sort_key``/``sort_dir`` and ``limit``/``marker``/``page_reverse``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kumo.network.errors import bad, not_found

RESERVED = frozenset({
    "fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse", "tags", "tags-any",
    "not-tags", "not-tags-any", "verbose", "shared_filter",
})


@dataclass
class ListQuery:
    filters: dict[str, list[str]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (key, ascending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False
    tags: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, multi: Callable[[str], list[str]], keys: Sequence[str]) -> ListQuery:
        q = cls()
        for key in dict.fromkeys(keys):
            if key not in RESERVED:
                q.filters[key] = multi(key)
        q.fields = [f for v in multi("fields") for f in v.split(",") if f]
        sort_keys = multi("sort_key")
        sort_dirs = multi("sort_dir")
        if sort_dirs and len(sort_dirs) != len(sort_keys):
            raise bad("The number of sort_keys and sort_dirs must be same")
        for i, key in enumerate(sort_keys):
            direction = sort_dirs[i] if i < len(sort_dirs) else "asc"
            if direction not in ("asc", "desc"):
                raise bad(f"{direction} is invalid value for sort_dirs, valid value is 'asc' and 'desc'")
            q.sort.append((key, direction == "asc"))
        limits = multi("limit")
        if limits and limits[-1] != "":
            try:
                q.limit = int(limits[-1])
            except ValueError:
                raise bad(f"Invalid input for limit. Reason: '{limits[-1]}' is not an integer.") from None
            if q.limit < 0:
                raise bad(f"Invalid input for limit. Reason: '{q.limit}' should be non-negative.")
            if q.limit == 0:
                q.limit = None
        markers = multi("marker")
        q.marker = markers[-1] if markers and markers[-1] else None
        q.page_reverse = (multi("page_reverse") or ["false"])[-1].lower() == "true"
        for name, attr in (("tags", "tags"), ("tags-any", "tags_any"), ("not-tags", "not_tags"),
                           ("not-tags-any", "not_tags_any")):
            setattr(q, attr, [t for v in multi(name) for t in v.split(",") if t])
        return q


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _match_fixed_ips(port_ips: list[dict[str, str]], wanted: list[str]) -> bool:
    """``fixed_ips=ip_address=X`` / ``subnet_id=Y`` / ``ip_address_substr=Z`` (all must hold)."""
    conds: dict[str, list[str]] = {}
    for w in wanted:
        k, _, v = w.partition("=")
        conds.setdefault(k, []).append(v)
    for k, vals in conds.items():
        if k == "ip_address_substr":
            if not any(any(v in ip["ip_address"] for v in vals) for ip in port_ips):
                return False
        elif k in ("ip_address", "subnet_id") and not any(ip.get(k) in vals for ip in port_ips):
            return False
    return True


def matches(item: dict[str, Any], q: ListQuery, hidden_filters: dict[str, Any] | None = None) -> bool:
    for key, wanted in q.filters.items():
        if key == "fixed_ips" and "fixed_ips" in item:
            if not _match_fixed_ips(item["fixed_ips"], wanted):
                return False
            continue
        if hidden_filters and key in hidden_filters:
            value = hidden_filters[key]
        elif key in item:
            value = item[key]
        else:
            continue  # unknown filters are ignored (no filter-validation extension)
        if key in ("name", "description") and len(wanted) == 1 and wanted[0] == "" and value in ("", None):
            continue
        if isinstance(value, list):
            texts = {_as_text(v) if not isinstance(v, dict) else "" for v in value}
            if not any(w in texts for w in wanted):
                return False
            continue
        text = _as_text(value)
        if isinstance(value, bool):
            if text not in [w.lower() for w in wanted]:
                return False
        elif text not in wanted:
            return False
    tags = set(item.get("tags") or [])
    if q.tags and not set(q.tags) <= tags:
        return False
    if q.tags_any and not set(q.tags_any) & tags:
        return False
    if q.not_tags and set(q.not_tags) <= tags:
        return False
    return not (q.not_tags_any and set(q.not_tags_any) & tags)


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))


def sort_items(items: list[dict[str, Any]], q: ListQuery) -> list[dict[str, Any]]:
    keys = list(q.sort)
    for key, _asc in keys:
        if items and key not in items[0]:
            raise bad(f"{key} is invalid attribute for sort_key")
    if not any(k == "id" for k, _ in keys):
        keys.append(("id", keys[-1][1] if keys else True))
    out = list(items)
    for key, asc in reversed(keys):
        out.sort(key=lambda it, k=key: _sort_value(it.get(k)), reverse=not asc)
    return out


def page(items: list[dict[str, Any]], q: ListQuery, kind: str) -> tuple[list[dict[str, Any]], bool, bool]:
    """(page, more after, more before). ``page_reverse`` pages backwards from the marker."""
    start, end = 0, len(items)
    if q.marker:
        idx = next((i for i, it in enumerate(items) if it.get("id") == q.marker), None)
        if idx is None:
            raise not_found(kind, q.marker)
        if q.page_reverse:
            end = idx
        else:
            start = idx + 1
    if q.limit is None:
        return items[start:end], False, start > 0
    if q.page_reverse:
        first = max(start, end - q.limit)
        return items[first:end], end < len(items), first > 0
    last = min(end, start + q.limit)
    return items[start:last], last < end, start > 0


def select_fields(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    if not fields:
        return item
    return {k: v for k, v in item.items() if k in fields}
