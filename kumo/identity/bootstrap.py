"""First-start bootstrap: the default domain, projects, roles, users and catalog.

Idempotent: run on every start, it creates what is missing and brings catalog
URLs up to date, but never resets a password or role someone changed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.identity import models as m
from kumo.identity.service.core import DEFAULT_DOMAIN_ID, Identity, new_id, utcnow

ROLES = ("admin", "member", "reader", "service", "manager", "ResellerAdmin")
IMPLIES = (("admin", "member"), ("manager", "member"), ("member", "reader"))


@dataclass(frozen=True)
class Endpoint:
    type: str
    name: str
    url: str


def _role(s: Session, name: str) -> m.Role:
    role = s.scalar(select(m.Role).where(m.Role.name == name, m.Role.domain_id.is_(None)))
    if role is None:
        role = m.Role(id=new_id(), name=name, description="", options={}, extra={})
        s.add(role)
        s.flush()
    return role


def _project(s: Session, name: str, description: str) -> m.Project:
    project = s.scalar(select(m.Project).where(m.Project.name == name, m.Project.domain_id == DEFAULT_DOMAIN_ID))
    if project is None:
        project = m.Project(
            id=new_id(), name=name, domain_id=DEFAULT_DOMAIN_ID, description=description, enabled=True,
            tags=[], options={}, extra={}, created_at=utcnow(),
        )
        s.add(project)
        s.flush()
    return project


def _user(s: Session, ident: Identity, name: str, password: str, project: m.Project) -> m.User:
    user = s.scalar(select(m.User).where(m.User.name == name, m.User.domain_id == DEFAULT_DOMAIN_ID))
    if user is None:
        user = m.User(
            id=new_id(), name=name, domain_id=DEFAULT_DOMAIN_ID, enabled=True,
            password_hash=ident.hasher.hash(password), password_created_at=utcnow(),
            default_project_id=project.id, options={}, extra={}, created_at=utcnow(),
        )
        s.add(user)
        s.flush()
    return user


def _grant(s: Session, kind: str, actor: str, target: str, role: m.Role) -> None:
    key = {"type": kind, "actor_id": actor, "target_id": target, "role_id": role.id, "inherited": False}
    if s.get(m.Assignment, key) is None:
        s.add(m.Assignment(**key))


def bootstrap(
    ident: Identity, *, admin_password: str, demo_password: str, region: str, endpoints: list[Endpoint]
) -> None:
    with ident.db.session() as s:
        if s.get(m.Revision, 1) is None:
            s.add(m.Revision(id=1, value=0))
        if s.get(m.Domain, DEFAULT_DOMAIN_ID) is None:
            s.add(m.Domain(id=DEFAULT_DOMAIN_ID, name="Default", description="The default domain",
                           enabled=True, extra={}, created_at=utcnow()))
            s.flush()
        roles = {name: _role(s, name) for name in ROLES}
        for prior, implied in IMPLIES:
            key = {"prior_role_id": roles[prior].id, "implied_role_id": roles[implied].id}
            if s.get(m.ImpliedRole, key) is None:
                s.add(m.ImpliedRole(**key))
        admin_project = _project(s, "admin", "Bootstrap project for initializing the cloud.")
        _project(s, "service", "Project for the services' own users.")
        demo_project = _project(s, "demo", "A project for the member user.")
        admin = _user(s, ident, "admin", admin_password, admin_project)
        demo = _user(s, ident, "demo", demo_password, demo_project)
        _grant(s, "UserProject", admin.id, admin_project.id, roles["admin"])
        _grant(s, "UserSystem", admin.id, "system", roles["admin"])
        _grant(s, "UserDomain", admin.id, DEFAULT_DOMAIN_ID, roles["admin"])
        _grant(s, "UserProject", demo.id, demo_project.id, roles["member"])
        if s.get(m.Region, region) is None:
            s.add(m.Region(id=region, description="", extra={}))
        for ep in endpoints:
            _ensure_endpoint(s, ep, region)


def _ensure_endpoint(s: Session, ep: Endpoint, region: str) -> None:
    service = s.scalar(select(m.Service).where(m.Service.type == ep.type))
    if service is None:
        service = m.Service(id=new_id(), type=ep.type, name=ep.name, description="", enabled=True, extra={})
        s.add(service)
        s.flush()
    existing = {e.interface: e for e in s.scalars(select(m.Endpoint).where(m.Endpoint.service_id == service.id))}
    for interface in ("public", "internal", "admin"):
        current = existing.get(interface)
        if current is None:
            s.add(m.Endpoint(id=new_id(), service_id=service.id, interface=interface, url=ep.url,
                             region_id=region, enabled=True, extra={}))
        elif current.url != ep.url:
            current.url = ep.url
