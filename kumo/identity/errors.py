"""Identity's errors (rendered as Keystone's ``{"error": {code, title, message}}``)."""

from kumo.common.errors import APIError, BadRequest, Conflict, Forbidden, NotFound, Unauthorized


class ValidationError(BadRequest):
    pass


class AuthFailed(Unauthorized):
    def __init__(self, message: str = "The request you have made requires authentication.") -> None:
        super().__init__(message)


def not_found(kind: str, ident: str) -> NotFound:
    return NotFound(f"Could not find {kind}: {ident}.")


def duplicate(kind: str, field: str, value: str) -> Conflict:
    return Conflict(f"Conflict occurred attempting to store {kind} - Duplicate entry found with {field} {value}.")


__all__ = ["APIError", "AuthFailed", "Forbidden", "ValidationError", "duplicate", "not_found"]
