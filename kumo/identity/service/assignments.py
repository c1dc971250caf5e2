"""Role grants (actor x target x role) and the ``/v3/role_assignments`` listing.

Assignment refs are plain dicts in Keystone's internal shape: ``user_id`` or
``group_id``; ``project_id``, ``domain_id`` or ``system``; ``role_id``;
``inherited_to_projects`` for OS-INHERIT grants; and ``indirect`` saying where
an effective assignment came from (a group, an inherited target, a prior role).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.common.errors import Forbidden, NotFound
from kumo.identity import models as m
from kumo.identity.errors import ValidationError, not_found
from kumo.identity.service.core import Identity
from kumo.identity.service.grants import SYSTEM, project_ancestors

Ref = dict[str, Any]
PROJECT_DOMAIN_TYPES = ("UserProject", "GroupProject", "UserDomain", "GroupDomain")


# -- grants -------------------------------------------------------------------------


@dataclass
class Grant:
    actor: str  # "user" | "group"
    actor_id: str
    target: str  # "project" | "domain" | "system"
    target_id: str
    role_id: str | None
    inherited: bool = False
    actor_domain: str | None = None  # None when the actor no longer exists
    target_domain: str | None = None

    @property
    def kind(self) -> str:
        return self.actor.capitalize() + self.target.capitalize()

    def key(self, role_id: str) -> dict[str, Any]:
        return {
            "type": self.kind,
            "actor_id": self.actor_id,
            "target_id": self.target_id,
            "role_id": role_id,
            "inherited": self.inherited,
        }


Authorize = Callable[[Grant | None], None]


def _resolve(
    s: Session, g: Grant, authorize: Authorize, *, allow_missing_actor: bool = False
) -> m.Role | None:
    """Look up role, actor and target (404s in Keystone's order), then authorize."""
    try:
        role = Identity.get(s, m.Role, g.role_id, "role") if g.role_id is not None else None
        actor = s.get(m.User if g.actor == "user" else m.Group, g.actor_id)
        if actor is None and not allow_missing_actor:
            raise not_found(g.actor, g.actor_id)
        g.actor_domain = actor.domain_id if actor is not None else None
        if g.target == "project":
            g.target_domain = Identity.get(s, m.Project, g.target_id, "project").domain_id
        elif g.target == "domain":
            g.target_domain = Identity.get(s, m.Domain, g.target_id, "domain").id
    except NotFound:
        authorize(None)
        raise
    authorize(g)
    return role


def _members(s: Session, group_id: str) -> list[str]:
    return list(s.scalars(select(m.GroupMember.user_id).where(m.GroupMember.group_id == group_id)))


def create_grant(ident: Identity, g: Grant, authorize: Authorize) -> None:
    with ident.db.session() as s:
        role = _resolve(s, g, authorize)
        assert role is not None
        if g.target == "project" and role.domain_id and role.domain_id != g.target_domain:
            raise Forbidden(
                f"Project {g.target_id} must be in the same domain as the role {role.id} being assigned."
            )
        if g.target == "system" and role.domain_id:
            raise ValidationError(
                f"Role {role.id} is a domain-specific role. Unable to use a domain-specific role in a system assignment."
            )
        if s.get(m.Assignment, g.key(role.id)) is None:
            s.add(m.Assignment(**g.key(role.id)))


def check_grant(ident: Identity, g: Grant, authorize: Authorize) -> None:
    with ident.db.reader() as s:
        role = _resolve(s, g, authorize)
        assert role is not None
        if s.get(m.Assignment, g.key(role.id)) is None:
            raise _no_assignment(g)


def _no_assignment(g: Grant) -> NotFound:
    return NotFound(
        f"Could not find role assignment with role: {g.role_id}, user or group: {g.actor_id}, "
        f"project, domain, or system: {g.target_id}."
    )


def list_grants(ident: Identity, g: Grant, authorize: Authorize) -> list[m.Role]:
    with ident.db.reader() as s:
        _resolve(s, g, authorize)
        A = m.Assignment
        ids = s.scalars(
            select(A.role_id).where(
                A.type == g.kind,
                A.actor_id == g.actor_id,
                A.target_id == g.target_id,
                A.inherited == g.inherited,
            )
        ).all()
        if not ids:
            return []
        roles = list(s.scalars(select(m.Role).where(m.Role.id.in_(ids)).order_by(m.Role.name)))
        return roles


def revoke_grant(ident: Identity, tokens: Any, g: Grant, authorize: Authorize) -> None:
    with ident.db.session() as s:
        role = _resolve(s, g, authorize, allow_missing_actor=True)
        assert role is not None
        row = s.get(m.Assignment, g.key(role.id))
        if row is None:
            raise _no_assignment(g)
        s.delete(row)
        users = [g.actor_id] if g.actor == "user" else _members(s, g.actor_id)
        for user_id in users:
            if g.inherited or g.target == "system":
                tokens.revoke(s, user_id=user_id)
            elif g.target == "project":
                tokens.revoke(s, user_id=user_id, project_id=g.target_id)
            else:
                tokens.revoke(s, user_id=user_id, domain_id=g.target_id)


# -- role assignment listing ------------------------------------------------------------


@dataclass
class Filters:
    role_id: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    system: bool = False
    domain_id: str | None = None
    project_id: str | None = None
    include_subtree: bool = False
    inherited: bool | None = None
    effective: bool = False
    include_names: bool = False


def _ref(a: m.Assignment) -> Ref:
    ref: Ref = {"user_id" if a.type.startswith("User") else "group_id": a.actor_id}
    if a.type.endswith("Project"):
        ref["project_id"] = a.target_id
    elif a.type.endswith("Domain"):
        ref["domain_id"] = a.target_id
    else:
        ref["system"] = {"all": True}
    ref["role_id"] = a.role_id
    if a.inherited:
        ref["inherited_to_projects"] = "projects"
    return ref


def _rows(
    s: Session,
    *,
    role_id: str | None = None,
    user_id: str | None = None,
    group_ids: list[str] | None = None,
    domain_id: str | None = None,
    project_ids: list[str] | None = None,
    inherited: bool | None = None,
) -> list[Ref]:
    """Project and domain assignments matching the filters (Keystone's driver query)."""
    types = list(PROJECT_DOMAIN_TYPES)
    if group_ids or user_id:
        types = [t for t in types if t.startswith("Group" if group_ids else "User")]
    if project_ids or domain_id:
        types = [t for t in types if t.endswith("Project" if project_ids else "Domain")]
    A = m.Assignment
    q = select(A).where(A.type.in_(types))
    if role_id:
        q = q.where(A.role_id == role_id)
    actors = group_ids or ([user_id] if user_id else None)
    if actors:
        q = q.where(A.actor_id.in_(actors))
    targets = project_ids or ([domain_id] if domain_id else None)
    if targets:
        q = q.where(A.target_id.in_(targets))
    if inherited is not None:
        q = q.where(A.inherited == inherited)
    q = q.order_by(A.type, A.target_id, A.actor_id, A.role_id)
    return [_ref(a) for a in s.scalars(q)]


def _system_rows(s: Session, f: Filters) -> list[Ref]:
    A = m.Assignment
    q = select(A).where(A.type.in_(("UserSystem", "GroupSystem")), A.target_id == SYSTEM)
    if f.user_id:
        q = q.where(A.type == "UserSystem", A.actor_id == f.user_id)
    elif f.group_id:
        q = q.where(A.type == "GroupSystem", A.actor_id == f.group_id)
    if f.role_id:
        q = q.where(A.role_id == f.role_id)
    return [_ref(a) for a in s.scalars(q.order_by(A.type, A.actor_id, A.role_id))]


def subtree(s: Session, project_id: str) -> list[str]:
    """Ids of every project below ``project_id`` (not itself)."""
    found: list[str] = []
    frontier = [project_id]
    while frontier:
        children = list(s.scalars(select(m.Project.id).where(m.Project.parent_id.in_(frontier))))
        children = [c for c in children if c not in found and c != project_id]
        found += children
        frontier = children
    return found


def _domain_projects(s: Session, domain_id: str) -> list[str]:
    return list(
        s.scalars(select(m.Project.id).where(m.Project.domain_id == domain_id).order_by(m.Project.id))
    )


def _direct(s: Session, f: Filters, subtree_ids: list[str] | None) -> list[Ref]:
    project_ids = [f.project_id, *(subtree_ids or [])] if f.project_id else None
    refs: list[Ref] = []
    if not f.system:
        refs = _rows(
            s,
            role_id=f.role_id,
            user_id=f.user_id,
            group_ids=[f.group_id] if f.group_id else None,
            domain_id=f.domain_id,
            project_ids=project_ids,
            inherited=f.inherited,
        )
    if f.system or (not f.project_id and not f.domain_id):
        refs += _system_rows(s, f)
    return refs


def _for_actor(
    s: Session,
    f: Filters,
    inherited: bool | None,
    subtree_ids: list[str] | None,
    user_id: str | None = None,
    group_ids: list[str] | None = None,
) -> list[Ref]:
    """Assignments that could affect the actor on the filtered target, before expansion."""
    project_ids = [f.project_id, *(subtree_ids or [])] if f.project_id else None
    refs: list[Ref] = []
    if inherited in (False, None):
        refs += _rows(
            s,
            user_id=user_id,
            group_ids=group_ids,
            domain_id=f.domain_id,
            project_ids=project_ids,
            inherited=False,
        )
    if inherited in (True, None):
        if f.project_id:
            project = Identity.get(s, m.Project, f.project_id, "project")
            refs += _rows(
                s, user_id=user_id, group_ids=group_ids, domain_id=project.domain_id, inherited=True
            )
            sources = project_ancestors(s, project)
            if subtree_ids:
                sources += project_ids or []
            if sources:
                refs += _rows(s, user_id=user_id, group_ids=group_ids, project_ids=sources, inherited=True)
        else:
            refs += _rows(s, user_id=user_id, group_ids=group_ids, inherited=True)
    return refs


def _expand(s: Session, ref: Ref, f: Filters, subtree_ids: list[str] | None) -> list[Ref]:
    """Replace group assignments by their members' and inherited ones by the projects they reach."""

    def for_members(base: Ref) -> list[Ref]:
        users = [f.user_id] if f.user_id else _members(s, base["group_id"])
        result = []
        for user_id in users:
            new = copy.deepcopy(base)
            new["user_id"] = user_id
            new.setdefault("indirect", {})["group_id"] = new.pop("group_id")
            result.append(new)
        return result

    if ref.get("inherited_to_projects") != "projects":
        return for_members(ref) if "group_id" in ref else [ref]

    if f.project_id:
        project_ids = [f.project_id]
        if subtree_ids:
            project_ids += subtree_ids
            if ref.get("project_id") in project_ids:
                project_ids = subtree(s, ref["project_id"])
    elif ref.get("domain_id"):
        project_ids = _domain_projects(s, ref["domain_id"])
    else:
        project_ids = subtree(s, ref["project_id"])

    def onto(base: Ref, project_id: str) -> Ref:
        new = copy.deepcopy(base)
        indirect = new.setdefault("indirect", {})
        if new.get("project_id"):
            indirect["project_id"] = new.pop("project_id")
        else:
            indirect["domain_id"] = new.pop("domain_id")
        new["project_id"] = project_id
        new.pop("inherited_to_projects")
        return new

    bases = for_members(ref) if "group_id" in ref else [ref]
    return [onto(base, pid) for base in bases for pid in project_ids]


def _add_implied(s: Session, refs: list[Ref]) -> list[Ref]:
    cache: dict[str, list[str]] = {}
    results = list(refs)
    todo = list(refs)
    checked: list[Ref] = []
    while todo:
        ref = todo.pop()
        checked.append(ref)
        rid = ref["role_id"]
        if rid not in cache:
            cache[rid] = list(
                s.scalars(select(m.ImpliedRole.implied_role_id).where(m.ImpliedRole.prior_role_id == rid))
            )
        for implied in cache[rid]:
            new = copy.deepcopy(ref)
            new["role_id"] = implied
            new.setdefault("indirect", {})["role_id"] = rid
            if new in checked:
                continue
            results.append(new)
            todo.append(new)
    return results


def _effective(s: Session, f: Filters, subtree_ids: list[str] | None) -> list[Ref]:
    if f.group_id or (f.domain_id and f.inherited):
        return []
    inherited = False if f.domain_id else f.inherited
    refs = _for_actor(s, f, inherited, subtree_ids, user_id=f.user_id)
    if f.user_id:
        groups = list(s.scalars(select(m.GroupMember.group_id).where(m.GroupMember.user_id == f.user_id)))
        if groups:
            refs += _for_actor(s, f, inherited, subtree_ids, group_ids=groups)
    expanded: list[Ref] = []
    for ref in refs:
        expanded += _expand(s, ref, f, subtree_ids)
    expanded = _add_implied(s, expanded)
    global_roles = set(s.scalars(select(m.Role.id).where(m.Role.domain_id.is_(None))))
    expanded = [r for r in expanded if r["role_id"] in global_roles]
    if f.role_id:
        expanded = [r for r in expanded if r["role_id"] == f.role_id]
    return expanded


def _add_names(s: Session, refs: list[Ref]) -> None:
    cache: dict[tuple[type, str], Any] = {}

    def get(model: type, ident: str) -> Any:
        key = (model, ident)
        if key not in cache:
            cache[key] = s.get(model, ident)
        return cache[key]

    def domain_name(domain_id: str | None) -> str:
        d = get(m.Domain, domain_id) if domain_id else None
        return d.name if d is not None else ""

    for ref in refs:
        for key, value in list(ref.items()):
            if key == "domain_id":
                ref["domain_name"] = domain_name(value)
            elif key in ("user_id", "group_id"):
                kind = key[:-3]
                obj = get(m.User if kind == "user" else m.Group, value)
                ref[f"{kind}_name"] = obj.name if obj is not None else ""
                ref[f"{kind}_domain_id"] = obj.domain_id if obj is not None else ""
                ref[f"{kind}_domain_name"] = domain_name(obj.domain_id) if obj is not None else ""
            elif key == "project_id":
                p = get(m.Project, value)
                ref["project_name"] = p.name if p is not None else ""
                ref["project_domain_id"] = p.domain_id if p is not None else ""
                ref["project_domain_name"] = domain_name(p.domain_id) if p is not None else ""
            elif key == "role_id":
                r = get(m.Role, value)
                ref["role_name"] = r.name if r is not None else ""
                if r is not None and r.domain_id is not None:
                    ref["role_domain_id"] = r.domain_id
                    ref["role_domain_name"] = domain_name(r.domain_id)


def project_domain(ident: Identity, project_id: str) -> str:
    with ident.db.reader() as s:
        return Identity.get(s, m.Project, project_id, "project").domain_id


def list_assignments(ident: Identity, f: Filters, only_domain: str | None = None) -> list[Ref]:
    """Role assignments matching ``f``; ``only_domain`` keeps those on that domain or its projects."""
    with ident.db.reader() as s:
        subtree_ids = None
        if f.project_id and f.include_subtree:
            subtree_ids = subtree(s, f.project_id)
        refs = _effective(s, f, subtree_ids) if f.effective else _direct(s, f, subtree_ids)
        if only_domain is not None:
            kept = []
            for ref in refs:
                if ref.get("domain_id") == only_domain:
                    kept.append(ref)
                elif ref.get("project_id"):
                    project = s.get(m.Project, ref["project_id"])
                    if project is not None and project.domain_id == only_domain:
                        kept.append(ref)
            refs = kept
        if f.include_names:
            _add_names(s, refs)
        return refs
