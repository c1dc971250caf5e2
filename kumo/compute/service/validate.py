"""Small request-body checks that give Nova-style 400s."""

from __future__ import annotations

import re
from typing import Any

from kumo.compute.errors import BadRequest


def body_key(body: Any, key: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {body!r}. '{key}' is a required property"
        )
    return body[key]


def only_keys(obj: dict[str, Any], allowed: set[str], where: str = "") -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise BadRequest(
            f"Additional properties are not allowed ({', '.join(repr(e) for e in extra)} "
            f"{'was' if len(extra) == 1 else 'were'} unexpected){where}"
        )


def integer(value: Any, field: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. {value} is not of type 'integer', 'string'"
        )
    if isinstance(value, str):
        if not re.fullmatch(r"\s*-?[0-9]+\s*", value):
            raise BadRequest(
                f"Invalid input for field/attribute {field}. Value: {value}. '{value}' does not match '^[0-9]+$'"
            )
        value = int(value)
    elif isinstance(value, float):
        if not value.is_integer():
            raise BadRequest(
                f"Invalid input for field/attribute {field}. Value: {value}. {value} is not of type 'integer'"
            )
        value = int(value)
    elif not isinstance(value, int):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. {value!r} is not of type 'integer'"
        )
    if minimum is not None and value < minimum:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. {value} is less than the minimum of {minimum}"
        )
    if maximum is not None and value > maximum:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. {value} is greater than the maximum of {maximum}"
        )
    return value


def boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "t", "y"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off", "f", "n"):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BadRequest(
        f"Invalid input for field/attribute {field}. Value: {value}. {value!r} is not of type 'boolean'"
    )


def name(value: Any, field: str = "name", max_len: int = 255, allow_blank_edges: bool = False) -> str:
    if not isinstance(value, str):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. {value!r} is not of type 'string'"
        )
    if not value.strip() or len(value) > max_len:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. '{value}' is too long or empty"
        )
    if not allow_blank_edges and value != value.strip():
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. leading or trailing whitespace"
        )
    if any(ord(c) < 32 and c not in "\t" for c in value):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. control characters are not allowed"
        )
    return value


def string(
    value: Any, field: str, max_len: int = 255, min_len: int = 0, nullable: bool = False
) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str) or len(value) > max_len or len(value) < min_len:
        raise BadRequest(f"Invalid input for field/attribute {field}. Value: {value!r}.")
    return value


def metadata(value: Any, field: str = "metadata") -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value!r}. is not of type 'object'"
        )
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 255:
            raise BadRequest(
                f"Invalid input for field/attribute {field}. Value: {value!r}. metadata keys must be 1-255 characters"
            )
        if not isinstance(v, str) or len(v) > 255:
            raise BadRequest(
                f"Invalid input for field/attribute {field}. Value: {value!r}. metadata values must be strings of at most 255 characters"
            )
        out[k] = v
    return out
