"""Roles (global and domain-specific) and implied roles (role inference rules)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.common.errors import Forbidden, NotFound
from kumo.identity import models as m
from kumo.identity.errors import ValidationError, duplicate
from kumo.identity.service.core import Identity, extra_of, new_id, require_object, require_str

KNOWN = ("name", "description", "domain_id", "options")
ROLE_OPTIONS = ("immutable",)
# Roles that may never be implied by another (Keystone's [assignment] prohibited_implied_role).
PROHIBITED_IMPLIED = ("admin",)
_ID_RE = re.compile(r"^[a-zA-Z0-9-]+$")


def get_role(s: Session, role_id: Any) -> m.Role:
    return Identity.get(s, m.Role, role_id, "role")


def _domain_id(body: dict[str, Any]) -> str | None:
    value = body.get("domain_id")
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 64 or not _ID_RE.match(value):
        raise ValidationError(f"Invalid input for field 'domain_id': {value!r} is not a valid domain id.")
    return value


def _description(body: dict[str, Any]) -> str | None:
    value = body.get("description")
    if value is not None and not isinstance(value, str):
        raise ValidationError(
            f"Invalid input for field 'description': {value!r} is not of type 'string', 'null'."
        )
    return value


def _options(body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    value = body.get("options")
    if value is None:
        return dict(current)
    if not isinstance(value, dict):
        raise ValidationError(f"Invalid input for field 'options': {value!r} is not of type 'object'.")
    result = dict(current)
    for key, opt in value.items():
        if key not in ROLE_OPTIONS:
            raise ValidationError(
                f"Invalid input for field 'options': Additional properties are not allowed ('{key}' was unexpected)."
            )
        if opt is None:
            result.pop(key, None)
        elif not isinstance(opt, bool):
            raise ValidationError(
                f"Invalid input for field 'options/{key}': {opt!r} is not of type 'boolean', 'null'."
            )
        else:
            result[key] = opt
    return result


def _check_unique(s: Session, name: str, domain_id: str | None, exclude: str | None = None) -> None:
    q = select(m.Role.id).where(m.Role.name == name)
    q = q.where(m.Role.domain_id.is_(None) if domain_id is None else m.Role.domain_id == domain_id)
    if exclude:
        q = q.where(m.Role.id != exclude)
    if s.scalar(q.limit(1)) is not None:
        raise duplicate("role", "name", name)


def is_immutable(role: m.Role) -> bool:
    return bool((role.options or {}).get("immutable"))


def peek_domain(ident: Identity, body: Any) -> str | None:
    """The domain_id a create request names (for choosing the policy rule), unvalidated."""
    if isinstance(body, dict) and isinstance(body.get("role"), dict):
        value = body["role"].get("domain_id")
        return value if isinstance(value, str) and value else None
    return None


def create_role(ident: Identity, body: Any) -> m.Role:
    ref = require_object(body, "role")
    name = require_str(ref, "name")
    domain_id = _domain_id(ref)
    description = _description(ref)
    options = _options(ref, {})
    with ident.db.session() as s:
        if domain_id is not None:
            Identity.get(s, m.Domain, domain_id, "domain")
        _check_unique(s, name, domain_id)
        role = m.Role(
            id=new_id(),
            name=name,
            domain_id=domain_id,
            description=description or "",
            options=options,
            extra=extra_of(ref, KNOWN),
        )
        s.add(role)
    return role


def list_roles(ident: Identity, name: str | None, domain_id: str | None) -> list[m.Role]:
    with ident.db.reader() as s:
        q = select(m.Role)
        q = q.where(m.Role.domain_id == domain_id if domain_id else m.Role.domain_id.is_(None))
        if name is not None:
            q = q.where(m.Role.name == name)
        roles = list(s.scalars(q.order_by(m.Role.name, m.Role.id)))
        return roles


def show_role(ident: Identity, role_id: str) -> m.Role:
    with ident.db.reader() as s:
        role = get_role(s, role_id)
        return role


def find_role(ident: Identity, role_id: str) -> m.Role | None:
    with ident.db.reader() as s:
        role = s.get(m.Role, role_id)
        return role


def update_role(ident: Identity, role_id: str, body: Any) -> m.Role:
    ref = require_object(body, "role")
    if not ref:
        raise ValidationError("Invalid input for field 'role': {} does not have enough properties.")
    if "id" in ref and ref["id"] != role_id:
        raise ValidationError("Cannot change ID")
    with ident.db.session() as s:
        role = get_role(s, role_id)
        if is_immutable(role):
            opts = ref.get("options")
            keys = set(ref) - {"id"}
            if (
                keys != {"options"}
                or not isinstance(opts, dict)
                or "immutable" not in opts
                or opts["immutable"] not in (False, None)
            ):
                raise Forbidden(
                    f'Unable to update immutable role resource: `{role_id}. Set resource option "immutable" to false first.'
                )
        if "domain_id" in ref and _domain_id(ref) != role.domain_id:
            raise ValidationError("Update of `domain_id` is not allowed.")
        if "name" in ref:
            name = require_str(ref, "name")
            if name != role.name:
                _check_unique(s, name, role.domain_id, exclude=role.id)
            role.name = name
        if "description" in ref:
            role.description = _description(ref) or ""
        if "options" in ref:
            role.options = _options(ref, role.options or {})
        extra = extra_of(ref, KNOWN)
        if extra:
            role.extra = {**(role.extra or {}), **extra}
    return role


def affected_users(s: Session, role_ids: set[str]) -> set[str]:
    """Users holding any of the roles directly or through a group."""
    A = m.Assignment
    rows = s.execute(select(A.type, A.actor_id).where(A.role_id.in_(role_ids))).all()
    users = {actor for kind, actor in rows if kind.startswith("User")}
    groups = {actor for kind, actor in rows if kind.startswith("Group")}
    if groups:
        users |= set(s.scalars(select(m.GroupMember.user_id).where(m.GroupMember.group_id.in_(groups))))
    return users


def delete_role(ident: Identity, tokens: Any, role_id: str) -> None:
    with ident.db.session() as s:
        role = get_role(s, role_id)
        if is_immutable(role):
            raise Forbidden(
                f'Unable to delete immutable role resource: `{role_id}. Set resource option "immutable" to false first.'
            )
        for user_id in sorted(affected_users(s, {role.id})):
            tokens.revoke(s, user_id=user_id)
        s.execute(delete(m.Assignment).where(m.Assignment.role_id == role.id))
        s.execute(
            delete(m.ImpliedRole).where(
                (m.ImpliedRole.prior_role_id == role.id) | (m.ImpliedRole.implied_role_id == role.id)
            )
        )
        s.delete(role)


# -- implied roles --------------------------------------------------------------


def _inference(s: Session, prior_id: str, implied_id: str) -> m.ImpliedRole:
    row = s.get(m.ImpliedRole, {"prior_role_id": prior_id, "implied_role_id": implied_id})
    if row is None:
        raise NotFound(f"{prior_id} does not imply {implied_id}.")
    return row


def create_implied(ident: Identity, prior_id: str, implied_id: str) -> tuple[m.Role, m.Role]:
    with ident.db.session() as s:
        implied = get_role(s, implied_id)
        prior = get_role(s, prior_id)
        if implied.name in PROHIBITED_IMPLIED or prior.id == implied.id:
            raise Forbidden(f"{implied_id} cannot be an implied roles.")
        if prior.domain_id is None and implied.domain_id:
            raise Forbidden("Global role cannot imply a domain-specific role")
        key = {"prior_role_id": prior.id, "implied_role_id": implied.id}
        if s.get(m.ImpliedRole, key) is not None:
            raise duplicate("implied_role", "prior_role_id/implied_role_id", f"{prior.id}/{implied.id}")
        s.add(m.ImpliedRole(**key))
    return prior, implied


def show_implied(ident: Identity, prior_id: str, implied_id: str) -> tuple[m.Role, m.Role]:
    with ident.db.reader() as s:
        prior = get_role(s, prior_id)
        implied = get_role(s, implied_id)
        _inference(s, prior_id, implied_id)
        return prior, implied


def delete_implied(ident: Identity, prior_id: str, implied_id: str) -> None:
    with ident.db.session() as s:
        get_role(s, prior_id)
        get_role(s, implied_id)
        s.delete(_inference(s, prior_id, implied_id))


def list_implied(ident: Identity, prior_id: str) -> tuple[m.Role, list[m.Role]]:
    with ident.db.reader() as s:
        prior = get_role(s, prior_id)
        ids = list(
            s.scalars(select(m.ImpliedRole.implied_role_id).where(m.ImpliedRole.prior_role_id == prior.id))
        )
        roles = list(s.scalars(select(m.Role).where(m.Role.id.in_(ids)).order_by(m.Role.name))) if ids else []
        return prior, roles


def list_inferences(ident: Identity) -> list[tuple[m.Role, list[m.Role]]]:
    with ident.db.reader() as s:
        roles = {r.id: r for r in s.scalars(select(m.Role))}
        rules: dict[str, list[m.Role]] = {}
        for row in s.scalars(select(m.ImpliedRole)):
            if row.prior_role_id in roles and row.implied_role_id in roles:
                rules.setdefault(row.prior_role_id, []).append(roles[row.implied_role_id])
        return [(roles[p], sorted(imp, key=lambda r: r.name)) for p, imp in rules.items()]
