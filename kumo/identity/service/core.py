"""The identity service object: database, keys, hasher, and shared helpers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from kumo.common.auth import Invalidation
from kumo.common.config import IdentitySettings
from kumo.common.db import Database
from kumo.identity import models as m
from kumo.identity.errors import ValidationError, not_found
from kumo.identity.service.passwords import Hasher
from kumo.identity.tokens import TokenFormatter

T = TypeVar("T")

DEFAULT_DOMAIN_ID = "default"


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso(when: datetime | None) -> str | None:
    """Keystone's timestamp form: 2026-01-01T00:00:00.000000Z."""
    if when is None:
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"Invalid input for field '{field}': {value!r} is not a date-time.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"Invalid input for field '{field}': {value!r} is not a date-time.") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


class Identity:
    """Everything the identity operations share. One per process."""

    def __init__(
        self,
        db: Database,
        settings: IdentitySettings,
        formatter: TokenFormatter,
        invalidation: Invalidation | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.formatter = formatter
        self.hasher = Hasher(settings.password_hash_rounds)
        self.invalidation = invalidation or Invalidation()
        event.listen(db._sessions, "after_flush", self._after_flush)
        event.listen(db._sessions, "after_commit", self._after_commit)

    # -- write tracking -------------------------------------------------------
    @staticmethod
    def _after_flush(session: Session, _ctx: Any) -> None:
        if session.new or session.dirty or session.deleted or session.info.pop("bump", False):
            session.info["changed"] = True
            session.execute(update(m.Revision).where(m.Revision.id == 1).values(value=m.Revision.value + 1))

    def _after_commit(self, session: Session) -> None:
        if session.info.pop("changed", False):
            self.invalidation.bump()

    def revision(self, session: Session) -> int:
        return session.execute(select(m.Revision.value).where(m.Revision.id == 1)).scalar_one_or_none() or 0

    # -- helpers ----------------------------------------------------------------
    @staticmethod
    def get(session: Session, model: type[T], ident: Any, kind: str) -> T:
        if not isinstance(ident, str) or not ident:
            raise not_found(kind, str(ident))
        obj = session.get(model, ident)
        if obj is None:
            raise not_found(kind, ident)
        return obj


def require_str(body: dict[str, Any], key: str, *, max_len: int = 255, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise ValidationError(f"'{key}' is a required property.")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"Invalid input for field '{key}': {value!r} is not of type 'string'.")
    if "\x00" in value:
        raise ValidationError(f"Invalid input for field '{key}': it must not contain NUL characters.")
    if required and not value.strip():
        raise ValidationError(f"Invalid input for field '{key}': it must not be empty.")
    if len(value) > max_len:
        raise ValidationError(f"Invalid input for field '{key}': longer than {max_len} characters.")
    return value


def require_bool(body: dict[str, Any], key: str, default: bool | None = None) -> bool | None:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationError(f"Invalid input for field '{key}': {value!r} is not of type 'boolean'.")
    return value


def require_object(body: Any, key: str) -> dict[str, Any]:
    """The ``{"key": {...}}`` wrapper every Keystone request body has."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise ValidationError(f"Expecting to find {key} in request body. The server could not comply with the request since it is either malformed or otherwise incorrect.")
    return body[key]


def extra_of(body: dict[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """Keystone keeps unknown attributes and returns them ("extra")."""
    known = set(known) | {"id", "links"}
    return {k: v for k, v in body.items() if k not in known}
