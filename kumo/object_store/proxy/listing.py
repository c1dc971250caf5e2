"""Account and container listings as JSON, XML or plain text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape, quoteattr

from kumo.object_store.errors import SwiftError

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


def iso(ts: str) -> str:
    return datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def container_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if "subdir" in r:
            out.append({"subdir": r["subdir"]})
        else:
            row = {
                "hash": r["hash"],
                "last_modified": iso(r["created_at"]),
                "bytes": r["bytes"],
                "name": r["name"],
                "content_type": r["content_type"],
            }
            if ";symlink_target=" in row["content_type"]:
                ctype, *params = row["content_type"].split(";")
                opts = dict(p.split("=", 1) for p in params if "=" in p)
                row["content_type"] = ctype
                acct = unquote(opts.get("symlink_target_account", ""))
                row["symlink_path"] = f"/v1/{acct}/{unquote(opts.get('symlink_target', ''))}"
            out.append(row)
    return out


def account_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        if "subdir" in r:
            out.append({"subdir": r["subdir"]})
        else:
            out.append(
                {
                    "name": r["name"],
                    "count": r["count"],
                    "bytes": r["bytes"],
                    "last_modified": iso(r["put_timestamp"]),
                }
            )
    return out


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
