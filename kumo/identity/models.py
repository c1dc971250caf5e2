"""Identity's tables. Every write to them bumps ``identity_revision`` (see service.db)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kumo.common.db import Base


class IdentityBase(Base):
    __abstract__ = True


def _json() -> Any:
    return mapped_column(JSON, nullable=False, default=dict)


class Domain(IdentityBase):
    __tablename__ = "identity_domains"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict] = _json()
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Project(IdentityBase):
    __tablename__ = "identity_projects"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(ForeignKey("identity_domains.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("identity_projects.id"), nullable=True, index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    tags: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    options: Mapped[dict] = _json()
    extra: Mapped[dict] = _json()
    created_at: Mapped[datetime] = mapped_column(DateTime)


class User(IdentityBase):
    __tablename__ = "identity_users"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(ForeignKey("identity_domains.id"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    password_created_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    password_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # set by the user's own change (POST /v3/users/{id}/password): minimum_password_age applies
    password_self_service: Mapped[bool] = mapped_column(Boolean, default=False)
    # security compliance lockout: consecutive failed password logins and the last one
    failed_auth_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_auth_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    default_project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    options: Mapped[dict] = _json()
    extra: Mapped[dict] = _json()
    created_at: Mapped[datetime] = mapped_column(DateTime)
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class PasswordHistory(IdentityBase):
    """A user's previous password hashes (security compliance: unique_last_password_count)."""

    __tablename__ = "identity_password_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("identity_users.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Group(IdentityBase):
    __tablename__ = "identity_groups"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    domain_id: Mapped[str] = mapped_column(ForeignKey("identity_domains.id"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    extra: Mapped[dict] = _json()


class GroupMember(IdentityBase):
    __tablename__ = "identity_group_members"
    group_id: Mapped[str] = mapped_column(ForeignKey("identity_groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("identity_users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Role(IdentityBase):
    __tablename__ = "identity_roles"
    __table_args__ = (UniqueConstraint("name", "domain_id"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    # "<<null>>"-free: global roles have domain_id NULL; uniqueness of global names is checked in code.
    domain_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict] = _json()
    extra: Mapped[dict] = _json()


class ImpliedRole(IdentityBase):
    __tablename__ = "identity_implied_roles"
    prior_role_id: Mapped[str] = mapped_column(ForeignKey("identity_roles.id", ondelete="CASCADE"), primary_key=True)
    implied_role_id: Mapped[str] = mapped_column(
        ForeignKey("identity_roles.id", ondelete="CASCADE"), primary_key=True
    )


class Assignment(IdentityBase):
    """A role grant: actor (user or group) x target (project, domain or the system)."""

    __tablename__ = "identity_assignments"
    __table_args__ = (Index("ix_identity_assignments_target", "target_id"),)
    # UserProject, GroupProject, UserDomain, GroupDomain, UserSystem, GroupSystem
    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    actor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    target_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "system" for the system
    role_id: Mapped[str] = mapped_column(ForeignKey("identity_roles.id", ondelete="CASCADE"), primary_key=True)
    inherited: Mapped[bool] = mapped_column(Boolean, primary_key=True, default=False)


class Region(IdentityBase):
    __tablename__ = "identity_regions"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    parent_region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    extra: Mapped[dict] = _json()


class Service(IdentityBase):
    __tablename__ = "identity_services"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict] = _json()


class Endpoint(IdentityBase):
    __tablename__ = "identity_endpoints"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("identity_services.id"), index=True)
    interface: Mapped[str] = mapped_column(String(8))
    url: Mapped[str] = mapped_column(Text)
    region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict] = _json()


class ApplicationCredential(IdentityBase):
    __tablename__ = "identity_application_credentials"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ForeignKey("identity_users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(String(64), index=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)
    roles: Mapped[list] = mapped_column(JSON, nullable=False, default=list)  # [{"id","name"}]
    access_rules: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Credential(IdentityBase):
    __tablename__ = "identity_credentials"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    type: Mapped[str] = mapped_column(String(255))
    blob: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict] = _json()


class Trust(IdentityBase):
    __tablename__ = "identity_trusts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    trustor_user_id: Mapped[str] = mapped_column(String(64), index=True)
    trustee_user_id: Mapped[str] = mapped_column(String(64), index=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    impersonation: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    remaining_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    redelegation_count: Mapped[int] = mapped_column(Integer, default=0)
    redelegated_trust_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    roles: Mapped[list] = mapped_column(JSON, nullable=False, default=list)  # role ids
    extra: Mapped[dict] = _json()
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class RevocationEvent(IdentityBase):
    """Tokens issued before ``issued_before`` that match every non-null field are revoked."""

    __tablename__ = "identity_revocations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    domain_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    audit_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    audit_chain_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    trust_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    app_cred_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    issued_before: Mapped[float] = mapped_column(Float)  # epoch seconds
    revoked_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Revision(IdentityBase):
    """One row counting writes, so caches of rendered tokens know when to look again."""

    __tablename__ = "identity_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Policy(IdentityBase):
    """``/v3/policies``: opaque policy blobs (deprecated in Keystone, still served)."""

    __tablename__ = "identity_policies"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    blob: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict] = _json()


class EndpointGroup(IdentityBase):
    """OS-EP-FILTER: a named set of endpoint filters (service_id, interface, region_id)."""

    __tablename__ = "identity_endpoint_groups"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    filters: Mapped[dict] = _json()


class ProjectEndpoint(IdentityBase):
    """OS-EP-FILTER: an endpoint associated directly with a project."""

    __tablename__ = "identity_project_endpoints"
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("identity_endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(
        ForeignKey("identity_projects.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ProjectEndpointGroup(IdentityBase):
    """OS-EP-FILTER: an endpoint group associated with a project."""

    __tablename__ = "identity_project_endpoint_groups"
    endpoint_group_id: Mapped[str] = mapped_column(
        ForeignKey("identity_endpoint_groups.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(
        ForeignKey("identity_projects.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class DomainConfig(IdentityBase):
    """One domain-specific configuration option (``/v3/domains/{id}/config``)."""

    __tablename__ = "identity_domain_configs"
    domain_id: Mapped[str] = mapped_column(
        ForeignKey("identity_domains.id", ondelete="CASCADE"), primary_key=True
    )
    group: Mapped[str] = mapped_column(String(255), primary_key=True)
    option: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)


class OAuthConsumer(IdentityBase):
    """OS-OAUTH1 consumers."""

    __tablename__ = "identity_oauth_consumers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret: Mapped[str] = mapped_column(String(64))
    extra: Mapped[dict] = _json()


class AccessRule(IdentityBase):
    """An application credential access rule, owned by a user and shared by that user's credentials."""

    __tablename__ = "identity_access_rules"
    __table_args__ = (UniqueConstraint("user_id", "service", "path", "method"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("identity_users.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(225))
    method: Mapped[str] = mapped_column(String(16))
