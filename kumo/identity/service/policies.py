"""``/v3/policies``: opaque policy blobs stored and returned as given (Keystone's deprecated API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kumo.identity import models as m
from kumo.identity.errors import ValidationError
from kumo.identity.service.core import Identity, extra_of, new_id, require_str

_KNOWN = ("blob", "type")


def _fields(body: dict[str, Any], *, create: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if create or "blob" in body:
        value = body.get("blob")
        if value is None and create:
            raise ValidationError("'blob' is a required property.")
        if not isinstance(value, str):
            raise ValidationError(f"Invalid input for field 'blob': {value!r} is not of type 'string'.")
        fields["blob"] = value
    if create or "type" in body:
        fields["type"] = require_str(body, "type", max_len=255)
    return fields


def create(ident: Identity, body: dict[str, Any]) -> m.Policy:
    fields = _fields(body, create=True)
    with ident.db.session() as s:
        policy = m.Policy(id=new_id(), extra=extra_of(body, _KNOWN), **fields)
        s.add(policy)
        s.flush()
    return policy


def list_all(ident: Identity, type: str | None = None) -> list[m.Policy]:
    with ident.db.reader() as s:
        q = select(m.Policy).order_by(m.Policy.id)
        if type is not None:
            q = q.where(m.Policy.type == type)
        return list(s.scalars(q))


def get(ident: Identity, policy_id: str) -> m.Policy:
    with ident.db.reader() as s:
        return ident.get(s, m.Policy, policy_id, "policy")


def update(ident: Identity, policy_id: str, body: dict[str, Any]) -> m.Policy:
    if not body:
        raise ValidationError("Invalid input for field 'policy': it must have at least one property.")
    if "id" in body and body["id"] != policy_id:
        raise ValidationError("Cannot change ID.")
    fields = _fields(body, create=False)
    with ident.db.session() as s:
        policy = ident.get(s, m.Policy, policy_id, "policy")
        for key, value in fields.items():
            setattr(policy, key, value)
        extra = extra_of(body, _KNOWN)
        if extra:
            policy.extra = {**(policy.extra or {}), **extra}
        s.flush()
    return policy


def delete(ident: Identity, policy_id: str) -> None:
    with ident.db.session() as s:
        s.delete(ident.get(s, m.Policy, policy_id, "policy"))
