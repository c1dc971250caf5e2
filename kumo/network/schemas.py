"""Request attribute validators (Neutron's converters and validators)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from kumo.network.errors import bad

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def invalid(attr: str, reason: str) -> Exception:
    return bad(f"Invalid input for {attr}. Reason: {reason}.", "HTTPBadRequest")


def body_of(body: Any, key: str) -> dict[str, Any]:
    """The ``{"network": {...}}`` envelope's inside."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise bad(f"Resource body required: expected a JSON object with key '{key}'.")
    return body[key]


def check_keys(data: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise bad(f"Unrecognized attribute(s) '{', '.join(unknown)}'")


def to_bool(value: Any, attr: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise invalid(attr, f"'{value}' cannot be converted to boolean")


def to_str(value: Any, attr: str, max_len: int = 255, allow_none: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise invalid(attr, f"'{value}' is not a valid string")
    if len(value) > max_len:
        raise invalid(attr, f"'{value}' exceeds maximum length of {max_len}")
    return value


def to_int(value: Any, attr: str, lo: int | None = None, hi: int | None = None, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        raise invalid(attr, f"'{value}' is not an integer")
    try:
        number = int(value)
        if isinstance(value, float) and value != number:
            raise ValueError
        if isinstance(value, str) and not re.fullmatch(r"\s*-?\d+\s*", value):
            raise ValueError
    except (TypeError, ValueError):
        raise invalid(attr, f"'{value}' is not an integer") from None
    if lo is not None and number < lo:
        raise invalid(attr, f"'{number}' is too small - must be at least '{lo}'")
    if hi is not None and number > hi:
        raise invalid(attr, f"'{number}' is too large - must be no larger than '{hi}'")
    return number


def to_uuid(value: Any, attr: str, allow_none: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not _UUID.match(value):
        raise invalid(attr, f"'{value}' is not a valid UUID")
    return str(uuid.UUID(value)) if "-" not in value else value


def to_str_list(value: Any, attr: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(attr, f"'{value}' is not a list")
    return list(value)


def project_of(ctx: Any, data: dict[str, Any]) -> str:
    """The project a new resource belongs to: ``project_id``/``tenant_id`` or the caller's."""
    pid = data.get("project_id")
    tid = data.get("tenant_id")
    if pid is not None and tid is not None and pid != tid:
        raise bad("'project_id' and 'tenant_id' do not match")
    value = pid if pid is not None else tid
    if value is None:
        return ctx.project_id or ""
    if not isinstance(value, str) or len(value) > 255:
        raise invalid("project_id", f"'{value}' is not a valid string")
    return value
