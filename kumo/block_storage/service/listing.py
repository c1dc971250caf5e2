"""List parameters shared by every collection: ``sort``/``sort_key``/``sort_dir``, the
dict-literal filters (``metadata={...}``) and the ``created_at``/``updated_at`` operators."""

from __future__ import annotations

import ast
from typing import Any

from kumo.block_storage.errors import BadRequest


def literal_dict(value: str, name: str) -> dict[str, Any]:
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise BadRequest(f"Invalid filter {name}: {value}") from None
    if not isinstance(parsed, dict):
        raise BadRequest(f"Invalid filter {name}: {value}")
    return parsed




def parse_sort(query: Any, keys: set[str], default: str = "created_at") -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if query.get("sort"):
        for part in str(query["sort"]).split(","):
            key, _, d = part.strip().partition(":")
            pairs.append((key.strip(), (d or "desc").strip().lower()))
    else:
        ks = [k.strip() for k in str(query.get("sort_key") or "").split(",") if k.strip()]
        ds = [d.strip().lower() for d in str(query.get("sort_dir") or "").split(",") if d.strip()]
        for i, k in enumerate(ks):
            pairs.append((k, ds[i] if i < len(ds) else (ds[-1] if ds else "desc")))
        if not ks and ds:
            pairs.append((default, ds[0]))
    for k, d in pairs:
        if k not in keys:
            raise BadRequest(f"Invalid input received: Invalid sort key {k}.")
        if d not in ("asc", "desc"):
            raise BadRequest(f"Invalid input received: Unknown sort direction {d}, must be 'desc' or 'asc'.")
    if not pairs:
        pairs = [(default, "desc")]
    if not any(k == "id" for k, _ in pairs):
        pairs.append(("id", pairs[-1][1]))
    return pairs


def sort_rows(rows: list[Any], pairs: list[tuple[str, str]], value: Any) -> list[Any]:
    for key, direction in reversed(pairs):
        rows.sort(key=lambda r: _sortable(value(r, key)), reverse=direction == "desc")
    return rows


def _sortable(v: Any) -> tuple[int, Any]:
    if v is None:
        return (0, "")
    if isinstance(v, bool):
        return (1, int(v))
    if isinstance(v, (int, float)):
        return (1, v)
    return (2, str(v))


def time_filter(value: str, name: str) -> list[tuple[str, str]]:
    out = []
    for part in value.split(","):
        op, _, ts = part.partition(":")
        if op not in ("gt", "gte", "lt", "lte", "eq", "neq") or not ts:
            raise BadRequest(f"Invalid filter {name}: {value}")
        out.append((op, ts.replace("T", " ").rstrip("Z")))
    return out


def compare(op: str, a: str, b: str) -> bool:
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b, "eq": a == b, "neq": a != b}[op]
