"""Account and container listings as JSON, XML or plain text."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from kumo.object_store.errors import SwiftError
from kumo.object_store.listing_rows import READY, account_rows, container_rows, iso

__all__ = ["FORMATS", "READY", "account_rows", "container_rows", "iso", "pick_format", "render"]

FORMATS = {"json": "application/json", "xml": "application/xml", "plain": "text/plain"}


def pick_format(query: dict[str, str], accept: str | None) -> str:
    fmt = (query.get("format") or "").lower()
    if fmt in ("json", "xml", "plain"):
        return fmt
    if fmt and fmt not in ("json", "xml", "plain", "txt", "text"):
        return "plain"
    accept = (accept or "").lower()
    if "application/json" in accept:
        return "json"
    if "application/xml" in accept or "text/xml" in accept:
        return "xml"
    if accept and "text/plain" not in accept and "*/*" not in accept and "text/*" not in accept:
        raise SwiftError(406)
    return "plain"


def render(kind: str, name: str, rows: list[dict[str, Any]], fmt: str) -> tuple[bytes, str]:
    """The body and its Content-Type; ``kind`` is "account" or "container"."""
    if fmt == "json":
        return json.dumps(rows).encode(), "application/json; charset=utf-8"
    if fmt == "xml":
        item = "container" if kind == "account" else "object"
        parts = ['<?xml version="1.0" encoding="UTF-8"?>', f"<{kind} name={quoteattr(name)}>"]
        for r in rows:
            if "subdir" in r:
                parts.append(
                    f"<subdir name={quoteattr(r['subdir'])}><name>{escape(r['subdir'])}</name></subdir>"
                )
                continue
            fields = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in r.items())
            parts.append(f"<{item}>{fields}</{item}>")
        parts.append(f"</{kind}>")
        return "".join(parts).encode(), "application/xml; charset=utf-8"
    text = "".join((r.get("name") or r.get("subdir") or "") + "\n" for r in rows)
    return text.encode(), "text/plain; charset=utf-8"
