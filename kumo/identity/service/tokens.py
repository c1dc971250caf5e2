"""Token operations: authenticate, issue, validate, revoke, render."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import InvalidToken
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from kumo.common.errors import Forbidden, NotFound
from kumo.identity import models as m
from kumo.identity.errors import AuthFailed, ValidationError
from kumo.identity.service import compliance
from kumo.identity.service.core import Identity, iso, utcnow
from kumo.identity.service.grants import effective_roles, implied_closure
from kumo.identity.tokens import TokenPayload, new_audit_id


def _epoch(when: datetime) -> float:
    return when.replace(tzinfo=UTC).timestamp()


def _from_epoch(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


class Tokens:
    def __init__(self, ident: Identity) -> None:
        self.ident = ident
        self._cache: dict[tuple[str, bool], tuple[int, dict[str, Any], TokenPayload]] = {}
        self._catalog: tuple[int, list[dict[str, Any]]] | None = None

    # -- issue ---------------------------------------------------------------------
    def authenticate(
        self, body: Any, caller_token: str | None = None, *, catalog: bool = True
    ) -> tuple[str, dict[str, Any]]:
        """Handle ``POST /v3/auth/tokens``; returns (token id, token body)."""
        if not isinstance(body, dict) or not isinstance(body.get("auth"), dict):
            raise ValidationError("Expecting to find auth in request body.")
        auth = body["auth"]
        identity = auth.get("identity")
        if not isinstance(identity, dict):
            raise ValidationError("'identity' is a required property.")
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods or not all(isinstance(x, str) for x in methods):
            raise ValidationError("'methods' must be a non-empty list of strings.")
        scope = auth.get("scope")
        # Everything is checked in a read-only transaction, so a slow bcrypt check never holds
        # the database's write lock; the few writes a login makes are applied afterwards.
        try:
            with self.ident.db.reader() as s:
                s.info["effects"] = effects = []
                if "application_credential" in methods:
                    payload = self._auth_app_cred(s, identity.get("application_credential"), scope)
                elif "token" in methods:
                    payload = self._auth_token(s, identity.get("token"), scope, caller_token)
                elif "password" in methods:
                    payload = self._auth_password(s, identity.get("password"), scope)
                else:
                    raise AuthFailed(f"Unsupported authentication method: {methods[0]}.")
                self._check_scope_and_roles(s, payload)
                token = self.ident.formatter.encode(payload)
                rendered = self.render(s, payload, catalog=catalog)
        except compliance.BadPassword as exc:
            compliance.record_failure(self.ident, exc.user_id)  # its own short write
            raise
        if effects:
            self._apply(effects)
        return token, rendered

    def _apply(self, effects: list[tuple[str, str]]) -> None:
        """The writes a successful login makes: reset a failure count, use up a trust."""
        with self.ident.db.session() as s:
            for kind, ident in effects:
                if kind == "clear_failures":
                    user = s.get(m.User, ident)
                    if user is not None:
                        compliance.clear_failures(user)
                elif kind == "use_trust":
                    used = s.execute(
                        update(m.Trust)
                        .where(m.Trust.id == ident, m.Trust.remaining_uses > 0)
                        .values(remaining_uses=m.Trust.remaining_uses - 1)
                    )
                    if not used.rowcount:  # a concurrent login took the last use
                        raise AuthFailed("The trust has no remaining uses.")

    def _user_by_ref(self, s: Session, ref: Any) -> m.User:
        if not isinstance(ref, dict):
            raise ValidationError("'user' is a required property.")
        if ref.get("id"):
            user = s.get(m.User, str(ref["id"]))
        elif ref.get("name"):
            domain = self._domain_by_ref(s, ref.get("domain"), auth=True)
            user = s.scalar(select(m.User).where(m.User.name == ref["name"], m.User.domain_id == domain.id))
        else:
            raise ValidationError("Expecting to find id or name in user.")
        if user is None:
            raise AuthFailed()
        return user

    def _domain_by_ref(self, s: Session, ref: Any, auth: bool = False) -> m.Domain:
        if not isinstance(ref, dict):
            raise ValidationError("Expecting to find domain id or name.")
        if ref.get("id"):
            domain = s.get(m.Domain, str(ref["id"]))
        elif ref.get("name"):
            domain = s.scalar(select(m.Domain).where(m.Domain.name == ref["name"]))
        else:
            raise ValidationError("Expecting to find domain id or name.")
        if domain is None:
            raise AuthFailed() if auth else AuthFailed("Could not find the domain to scope to.")
        return domain

    def _check_user(self, s: Session, user: m.User) -> None:
        domain = s.get(m.Domain, user.domain_id)
        if not user.enabled or domain is None or not domain.enabled:
            raise AuthFailed()

    def _auth_password(self, s: Session, block: Any, scope: Any) -> TokenPayload:
        if not isinstance(block, dict):
            raise ValidationError("'password' is a required property.")
        ref = block.get("user")
        password = ref.get("password") if isinstance(ref, dict) else None
        if not isinstance(password, str):
            raise ValidationError("'password' is a required property of user.")
        try:
            user = self._user_by_ref(s, ref)
        except AuthFailed:
            self.ident.hasher.verify(password, None)  # same cost as a real check
            raise
        compliance.check_not_locked(self.ident.settings, user)
        if not self.ident.hasher.verify(password, user.password_hash):
            raise compliance.BadPassword(user.id)
        self._check_user(s, user)
        if compliance.password_expired(user):
            raise AuthFailed(f"The password is expired and needs to be changed for user: {user.id}.")
        if user.failed_auth_count or user.failed_auth_at is not None:
            s.info["effects"].append(("clear_failures", user.id))
        return self._scoped(s, user, ("password",), scope)

    def _auth_token(self, s: Session, block: Any, scope: Any, caller: str | None) -> TokenPayload:
        token_id = block.get("id") if isinstance(block, dict) else None
        token_id = token_id or caller
        if not token_id:
            raise ValidationError("'id' is a required property of token.")
        parent = self._decode_valid(s, token_id)
        if parent.app_cred_id or parent.trust_id:
            raise Forbidden("A token created from an application credential or trust cannot be rescoped.")
        user = s.get(m.User, parent.user_id)
        if user is None:
            raise AuthFailed()
        self._check_user(s, user)
        methods = tuple(dict.fromkeys((*parent.methods, "token")))
        fresh = self._scoped(s, user, methods, scope)
        # A rescoped token keeps its parent's expiry and joins its audit chain.
        return replace(fresh, expires_at=parent.expires_at, audit_ids=(new_audit_id(), parent.audit_chain_id))

    def _auth_app_cred(self, s: Session, block: Any, scope: Any) -> TokenPayload:
        if not isinstance(block, dict) or not isinstance(block.get("secret"), str):
            raise ValidationError("'secret' is a required property of application_credential.")
        if scope:
            raise AuthFailed("Application credentials cannot request a scope.")
        if block.get("id"):
            cred = s.get(m.ApplicationCredential, str(block["id"]))
        elif block.get("name"):
            user = self._user_by_ref(s, block.get("user"))
            cred = s.scalar(
                select(m.ApplicationCredential).where(
                    m.ApplicationCredential.name == block["name"], m.ApplicationCredential.user_id == user.id
                )
            )
        else:
            raise ValidationError("Expecting to find id or name in application_credential.")
        if cred is None or not self.ident.hasher.verify(block["secret"], cred.secret_hash):
            raise AuthFailed()
        if cred.expires_at and cred.expires_at <= utcnow():
            raise AuthFailed("The application credential has expired.")
        user = s.get(m.User, cred.user_id)
        if user is None:
            raise AuthFailed()
        self._check_user(s, user)
        now = time.time()
        expires = now + self.ident.settings.token_expiration
        if cred.expires_at:
            expires = min(expires, _epoch(cred.expires_at))
        return TokenPayload(
            user_id=user.id,
            methods=("application_credential",),
            expires_at=expires,
            issued_at=now,
            audit_ids=(new_audit_id(),),
            project_id=cred.project_id,
            app_cred_id=cred.id,
        )

    def _scoped(self, s: Session, user: m.User, methods: tuple[str, ...], scope: Any) -> TokenPayload:
        now = time.time()
        base = TokenPayload(
            user_id=user.id,
            methods=methods,
            expires_at=now + self.ident.settings.token_expiration,
            issued_at=now,
            audit_ids=(new_audit_id(),),
        )
        if scope in (None, "unscoped"):
            project = s.get(m.Project, user.default_project_id) if user.default_project_id else None
            if project is not None and project.enabled and effective_roles(s, user.id, project=project):
                return replace(base, project_id=project.id)
            return base
        if not isinstance(scope, dict):
            raise ValidationError("Invalid scope.")
        if "project" in scope:
            ref = scope["project"]
            if not isinstance(ref, dict):
                raise ValidationError("Invalid project scope.")
            if ref.get("id"):
                project = s.get(m.Project, str(ref["id"]))
            elif ref.get("name"):
                domain = self._domain_by_ref(s, ref.get("domain"))
                project = s.scalar(
                    select(m.Project).where(m.Project.name == ref["name"], m.Project.domain_id == domain.id)
                )
            else:
                raise ValidationError("Expecting to find id or name in project.")
            if project is None:
                raise AuthFailed("Could not find the project to scope to.")
            return replace(base, project_id=project.id)
        if "domain" in scope:
            return replace(base, domain_id=self._domain_by_ref(s, scope["domain"]).id)
        if "system" in scope:
            if scope["system"] != {"all": True}:
                raise ValidationError("The only system scope is {\"all\": true}.")
            return replace(base, system=True)
        if "OS-TRUST:trust" in scope:
            return self._trust_scope(s, user, base, scope["OS-TRUST:trust"])
        raise ValidationError("Invalid scope.")

    def _trust_scope(self, s: Session, user: m.User, base: TokenPayload, ref: Any) -> TokenPayload:
        trust_id = ref.get("id") if isinstance(ref, dict) else None
        trust = s.get(m.Trust, trust_id) if trust_id else None
        if trust is None or trust.deleted:
            raise NotFound(f"Could not find trust: {trust_id}.")
        if trust.trustee_user_id != user.id:
            raise Forbidden("The user is not the trustee of this trust.")
        trustor = s.get(m.User, trust.trustor_user_id)
        if trustor is None:
            raise AuthFailed()
        self._check_user(s, trustor)
        if trust.expires_at and trust.expires_at <= utcnow():
            raise AuthFailed("The trust has expired.")
        if trust.remaining_uses is not None:
            if trust.remaining_uses <= 0:
                raise AuthFailed("The trust has no remaining uses.")
            s.info["effects"].append(("use_trust", trust.id))
        expires = base.expires_at
        if trust.expires_at:
            expires = min(expires, _epoch(trust.expires_at))
        return replace(base, project_id=trust.project_id, trust_id=trust.id, expires_at=expires)

    def _check_scope_and_roles(self, s: Session, p: TokenPayload) -> None:
        if p.project_id:
            project = s.get(m.Project, p.project_id)
            domain = s.get(m.Domain, project.domain_id) if project else None
            if project is None or not project.enabled or domain is None or not domain.enabled:
                raise AuthFailed(f"Project {p.project_id} is disabled or could not be found.")
        if p.domain_id:
            domain = s.get(m.Domain, p.domain_id)
            if domain is None or not domain.enabled:
                raise AuthFailed(f"Domain {p.domain_id} is disabled or could not be found.")
        if (p.project_id or p.domain_id or p.system) and not self._roles(s, p):
            target = p.project_id or p.domain_id or "the system"
            raise AuthFailed(f"User {p.user_id} has no access to {target}.")

    # -- validate --------------------------------------------------------------
    def _decode_valid(self, s: Session, token: str, allow_expired: bool = False) -> TokenPayload:
        try:
            payload = self.ident.formatter.decode(token)
        except (InvalidToken, ValueError, TypeError):
            raise NotFound("Failed to validate token") from None
        now = time.time()
        limit = payload.expires_at + (self.ident.settings.allow_expired_window if allow_expired else 0)
        if now >= limit:
            raise NotFound("Failed to validate token")
        if self.is_revoked(s, payload):
            raise NotFound("Failed to validate token")
        return payload

    def validate(self, token: str, *, catalog: bool = True, allow_expired: bool = False) -> dict[str, Any]:
        """The body of a valid token; NotFound for an invalid, expired or revoked one."""
        key = (token, catalog)
        with self.ident.db.reader() as s:
            revision = self.ident.revision(s)
            hit = self._cache.get(key)
            if hit is not None and hit[0] == revision and not allow_expired:
                if time.time() < hit[2].expires_at:
                    return hit[1]
                raise NotFound("Failed to validate token")
            payload = self._decode_valid(s, token, allow_expired)
            try:
                self._check_scope_and_roles(s, payload)
                body = self.render(s, payload, catalog=catalog)
            except (AuthFailed, NotFound):
                raise NotFound("Failed to validate token") from None
        if not allow_expired:
            if len(self._cache) > 20000:
                self._cache.clear()
            self._cache[key] = (revision, body, payload)
        return body

    def payload_of(self, token: str) -> TokenPayload:
        with self.ident.db.reader() as s:
            return self._decode_valid(s, token)

    def is_revoked(self, s: Session, p: TokenPayload) -> bool:
        E = m.RevocationEvent
        user = s.get(m.User, p.user_id)
        project = s.get(m.Project, p.project_id) if p.project_id else None
        domains = {d for d in (user.domain_id if user else None, project.domain_id if project else None, p.domain_id) if d}
        if user is None:
            return True
        q = select(E.id).where(
            E.issued_before >= p.issued_at,
            or_(E.user_id.is_(None), E.user_id == p.user_id),
            or_(E.project_id.is_(None), E.project_id == p.project_id),
            or_(E.domain_id.is_(None), E.domain_id.in_(domains)),
            or_(E.audit_id.is_(None), E.audit_id == p.audit_id),
            or_(E.audit_chain_id.is_(None), E.audit_chain_id == p.audit_chain_id),
            or_(E.trust_id.is_(None), E.trust_id == p.trust_id),
            or_(E.app_cred_id.is_(None), E.app_cred_id == p.app_cred_id),
        )
        return s.scalar(q.limit(1)) is not None

    # -- revoke ----------------------------------------------------------------
    def revoke(self, s: Session, **match: str | None) -> None:
        """Record that tokens matching ``match`` issued until now are revoked."""
        now = time.time()
        s.add(
            m.RevocationEvent(
                issued_before=now,
                revoked_at=now,
                expires_at=now + self.ident.settings.token_expiration + self.ident.settings.allow_expired_window,
                **match,
            )
        )
        s.info["bump"] = True

    def revoke_token(self, token: str) -> None:
        with self.ident.db.session() as s:
            payload = self._decode_valid(s, token)
            self.revoke(s, audit_id=payload.audit_id)

    def prune(self) -> int:
        with self.ident.db.session() as s:
            res = s.execute(delete(m.RevocationEvent).where(m.RevocationEvent.expires_at < time.time()))
            return res.rowcount or 0

    # -- render ----------------------------------------------------------------
    def _roles(self, s: Session, p: TokenPayload) -> list[m.Role]:
        if p.trust_id:
            return self._trust_roles(s, p.trust_id)
        if p.project_id:
            project = s.get(m.Project, p.project_id)
            roles = effective_roles(s, p.user_id, project=project) if project else []
        elif p.domain_id:
            roles = effective_roles(s, p.user_id, domain_id=p.domain_id)
        elif p.system:
            roles = effective_roles(s, p.user_id, system=True)
        else:
            return []
        if p.app_cred_id:
            cred = s.get(m.ApplicationCredential, p.app_cred_id)
            if cred is None:
                return []
            allowed = {r["id"] for r in cred.roles}
            roles = [r for r in roles if r.id in allowed]
        return roles

    def _trust_roles(self, s: Session, trust_id: str) -> list[m.Role]:
        """Keystone's rule: the trust's roles plus their implied roles, all still held by the
        original trustor on the project (else none at all); domain-specific roles left out."""
        trust = s.get(m.Trust, trust_id)
        if trust is None or trust.deleted or not trust.project_id:
            return []
        original, seen = trust, {trust.id}
        while original.redelegated_trust_id and original.redelegated_trust_id not in seen:
            parent = s.get(m.Trust, original.redelegated_trust_id)
            if parent is None:
                return []
            seen.add(parent.id)
            original = parent
        project = s.get(m.Project, trust.project_id)
        if project is None:
            return []
        held = {r.id for r in effective_roles(s, original.trustor_user_id, project=project)}
        wanted = implied_closure(s, set(trust.roles))
        if not wanted <= held:
            return []
        roles = [r for r in (s.get(m.Role, rid) for rid in wanted) if r is not None and r.domain_id is None]
        return sorted(roles, key=lambda r: r.name)

    def render(self, s: Session, p: TokenPayload, *, catalog: bool = True) -> dict[str, Any]:
        user = s.get(m.User, p.user_id)
        if p.trust_id:
            # An impersonating trust's token speaks for the trustor.
            trust = s.get(m.Trust, p.trust_id)
            if trust is not None and trust.impersonation:
                user = s.get(m.User, trust.trustor_user_id)
        if user is None:
            raise NotFound("Failed to validate token")
        user_domain = s.get(m.Domain, user.domain_id)
        tok: dict[str, Any] = {
            "methods": list(p.methods),
            "user": {
                "id": user.id,
                "name": user.name,
                "domain": {"id": user_domain.id, "name": user_domain.name},
                "password_expires_at": iso(user.password_expires_at),
            },
            "audit_ids": list(p.audit_ids),
            "expires_at": iso(_from_epoch(p.expires_at)),
            "issued_at": iso(_from_epoch(p.issued_at)),
        }
        scoped = bool(p.project_id or p.domain_id or p.system)
        if p.project_id:
            project = s.get(m.Project, p.project_id)
            pdom = s.get(m.Domain, project.domain_id)
            tok["project"] = {"id": project.id, "name": project.name, "domain": {"id": pdom.id, "name": pdom.name}}
            tok["is_domain"] = False
            tok["is_admin_project"] = True
        elif p.domain_id:
            domain = s.get(m.Domain, p.domain_id)
            tok["domain"] = {"id": domain.id, "name": domain.name}
        elif p.system:
            tok["system"] = {"all": True}
        if scoped:
            tok["roles"] = [{"id": r.id, "name": r.name} for r in self._roles(s, p)]
            if catalog:
                tok["catalog"] = self.catalog(s, p.project_id)
        if p.app_cred_id:
            cred = s.get(m.ApplicationCredential, p.app_cred_id)
            if cred is None or (cred.expires_at and cred.expires_at <= utcnow()):
                raise NotFound("Failed to validate token")
            tok["application_credential"] = {"id": cred.id, "name": cred.name, "restricted": not cred.unrestricted}
        if p.trust_id:
            trust = s.get(m.Trust, p.trust_id)
            if trust is None or trust.deleted:
                raise NotFound("Failed to validate token")
            tok["OS-TRUST:trust"] = {
                "id": trust.id,
                "impersonation": trust.impersonation,
                "trustee_user": {"id": trust.trustee_user_id},
                "trustor_user": {"id": trust.trustor_user_id},
            }
        return {"token": tok}

    def catalog(self, s: Session, project_id: str | None = None) -> list[dict[str, Any]]:
        """The service catalog, with ``$(project_id)s`` in URLs filled in for ``project_id``."""
        raw = self._raw_catalog(s)
        if not any("$(" in e["url"] or "%(" in e["url"] for svc in raw for e in svc["endpoints"]):
            return raw
        result = []
        for svc in raw:
            eps = []
            for e in svc["endpoints"]:
                url = _fill(e["url"], project_id)
                if url is not None:
                    eps.append({**e, "url": url})
            result.append({**svc, "endpoints": eps})
        return result

    def _raw_catalog(self, s: Session) -> list[dict[str, Any]]:
        revision = self.ident.revision(s)
        if self._catalog is not None and self._catalog[0] == revision:
            return self._catalog[1]
        services = s.scalars(select(m.Service).where(m.Service.enabled)).all()
        endpoints = s.scalars(select(m.Endpoint).where(m.Endpoint.enabled)).all()
        result = []
        for svc in sorted(services, key=lambda x: x.type):
            eps = [
                {"id": e.id, "interface": e.interface, "region": e.region_id, "region_id": e.region_id, "url": e.url}
                for e in endpoints
                if e.service_id == svc.id
            ]
            result.append({"id": svc.id, "type": svc.type, "name": svc.name, "endpoints": eps})
        self._catalog = (revision, result)
        return result


def _fill(url: str, project_id: str | None) -> str | None:
    """Keystone's endpoint templating; an endpoint that needs a project is left out without one."""
    for key in ("$(project_id)s", "$(tenant_id)s", "%(project_id)s", "%(tenant_id)s"):
        if key in url:
            if project_id is None:
                return None
            url = url.replace(key, project_id)
    return url
