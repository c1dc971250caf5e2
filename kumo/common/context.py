"""The request context passed explicitly from the HTTP layer into services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str = ""
    auth_token: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    user_domain_id: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None  # domain-scoped token
    domain_name: str | None = None
    system_scope: str | None = None  # "all" for a system-scoped token
    roles: frozenset[str] = field(default_factory=frozenset)
    methods: tuple[str, ...] = ()
    audit_ids: tuple[str, ...] = ()
    application_credential_id: str | None = None
    trust_id: str | None = None
    expires_at: str | None = None
    is_admin_project: bool = False
    token: dict[str, Any] | None = None  # the token body identity returned

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def scope(self) -> str:
        if self.system_scope:
            return "system"
        if self.domain_id:
            return "domain"
        if self.project_id:
            return "project"
        return "unscoped"

    def has_role(self, *names: str) -> bool:
        return any(n.lower() in self.roles for n in names)

    @classmethod
    def from_token(cls, body: dict[str, Any], auth_token: str, request_id: str = "") -> RequestContext:
        """Build from a Keystone v3 token body (``{"token": {...}}`` or its inside)."""
        tok = body.get("token", body)
        user = tok.get("user") or {}
        project = tok.get("project") or {}
        domain = tok.get("domain") or {}
        system = tok.get("system") or {}
        app_cred = tok.get("application_credential") or {}
        trust = tok.get("OS-TRUST:trust") or {}
        return cls(
            request_id=request_id,
            auth_token=auth_token,
            user_id=user.get("id"),
            user_name=user.get("name"),
            user_domain_id=(user.get("domain") or {}).get("id"),
            project_id=project.get("id"),
            project_name=project.get("name"),
            project_domain_id=(project.get("domain") or {}).get("id"),
            domain_id=domain.get("id"),
            domain_name=domain.get("name"),
            system_scope="all" if system.get("all") else None,
            roles=frozenset(r["name"].lower() for r in tok.get("roles") or []),
            methods=tuple(tok.get("methods") or ()),
            audit_ids=tuple(tok.get("audit_ids") or ()),
            application_credential_id=app_cred.get("id"),
            trust_id=trust.get("id"),
            expires_at=tok.get("expires_at"),
            is_admin_project=bool(tok.get("is_admin_project", False)),
            token=tok,
        )
