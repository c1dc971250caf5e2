"""Input checks shared by the collections (Cinder's API validation rules)."""

from __future__ import annotations

from typing import Any

from kumo.block_storage.errors import BadRequest


def string_field(value: Any, name: str, *, required: bool = False, maximum: int = 255) -> str | None:
    if value is None:
        if required:
            raise BadRequest(f"Invalid input: '{name}' is a required property.")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value!r} is not a string.")
    if len(value) > maximum:
        raise BadRequest(f"Invalid input for field/attribute {name}: longer than {maximum} characters.")
    return value


def check_metadata(value: Any, name: str = "metadata") -> dict[str, str]:
    """Keys 1-255 characters, values up to 255 characters, both strings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {name}: must be an object.")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not k or len(k) > 255:
            raise BadRequest(f"Invalid input for field/attribute {name}: keys must be 1 to 255 characters.")
        if v is None or isinstance(v, (dict, list)):
            raise BadRequest(f"Invalid input for field/attribute {name}: value of {k} must be a string.")
        v = v if isinstance(v, str) else (str(v).lower() if isinstance(v, bool) else str(v))
        if len(v) > 255:
            raise BadRequest(f"Invalid input for field/attribute {name}: value of {k} is longer than 255 characters.")
        out[k] = v
    return out


def size_field(value: Any, name: str = "size") -> int:
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}.")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. "
                             f"{value} is not of type 'integer'") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. It is not an integer.")
    if value < 1:
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. {value} is less than the minimum of 1")
    if value > 2**31 - 1:
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {value}. It is too large.")
    return value


def boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no", "t", "f", "on", "off", "y", "n"):
        return value.strip().lower() in ("true", "1", "yes", "t", "on", "y")
    raise BadRequest(f"Invalid value '{value}' for {name}: must be a boolean.")


def action_body(body: Any) -> tuple[str, Any]:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid request body: exactly one action is required.")
    name, args = next(iter(body.items()))
    return name, args
