"""Listing rows as the Swift API shows them, built where the rows are read (the storage node,
when the proxy asks for them ready-made) or in the proxy."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

# the request header by which the proxy asks a node for ready-made rows (echoed when honoured)
READY = "x-backend-listing-format"


@functools.lru_cache(maxsize=4096)
def _day(days: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(days * 86400))


def iso(ts: str) -> str:
    """Swift's ``last_modified``: the timestamp as UTC ISO 8601 with microseconds (exact: taken
    from the timestamp's digits, not through a float; a listing formats thousands of these)."""
    sec, dot, frac = ts.partition(".")
    if sec.isdigit() and (not dot or frac.isdigit()):
        days, rest = divmod(int(sec), 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{_day(days)}T{hours:02d}:{minutes:02d}:{seconds:02d}.{(frac + '000000')[:6]}"
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
