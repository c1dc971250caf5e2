"""OS-OAUTH1 consumers. The secret is generated on create and returned only then.

The delegation flow (request tokens, authorize, access tokens) is not served.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select

from kumo.common.errors import NotFound
from kumo.identity import models as m
from kumo.identity.errors import ValidationError
from kumo.identity.service.core import Identity, extra_of, new_id

C = m.OAuthConsumer
_KNOWN = ("description", "secret")


def _description(body: dict[str, Any]) -> str | None:
    value = body.get("description")
    if value is not None and not isinstance(value, str):
        raise ValidationError(
            f"Invalid input for field 'description': {value!r} is not of type 'string', 'null'."
        )
    return value


def _get(s: Any, consumer_id: str) -> m.OAuthConsumer:
    obj = s.get(C, consumer_id) if isinstance(consumer_id, str) else None
    if obj is None:
        raise NotFound(f"Could not find consumer: {consumer_id}.")
    return obj


def create(ident: Identity, body: dict[str, Any]) -> m.OAuthConsumer:
    description = _description(body)
    with ident.db.session() as s:
        consumer = C(
            id=new_id(), description=description, secret=secrets.token_hex(16), extra=extra_of(body, _KNOWN)
        )
        s.add(consumer)
        s.flush()
    return consumer


def list_all(ident: Identity) -> list[m.OAuthConsumer]:
    with ident.db.reader() as s:
        return list(s.scalars(select(C).order_by(C.id)))


def get(ident: Identity, consumer_id: str) -> m.OAuthConsumer:
    with ident.db.reader() as s:
        return _get(s, consumer_id)


def update(ident: Identity, consumer_id: str, body: dict[str, Any]) -> m.OAuthConsumer:
    if not body:
        raise ValidationError("Invalid input for field 'consumer': it must have at least one property.")
    if "secret" in body:
        raise ValidationError("Invalid input for field 'consumer': the secret cannot be updated.")
    if "id" in body and body["id"] != consumer_id:
        raise ValidationError("Cannot change ID.")
    with ident.db.session() as s:
        consumer = _get(s, consumer_id)
        if "description" in body:
            consumer.description = _description(body)
        extra = extra_of(body, _KNOWN)
        if extra:
            consumer.extra = {**(consumer.extra or {}), **extra}
        s.flush()
    return consumer


def delete(ident: Identity, consumer_id: str) -> None:
    with ident.db.session() as s:
        s.delete(_get(s, consumer_id))
