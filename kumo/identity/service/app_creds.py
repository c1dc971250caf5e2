"""Application credentials: a user's named secrets bound to one project and a subset of roles."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.common.errors import Conflict, Forbidden, NotFound
from kumo.identity import models as m
from kumo.identity.errors import ValidationError, not_found
from kumo.identity.service.core import Identity, new_id, parse_time, require_bool, require_str, utcnow
from kumo.identity.service.grants import implied_closure

AC = m.ApplicationCredential


def generate_secret() -> str:
    """64 random bytes, url-safe base64 without padding (as Keystone generates)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()


def check_not_delegated(ctx: RequestContext) -> None:
    """Trust-scoped tokens may not manage application credentials (Keystone's rule)."""
    if ctx.trust_id:
        raise Forbidden("Cannot manage application credentials with a token obtained through delegation.")


def check_unrestricted(ctx: RequestContext) -> None:
    cred = (ctx.token or {}).get("application_credential")
    if cred and cred.get("restricted", True):
        raise Forbidden(
            "You are not authorized to perform the requested action: Using method 'application_credential' "
            "is not allowed for managing additional application credentials."
        )


def _role_by_ref(s: Session, ref: Any) -> m.Role:
    if not isinstance(ref, dict):
        raise ValidationError(f"Invalid input for field 'roles': {ref!r} is not of type 'object'.")
    if ref.get("id") is not None:
        if not isinstance(ref["id"], str):
            raise ValidationError("Invalid input for field 'roles': role id must be a string.")
        role = s.get(m.Role, ref["id"])
        if role is None:
            raise not_found("role", ref["id"])
        return role
    name = ref.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationError("Invalid input for field 'roles': each role needs an id or a name.")
    domain_id = ref.get("domain_id")
    roles = list(s.scalars(select(m.Role).where(m.Role.name == name)))
    roles = (
        [r for r in roles if r.domain_id == domain_id]
        if domain_id
        else [r for r in roles if r.domain_id is None]
    )
    if not roles:
        raise not_found("role", name)
    return roles[0]


def create(
    ident: Identity, ctx: RequestContext, user_id: str, body: dict[str, Any]
) -> tuple[m.ApplicationCredential, str]:
    """Create for the caller's project; returns (credential, secret)."""
    name = require_str(body, "name")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise ValidationError(
            f"Invalid input for field 'description': {description!r} is not of type 'string'."
        )
    secret = body.get("secret")
    if secret is not None and not isinstance(secret, str):
        raise ValidationError(f"Invalid input for field 'secret': {secret!r} is not of type 'string'.")
    secret = secret or generate_secret()
    unrestricted = bool(require_bool(body, "unrestricted", False))
    expires_at = parse_time(body.get("expires_at"), "expires_at")
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationError("The 'expires_at' must not be before now.")
    rules = _check_access_rules(body.get("access_rules"))
    if body.get("roles") is not None and not isinstance(body.get("roles"), list):
        raise ValidationError("Invalid input for field 'roles': it is not of type 'array'.")
    if not ctx.project_id:
        raise ValidationError("Application credentials can only be created with a project-scoped token.")
    token_roles = {r["id"]: r["name"] for r in (ctx.token or {}).get("roles") or []}
    with ident.db.session() as s:
        if body.get("roles"):
            chosen = {r.id for r in (_role_by_ref(s, ref) for ref in body["roles"])}
            chosen = implied_closure(s, chosen)
            if any(rid not in token_roles for rid in chosen):
                raise ValidationError(
                    "Invalid application credential: Cannot create an application credential with unassigned role."
                )
        else:
            chosen = set(token_roles)
        roles = [{"id": r.id, "name": r.name} for r in s.scalars(select(m.Role).where(m.Role.id.in_(chosen)))]
        if s.scalar(select(AC.id).where(AC.user_id == user_id, AC.name == name)):
            raise Conflict(
                f"Conflict occurred attempting to store application_credential - Duplicate entry found with name {name}."
            )
        access_rules = _resolve_access_rules(s, user_id, rules)
        cred = AC(
            id=new_id(),
            name=name,
            user_id=user_id,
            project_id=ctx.project_id,
            secret_hash=ident.hasher.hash(secret),
            description=description or "",
            expires_at=expires_at,
            unrestricted=unrestricted,
            roles=sorted(roles, key=lambda r: r["name"]),
            access_rules=access_rules,
            created_at=utcnow(),
        )
        s.add(cred)
        s.flush()
    return cred, secret


def list_for_user(ident: Identity, user_id: str, name: str | None = None) -> list[m.ApplicationCredential]:
    with ident.db.reader() as s:
        q = select(AC).where(AC.user_id == user_id).order_by(AC.name)
        if name is not None:
            q = q.where(AC.name == name)
        items = list(s.scalars(q))
        return items


def get(ident: Identity, cred_id: str) -> m.ApplicationCredential:
    with ident.db.reader() as s:
        cred = ident.get(s, AC, cred_id, "application credential")
        return cred


def role_details(ident: Identity, creds: list[m.ApplicationCredential]) -> dict[str, m.Role]:
    ids = {r["id"] for c in creds for r in c.roles}
    if not ids:
        return {}
    with ident.db.reader() as s:
        roles = {r.id: r for r in s.scalars(select(m.Role).where(m.Role.id.in_(ids)))}
        return roles


def delete(ident: Identity, tokens: Any, cred_id: str) -> None:
    with ident.db.session() as s:
        cred = ident.get(s, AC, cred_id, "application credential")
        tokens.revoke(s, app_cred_id=cred.id)
        s.delete(cred)


# -- access rules -----------------------------------------------------------------
_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")
_RULE_KEYS = ("id", "service", "path", "method")


def _check_access_rules(rules: Any) -> list[dict[str, Any]]:
    """Keystone's schema: a list of {path, service, method} (or {id} of an existing rule)."""
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise ValidationError(f"Invalid input for field 'access_rules': {rules!r} is not of type 'array'.")
    for rule in rules:
        if not isinstance(rule, dict):
            raise ValidationError(
                f"Invalid input for field 'access_rules': {rule!r} is not of type 'object'."
            )
        extra = sorted(k for k in rule if k not in _RULE_KEYS)
        if extra:
            raise ValidationError(
                f"Invalid input for field 'access_rules': Additional properties are not allowed ({extra!r})."
            )
        if "id" in rule and not isinstance(rule["id"], str):
            raise ValidationError("Invalid input for field 'access_rules/id': it is not of type 'string'.")
        if "id" not in rule or len(rule) > 1:
            path, service, method = rule.get("path"), rule.get("service"), rule.get("method")
            if not isinstance(path, str) or len(path) > 225 or (path and not path.startswith("/")):
                raise ValidationError(
                    f"Invalid input for field 'access_rules/path': {path!r} is not a valid path."
                )
            if not isinstance(service, str) or not service or len(service) > 64:
                raise ValidationError(
                    f"Invalid input for field 'access_rules/service': {service!r} is not a valid service type."
                )
            if method not in _METHODS:
                raise ValidationError(
                    f"Invalid input for field 'access_rules/method': {method!r} is not one of {list(_METHODS)}."
                )
    return rules


def _rule_view(rule: m.AccessRule) -> dict[str, Any]:
    return {"id": rule.id, "service": rule.service, "path": rule.path, "method": rule.method}


def _resolve_access_rules(s: Session, user_id: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reuse the user's rule by id or by (service, path, method), else create it (as Keystone does)."""
    out: list[dict[str, Any]] = []
    for rule in rules:
        ref = s.get(m.AccessRule, rule["id"]) if rule.get("id") else None
        if ref is not None and ref.user_id != user_id:
            raise NotFound(f"Could not find Access Rule: {rule['id']}.")
        if ref is None and "service" not in rule:
            raise NotFound(f"Could not find Access Rule: {rule['id']}.")
        if ref is None:
            ref = s.scalar(
                select(m.AccessRule).where(
                    m.AccessRule.user_id == user_id,
                    m.AccessRule.service == rule["service"],
                    m.AccessRule.path == rule["path"],
                    m.AccessRule.method == rule["method"],
                )
            )
        if ref is None:
            ref = m.AccessRule(
                id=rule.get("id") or new_id(),
                user_id=user_id,
                service=rule["service"],
                path=rule["path"],
                method=rule["method"],
            )
            s.add(ref)
            s.flush()
        out.append(_rule_view(ref))
    return out


def list_access_rules(ident: Identity, user_id: str, filters: dict[str, str | None]) -> list[m.AccessRule]:
    with ident.db.reader() as s:
        q = select(m.AccessRule).where(m.AccessRule.user_id == user_id).order_by(m.AccessRule.id)
        for key in ("service", "path", "method"):
            if filters.get(key) is not None:
                q = q.where(getattr(m.AccessRule, key) == filters[key])
        return list(s.scalars(q))


def get_access_rule(ident: Identity, user_id: str, rule_id: str) -> m.AccessRule:
    with ident.db.reader() as s:
        rule = s.get(m.AccessRule, rule_id)
        if rule is None or rule.user_id != user_id:
            raise NotFound(f"Could not find Access Rule: {rule_id}.")
        return rule


def delete_access_rule(ident: Identity, user_id: str, rule_id: str) -> None:
    with ident.db.session() as s:
        rule = s.get(m.AccessRule, rule_id)
        if rule is None or rule.user_id != user_id:
            raise NotFound(f"Could not find Access Rule: {rule_id}.")
        for cred in s.scalars(select(AC).where(AC.user_id == user_id)):
            if any(isinstance(r, dict) and r.get("id") == rule_id for r in cred.access_rules or []):
                raise Forbidden("May not delete access rule in use")
        s.delete(rule)
