"""Trusts (OS-TRUST): a trustor delegates some of its roles on a project to a trustee."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.common.errors import Forbidden, NotFound
from kumo.identity import models as m
from kumo.identity.errors import ValidationError, not_found
from kumo.identity.service.core import (
    Identity,
    extra_of,
    new_id,
    parse_time,
    require_bool,
    require_str,
    utcnow,
)
from kumo.identity.service.grants import direct_role_ids, implied_closure

T = m.Trust
MAX_REDELEGATION = 3
_KNOWN = (
    "trustor_user_id",
    "trustee_user_id",
    "project_id",
    "impersonation",
    "expires_at",
    "remaining_uses",
    "roles",
    "allow_redelegation",
    "redelegation_count",
    "redelegated_trust_id",
)


def check_not_delegated(ctx: RequestContext) -> None:
    """Application-credential tokens may not manage trusts (Keystone's default)."""
    if ctx.application_credential_id or "application_credential" in ctx.methods:
        raise Forbidden(
            "You are not authorized to perform the requested action: Delegated tokens cannot manage trusts."
        )


def _live(trust: m.Trust | None) -> bool:
    if trust is None or trust.deleted:
        return False
    if trust.expires_at is not None and trust.expires_at < utcnow():
        return False
    return not (trust.remaining_uses is not None and trust.remaining_uses <= 0)


def _get(s: Session, trust_id: str) -> m.Trust:
    trust = s.get(T, trust_id) if isinstance(trust_id, str) else None
    if not _live(trust):
        raise not_found("trust", trust_id)
    assert trust is not None
    return trust


def _role_by_ref(s: Session, ref: Any) -> m.Role:
    if not isinstance(ref, dict):
        raise ValidationError(f"Invalid input for field 'roles': {ref!r} is not of type 'object'.")
    if ref.get("id") is not None:
        role = s.get(m.Role, ref["id"]) if isinstance(ref["id"], str) else None
        if role is None:
            raise not_found("role", str(ref["id"]))
        return role
    name = ref.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationError("Invalid input for field 'roles': each role needs an id or a name.")
    roles = list(s.scalars(select(m.Role).where(m.Role.name == name, m.Role.domain_id.is_(None))))
    if not roles:
        roles = list(s.scalars(select(m.Role).where(m.Role.name == name)))
    if len(roles) != 1:
        raise not_found("role", name)
    return roles[0]


def validate_required(body: dict[str, Any]) -> None:
    """The required fields of a trust request, checked before authorization."""
    require_str(body, "trustor_user_id", max_len=64)
    require_str(body, "trustee_user_id", max_len=64)
    if "impersonation" not in body:
        raise ValidationError("'impersonation' is a required property.")
    require_bool(body, "impersonation")


def create(ident: Identity, ctx: RequestContext, body: dict[str, Any]) -> m.Trust:
    trustor = require_str(body, "trustor_user_id", max_len=64)
    trustee = require_str(body, "trustee_user_id", max_len=64)
    if "impersonation" not in body:
        raise ValidationError("'impersonation' is a required property.")
    impersonation = bool(require_bool(body, "impersonation"))
    project_id = require_str(body, "project_id", max_len=64, required=False) or None
    role_refs = body.get("roles") or []
    if not isinstance(role_refs, list):
        raise ValidationError("Invalid input for field 'roles': it is not of type 'array'.")
    expires_at = parse_time(body.get("expires_at"), "expires_at")
    if expires_at is not None and expires_at < utcnow():
        raise ValidationError("The 'expires_at' must not be before now.")
    remaining = body.get("remaining_uses")
    if remaining is not None and (
        not isinstance(remaining, int) or isinstance(remaining, bool) or remaining < 1
    ):
        raise ValidationError("remaining_uses must be a positive integer or null.")
    allow_redelegation = bool(require_bool(body, "allow_redelegation", False))
    count = body.get("redelegation_count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise ValidationError("Invalid input for field 'redelegation_count': must be a non-negative integer.")
    if project_id and not role_refs:
        raise Forbidden(
            "You are not authorized to perform the requested action: At least one role should be specified."
        )
    if ctx.user_id != trustor:
        raise Forbidden(
            "You are not authorized to perform the requested action: The authenticated user should match the trustor."
        )
    with ident.db.session() as s:
        ident.get(s, m.User, trustee, "user")
        roles = [_role_by_ref(s, ref) for ref in role_refs]
        original = _get(s, ctx.trust_id) if ctx.trust_id else None
        if project_id:
            project = ident.get(s, m.Project, project_id, "project")
            holder = original.trustor_user_id if original else trustor
            held = implied_closure(s, direct_role_ids(s, holder, project=project))
            for role in roles:
                if role.id not in held:
                    raise not_found("role", role.id)
        redelegatable = allow_redelegation and count != 0
        if not redelegatable:
            count = 0
        else:
            if count is not None and count > MAX_REDELEGATION:
                raise Forbidden(
                    f"Requested redelegation depth of {count} is greater than allowed {MAX_REDELEGATION}"
                )
            if remaining is not None:
                raise ValidationError("remaining_uses must not be set if redelegation is allowed")
        if original is not None:
            _check_redelegation(original, project_id, roles, expires_at, impersonation)
            remaining_count = original.redelegation_count - 1
            if redelegatable and count and count != remaining_count:
                raise Forbidden('Modifying "redelegation_count" upon redelegation is forbidden.')
            count = remaining_count if count is None or redelegatable else count
        elif count is None:
            count = MAX_REDELEGATION
        trust = T(
            id=new_id(),
            trustor_user_id=trustor,
            trustee_user_id=trustee,
            project_id=project_id,
            impersonation=impersonation,
            expires_at=expires_at,
            remaining_uses=remaining,
            redelegation_count=count,
            redelegated_trust_id=original.id if original else None,
            roles=[r.id for r in roles],
            extra=extra_of(body, _KNOWN),
            deleted=False,
        )
        s.add(trust)
        s.flush()
    return trust


def _check_redelegation(
    original: m.Trust, project_id: str | None, roles: list[m.Role], expires_at: Any, impersonation: bool
) -> None:
    if original.redelegation_count <= 0:
        raise Forbidden("Remaining redelegation depth of 0 is out of allowed range of [1..3].")
    if project_id != original.project_id:
        raise Forbidden("Redelegated trust must have the same project as the original trust.")
    if any(r.id not in original.roles for r in roles):
        raise Forbidden("Some of requested roles are not in redelegated trust.")
    if original.expires_at and (expires_at is None or expires_at > original.expires_at):
        raise Forbidden("Requested expiration time is more than redelegated trust can provide.")
    if impersonation and not original.impersonation:
        raise Forbidden(
            "Impersonation is not allowed because redelegated trust does not specify impersonation."
        )


def list_trusts(ident: Identity, trustor: str | None = None, trustee: str | None = None) -> list[m.Trust]:
    with ident.db.reader() as s:
        q = select(T).where(T.deleted.is_(False)).order_by(T.id)
        if trustor is not None:
            q = q.where(T.trustor_user_id == trustor)
        elif trustee is not None:
            q = q.where(T.trustee_user_id == trustee)
        items = [t for t in s.scalars(q) if _live(t)]
        return items


def get(ident: Identity, trust_id: str) -> m.Trust:
    with ident.db.reader() as s:
        trust = _get(s, trust_id)
        return trust


def roles_of(ident: Identity, trust: m.Trust) -> list[m.Role]:
    with ident.db.reader() as s:
        roles = [r for r in (s.get(m.Role, rid) for rid in trust.roles) if r is not None]
        return roles


def delete(ident: Identity, tokens: Any, trust_id: str) -> None:
    """Delete the trust and every trust redelegated from it; revoke their tokens."""
    with ident.db.session() as s:
        trust = s.get(T, trust_id) if isinstance(trust_id, str) else None
        if trust is None or trust.deleted:
            raise NotFound(f"Could not find trust: {trust_id}.")
        frontier = [trust]
        while frontier:
            nxt = []
            for t in frontier:
                t.deleted = True
                tokens.revoke(s, trust_id=t.id)
                nxt.extend(s.scalars(select(T).where(T.redelegated_trust_id == t.id, T.deleted.is_(False))))
            frontier = nxt
