"""Small helpers shared by the proxy and the storage nodes."""

from __future__ import annotations

import email.utils
import hashlib
import math
import time
import uuid
from urllib.parse import quote

META_PREFIXES = ("x-object-meta-", "x-container-meta-", "x-account-meta-")


def now_ts() -> str:
    return normalize_ts(time.time())


def normalize_ts(value: float | str) -> str:
    return f"{float(value):016.5f}"


def http_date(ts: float | str) -> str:
    """Last-Modified: the timestamp rounded up to the second, as Swift does."""
    return email.utils.formatdate(math.ceil(float(ts)), usegmt=True)


def parse_http_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed.timestamp()


def trans_id() -> str:
    return f"tx{uuid.uuid4().hex[:21]}-{int(time.time()):010x}"


def hash_path(*parts: str, suffix: str = "") -> str:
    path = "/" + "/".join(parts)
    return hashlib.md5((path + suffix).encode("utf-8", "surrogateescape")).hexdigest()


def quote_path(*parts: str) -> str:
    return "/".join(quote(p.encode("utf-8", "surrogateescape"), safe="") for p in parts)


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on", "t", "y")
