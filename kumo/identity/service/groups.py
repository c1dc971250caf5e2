"""Groups and their members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.common.errors import NotFound
from kumo.identity import models as m
from kumo.identity.errors import ValidationError, duplicate
from kumo.identity.service import domains as dsvc
from kumo.identity.service.core import DEFAULT_DOMAIN_ID, Identity, extra_of, new_id, require_object
from kumo.identity.service.users import get_user

KNOWN = ("name", "domain_id", "description")


def get_group(s: Session, group_id: Any) -> m.Group:
    return Identity.get(s, m.Group, group_id, "group")


def _check_unique(s: Session, name: str, domain_id: str, exclude: str | None = None) -> None:
    q = select(m.Group.id).where(m.Group.name == name, m.Group.domain_id == domain_id)
    if exclude:
        q = q.where(m.Group.id != exclude)
    if s.scalar(q.limit(1)) is not None:
        raise duplicate("group", "name", name)


def domain_for_create(body: Any, default_domain: str | None) -> str:
    if isinstance(body, dict) and isinstance(body.get("group"), dict):
        value = body["group"].get("domain_id")
        if isinstance(value, str) and value:
            return value
    return default_domain or DEFAULT_DOMAIN_ID


def create_group(ident: Identity, body: Any, default_domain: str | None) -> m.Group:
    ref = require_object(body, "group")
    name = dsvc.check_name(ref, max_len=255)
    domain_id = ref.get("domain_id") or default_domain or DEFAULT_DOMAIN_ID
    if not isinstance(domain_id, str):
        raise ValidationError(f"Invalid input for field 'domain_id': {domain_id!r} is not of type 'string'.")
    description = dsvc.check_description(ref) or ""
    with ident.db.session() as s:
        dsvc.get_domain(s, domain_id)
        _check_unique(s, name, domain_id)
        group = m.Group(
            id=new_id(), name=name, domain_id=domain_id, description=description, extra=extra_of(ref, KNOWN)
        )
        s.add(group)
    return group


def list_groups(
    ident: Identity, name: str | None, domain_id: str | None, only_domain: str | None
) -> list[m.Group]:
    with dsvc.reading(ident) as s:
        q = select(m.Group)
        if name is not None:
            q = q.where(m.Group.name == name)
        if domain_id is not None:
            q = q.where(m.Group.domain_id == domain_id)
        if only_domain:
            q = q.where(m.Group.domain_id == only_domain)
        return list(s.scalars(q.order_by(m.Group.name, m.Group.id)))


def show_group(ident: Identity, group_id: str) -> m.Group:
    with dsvc.reading(ident) as s:
        return get_group(s, group_id)


def find_group(ident: Identity, group_id: str) -> m.Group | None:
    with dsvc.reading(ident) as s:
        return s.get(m.Group, group_id) if group_id else None


def update_group(ident: Identity, group_id: str, body: Any) -> m.Group:
    ref = require_object(body, "group")
    if ref.get("id") is not None and ref["id"] != group_id:
        raise ValidationError("Cannot change group ID.")
    name = dsvc.check_name(ref, max_len=255, required=False)
    description = dsvc.check_description(ref)
    with ident.db.session() as s:
        group = get_group(s, group_id)
        if "domain_id" in ref and ref["domain_id"] != group.domain_id:
            raise ValidationError("Cannot change Domain ID.")
        if name is not None and name != group.name:
            _check_unique(s, name, group.domain_id, exclude=group.id)
            group.name = name
        if description is not None:
            group.description = description
        extra = extra_of(ref, KNOWN)
        if extra:
            group.extra = {**(group.extra or {}), **extra}
    return group


def _members(s: Session, group_id: str) -> list[str]:
    return list(s.scalars(select(m.GroupMember.user_id).where(m.GroupMember.group_id == group_id)))


def remove_group(s: Session, tokens: Any, group: m.Group) -> None:
    """Delete a group, its grants and memberships; its members' tokens may have lost roles."""
    A = m.Assignment
    had_grants = s.scalar(select(A.actor_id).where(A.actor_id == group.id).limit(1)) is not None
    if had_grants:
        for user_id in _members(s, group.id):
            tokens.revoke(s, user_id=user_id)
    s.execute(
        delete(A).where(A.actor_id == group.id, A.type.in_(("GroupProject", "GroupDomain", "GroupSystem")))
    )
    s.execute(delete(m.GroupMember).where(m.GroupMember.group_id == group.id))
    s.flush()
    s.delete(group)
    s.flush()


def delete_group(ident: Identity, tokens: Any, group_id: str) -> None:
    with ident.db.session() as s:
        remove_group(s, tokens, get_group(s, group_id))


def add_member(ident: Identity, group_id: str, user_id: str) -> None:
    with ident.db.session() as s:
        get_group(s, group_id)
        get_user(s, user_id)
        if s.get(m.GroupMember, {"group_id": group_id, "user_id": user_id}) is None:
            s.add(m.GroupMember(group_id=group_id, user_id=user_id))


def check_member(ident: Identity, group_id: str, user_id: str) -> None:
    with dsvc.reading(ident) as s:
        get_group(s, group_id)
        get_user(s, user_id)
        if s.get(m.GroupMember, {"group_id": group_id, "user_id": user_id}) is None:
            raise NotFound(f"User '{user_id}' not found in group '{group_id}'")


def remove_member(ident: Identity, tokens: Any, group_id: str, user_id: str) -> None:
    with ident.db.session() as s:
        get_group(s, group_id)
        get_user(s, user_id)
        row = s.get(m.GroupMember, {"group_id": group_id, "user_id": user_id})
        if row is None:
            raise NotFound(f"User '{user_id}' not found in group '{group_id}'")
        s.delete(row)
        tokens.revoke(s, user_id=user_id)
