"""Users: CRUD, passwords (admin reset and self-service change), and what they belong to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from kumo.common.errors import Forbidden
from kumo.identity import models as m
from kumo.identity.errors import AuthFailed, ValidationError, duplicate
from kumo.identity.service import compliance
from kumo.identity.service import domains as dsvc
from kumo.identity.service.core import (
    DEFAULT_DOMAIN_ID,
    Identity,
    extra_of,
    new_id,
    parse_time,
    require_object,
    utcnow,
)
from kumo.identity.service.grants import direct_role_ids

KNOWN = (
    "name",
    "domain_id",
    "enabled",
    "password",
    "default_project_id",
    "description",
    "email",
    "options",
    "federated",
)
MAX_PASSWORD = 4096


def _mfa_rules(key: str, value: Any) -> list[list[str]]:
    ok = isinstance(value, list) and all(
        isinstance(rule, list)
        and rule
        and all(isinstance(x, str) for x in rule)
        and len(set(rule)) == len(rule)
        for rule in value
    )
    if not ok:
        raise ValidationError(
            f"Invalid input for field 'options/{key}': must be a list of non-empty lists of unique strings."
        )
    return value


USER_OPTIONS = {
    "ignore_change_password_upon_first_use": dsvc.bool_option,
    "ignore_password_expiry": dsvc.bool_option,
    "ignore_lockout_failure_attempts": dsvc.bool_option,
    "lock_password": dsvc.bool_option,
    "ignore_user_inactivity": dsvc.bool_option,
    "multi_factor_auth_rules": _mfa_rules,
    "multi_factor_auth_enabled": dsvc.bool_option,
}


def get_user(s: Session, user_id: Any) -> m.User:
    return Identity.get(s, m.User, user_id, "user")


def _password(ref: dict[str, Any]) -> str | None:
    value = ref.get("password")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("Invalid input for field 'password': it is not of type 'string', 'null'.")
    if len(value) > MAX_PASSWORD:
        raise ValidationError(f"Invalid input for field 'password': longer than {MAX_PASSWORD} characters.")
    return value


def _optional_str(ref: dict[str, Any], key: str, max_len: int = 255) -> str | None:
    value = ref.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"Invalid input for field '{key}': {value!r} is not of type 'string', 'null'.")
    if value is not None and len(value) > max_len:
        raise ValidationError(f"Invalid input for field '{key}': longer than {max_len} characters.")
    return value


def _check_unique(s: Session, name: str, domain_id: str, exclude: str | None = None) -> None:
    q = select(m.User.id).where(m.User.name == name, m.User.domain_id == domain_id)
    if exclude:
        q = q.where(m.User.id != exclude)
    if s.scalar(q.limit(1)) is not None:
        raise duplicate("user", "name", name)


def domain_for_create(body: Any, default_domain: str | None) -> str:
    """The domain a create request lands in (for the policy target), unvalidated."""
    if isinstance(body, dict) and isinstance(body.get("user"), dict):
        value = body["user"].get("domain_id")
        if isinstance(value, str) and value:
            return value
    return default_domain or DEFAULT_DOMAIN_ID


def create_user(ident: Identity, body: Any, default_domain: str | None) -> m.User:
    ref = require_object(body, "user")
    name = dsvc.check_name(ref, max_len=255)
    domain_id = ref.get("domain_id") or default_domain or DEFAULT_DOMAIN_ID
    if not isinstance(domain_id, str):
        raise ValidationError(f"Invalid input for field 'domain_id': {domain_id!r} is not of type 'string'.")
    enabled = dsvc.check_enabled(ref)
    password = _password(ref)
    default_project_id = _optional_str(ref, "default_project_id", 64)
    description = _optional_str(ref, "description", 65535)
    email = _optional_str(ref, "email")
    options = dsvc.check_options(ref, {}, USER_OPTIONS)
    if password is not None:
        compliance.check_password_rules(ident.settings, password)
    hashed = ident.hasher.hash(password) if password is not None else None
    with ident.db.session() as s:
        dsvc.get_domain(s, domain_id)  # 404 for an unknown domain, as Keystone
        if default_project_id:
            _check_default_project(s, default_project_id)
        _check_unique(s, name, domain_id)
        now = utcnow()
        user = m.User(
            id=new_id(),
            name=name,
            domain_id=domain_id,
            enabled=True if enabled is None else enabled,
            default_project_id=default_project_id or None,
            description=description or "",
            email=email,
            options=options,
            extra=extra_of(ref, KNOWN),
            created_at=now,
        )
        compliance.set_password(ident, s, user, hashed)
        s.add(user)
    return user


def _check_default_project(s: Session, project_id: str) -> None:
    if s.get(m.Project, project_id) is None and s.get(m.Domain, project_id) is not None:
        raise ValidationError("User's default project ID cannot be a domain ID.")


def list_users(ident: Identity, f: Mapping[str, Any]) -> list[m.User]:
    """``f``: name, domain_id, enabled (bool), password_expires_at ("op:timestamp"), only_domain, group_id."""
    with dsvc.reading(ident) as s:
        q = select(m.User)
        if f.get("group_id"):
            q = q.join(m.GroupMember, m.GroupMember.user_id == m.User.id).where(
                m.GroupMember.group_id == f["group_id"]
            )
        if f.get("name") is not None:
            q = q.where(m.User.name == f["name"])
        if f.get("domain_id") is not None:
            q = q.where(m.User.domain_id == f["domain_id"])
        if f.get("only_domain"):
            q = q.where(m.User.domain_id == f["only_domain"])
        if f.get("enabled") is not None:
            q = q.where(m.User.enabled == f["enabled"])
        if f.get("password_expires_at"):
            q = q.where(_expiry_filter(f["password_expires_at"]))
        return list(s.scalars(q.order_by(m.User.name, m.User.id)))


_OPS = {
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "eq": lambda c, v: c == v,
    "neq": lambda c, v: or_(c != v, c.is_(None)),
}


def _expiry_filter(value: str) -> Any:
    op, sep, stamp = value.partition(":")
    if not sep or op not in _OPS:
        op, stamp = "eq", value
    when = parse_time(stamp, "password_expires_at")
    return _OPS[op](m.User.password_expires_at, when)


def show_user(ident: Identity, user_id: str) -> m.User:
    with dsvc.reading(ident) as s:
        return get_user(s, user_id)


def find_user(ident: Identity, user_id: str) -> m.User | None:
    with dsvc.reading(ident) as s:
        return s.get(m.User, user_id) if user_id else None


def update_user(ident: Identity, tokens: Any, user_id: str, body: Any) -> m.User:
    ref = require_object(body, "user")
    if not ref:
        raise ValidationError("Invalid input for field 'user': {} does not have enough properties.")
    if ref.get("id") is not None and ref["id"] != user_id:
        raise ValidationError("Cannot change user ID.")
    name = dsvc.check_name(ref, max_len=255, required=False)
    enabled = dsvc.check_enabled(ref)
    password = _password(ref)
    default_project_id = _optional_str(ref, "default_project_id", 64)
    description = _optional_str(ref, "description", 65535)
    email = _optional_str(ref, "email")
    if password is not None:
        compliance.check_password_rules(ident.settings, password)
    hashed = ident.hasher.hash(password) if password is not None else None
    with ident.db.session() as s:
        user = get_user(s, user_id)
        if "domain_id" in ref and ref["domain_id"] != user.domain_id:
            raise ValidationError("Cannot change Domain ID.")
        user.options = dsvc.check_options(ref, user.options or {}, USER_OPTIONS)
        if name is not None and name != user.name:
            _check_unique(s, name, user.domain_id, exclude=user.id)
            user.name = name
        if "default_project_id" in ref:
            if default_project_id:
                _check_default_project(s, default_project_id)
            user.default_project_id = default_project_id or None
        if "description" in ref:
            user.description = description or ""
        if "email" in ref:
            user.email = email
        revoke = False
        if enabled is not None:
            revoke = user.enabled and not enabled
            user.enabled = enabled
        if hashed is not None:
            # an admin reset: no history or age check (Keystone), first-use expiry may apply
            compliance.set_password(ident, s, user, hashed)
            revoke = True
        extra = extra_of(ref, KNOWN)
        if extra:
            user.extra = {**(user.extra or {}), **extra}
        if revoke:
            tokens.revoke(s, user_id=user.id)
    return user


def change_password(ident: Identity, tokens: Any, user_id: str, body: Any) -> None:
    """``POST /v3/users/{id}/password``: the original password proves who is asking."""
    ref = require_object(body, "user")
    original, new = ref.get("original_password"), ref.get("password")
    for key, value in (("original_password", original), ("password", new)):
        if not isinstance(value, str):
            raise ValidationError(f"'{key}' is a required property and must be a string.")
    unknown = set(ref) - {"original_password", "password"}
    if unknown:
        raise ValidationError(
            f"Additional properties are not allowed ({', '.join(sorted(unknown))} was unexpected)."
        )
    if len(new) > MAX_PASSWORD:
        raise ValidationError(f"Invalid input for field 'password': longer than {MAX_PASSWORD} characters.")
    with dsvc.reading(ident) as s:
        user = s.get(m.User, user_id) if user_id else None
        hashed = user.password_hash if user is not None else None
    if user is not None:
        compliance.check_not_locked(ident.settings, user)  # the original password logs in (Keystone)
    verified = ident.hasher.verify(original, hashed)
    if not verified and user is not None:
        compliance.record_failure(ident, user.id)
    if not verified or user is None or not user.enabled:
        raise AuthFailed("Error when changing user password: Invalid user / password")
    compliance.check_password_rules(ident.settings, new)
    if (user.options or {}).get("lock_password"):
        raise Forbidden(
            "You cannot change your password at this time due to password policy disallowing password changes. Please contact your administrator to reset your password."
        )
    compliance.check_minimum_age(ident.settings, user)
    with dsvc.reading(ident) as s:
        compliance.check_history(ident, s, user, new)  # bcrypt checks outside the write lock
    new_hash = ident.hasher.hash(new)
    with ident.db.session() as s:
        row = get_user(s, user_id)
        compliance.clear_failures(row)
        compliance.set_password(ident, s, row, new_hash, self_service=True)
        tokens.revoke(s, user_id=user_id)


def remove_user(s: Session, tokens: Any, user: m.User) -> None:
    """Delete a user and what belongs to it (memberships, grants, credentials, trusts, app creds)."""
    A = m.Assignment
    s.execute(delete(m.GroupMember).where(m.GroupMember.user_id == user.id))
    s.execute(delete(A).where(A.actor_id == user.id, A.type.in_(("UserProject", "UserDomain", "UserSystem"))))
    s.execute(delete(m.ApplicationCredential).where(m.ApplicationCredential.user_id == user.id))
    s.execute(delete(m.Credential).where(m.Credential.user_id == user.id))
    s.execute(
        update(m.Trust)
        .where(or_(m.Trust.trustor_user_id == user.id, m.Trust.trustee_user_id == user.id))
        .values(deleted=True)
    )
    compliance.forget(s, user.id)
    tokens.revoke(s, user_id=user.id)
    s.flush()
    s.delete(user)
    s.flush()


def delete_user(ident: Identity, tokens: Any, user_id: str) -> None:
    with ident.db.session() as s:
        remove_user(s, tokens, get_user(s, user_id))


def list_user_projects(ident: Identity, user_id: str, f: Mapping[str, Any]) -> list[m.Project]:
    """Projects the user holds a role on (directly, through a group or by inheritance)."""
    with dsvc.reading(ident) as s:
        get_user(s, user_id)
        q = select(m.Project)
        if f.get("name") is not None:
            q = q.where(m.Project.name == f["name"])
        if f.get("domain_id") is not None:
            q = q.where(m.Project.domain_id == f["domain_id"])
        if f.get("enabled") is not None:
            q = q.where(m.Project.enabled == f["enabled"])
        rows = s.scalars(q.order_by(m.Project.name, m.Project.id))
        return [p for p in rows if direct_role_ids(s, user_id, project=p)]


def list_user_groups(ident: Identity, user_id: str, name: str | None = None) -> list[m.Group]:
    with dsvc.reading(ident) as s:
        get_user(s, user_id)
        q = select(m.Group).join(m.GroupMember, m.GroupMember.group_id == m.Group.id)
        q = q.where(m.GroupMember.user_id == user_id)
        if name is not None:
            q = q.where(m.Group.name == name)
        return list(s.scalars(q.order_by(m.Group.name, m.Group.id)))


def user_domain(ident: Identity, user_id: str) -> str | None:
    user = find_user(ident, user_id)
    return user.domain_id if user is not None else None
