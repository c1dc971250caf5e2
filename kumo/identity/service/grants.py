"""Role resolution: which roles a user holds on a project, a domain or the system.

Counts direct grants, grants to the user's groups, inherited grants (``OS-INHERIT``)
from the project's ancestors and its domain, and implied roles (transitively).
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.identity import models as m

SYSTEM = "system"


def group_ids(session: Session, user_id: str) -> list[str]:
    return list(session.scalars(select(m.GroupMember.group_id).where(m.GroupMember.user_id == user_id)))


def project_ancestors(session: Session, project: m.Project) -> list[str]:
    """Ids of the project's parents, nearest first (cycle-safe)."""
    result: list[str] = []
    parent = project.parent_id
    while parent and parent not in result and len(result) < 64:
        result.append(parent)
        parent = session.scalar(select(m.Project.parent_id).where(m.Project.id == parent))
    return result


def implied_closure(session: Session, role_ids: set[str]) -> set[str]:
    found = set(role_ids)
    frontier = set(role_ids)
    while frontier:
        nxt = set(
            session.scalars(
                select(m.ImpliedRole.implied_role_id).where(m.ImpliedRole.prior_role_id.in_(frontier))
            )
        )
        frontier = nxt - found
        found |= nxt
    return found


def direct_role_ids(
    session: Session,
    user_id: str,
    *,
    project: m.Project | None = None,
    domain_id: str | None = None,
    system: bool = False,
) -> set[str]:
    """Role ids granted for the scope (before implication)."""
    actors = [user_id, *group_ids(session, user_id)]
    A = m.Assignment
    conds = []
    if project is not None:
        conds.append((A.type.in_(("UserProject", "GroupProject"))) & (A.target_id == project.id) & (~A.inherited))
        parents = project_ancestors(session, project)
        if parents:
            conds.append(A.type.in_(("UserProject", "GroupProject")) & A.target_id.in_(parents) & A.inherited)
        conds.append(A.type.in_(("UserDomain", "GroupDomain")) & (A.target_id == project.domain_id) & A.inherited)
    elif domain_id is not None:
        conds.append(A.type.in_(("UserDomain", "GroupDomain")) & (A.target_id == domain_id) & (~A.inherited))
    elif system:
        conds.append(A.type.in_(("UserSystem", "GroupSystem")) & (A.target_id == SYSTEM))
    if not conds:
        return set()
    rows = session.scalars(select(A.role_id).where(A.actor_id.in_(actors), or_(*conds)))
    return set(rows)


def effective_roles(
    session: Session,
    user_id: str,
    *,
    project: m.Project | None = None,
    domain_id: str | None = None,
    system: bool = False,
) -> list[m.Role]:
    """Roles for a token: implied roles included, domain-specific roles left out (as Keystone does)."""
    ids = implied_closure(
        session, direct_role_ids(session, user_id, project=project, domain_id=domain_id, system=system)
    )
    if not ids:
        return []
    roles = session.scalars(select(m.Role).where(m.Role.id.in_(ids), m.Role.domain_id.is_(None)))
    return sorted(roles, key=lambda r: r.name)


def projects_for_user(session: Session, user_id: str) -> list[m.Project]:
    """Enabled projects the user holds any role on (directly, by group or by inheritance)."""
    result = []
    for project in session.scalars(select(m.Project).where(m.Project.enabled).order_by(m.Project.name)):
        if direct_role_ids(session, user_id, project=project):
            result.append(project)
    return result


def domains_for_user(session: Session, user_id: str) -> list[m.Domain]:
    result = []
    for domain in session.scalars(select(m.Domain).where(m.Domain.enabled).order_by(m.Domain.name)):
        if direct_role_ids(session, user_id, domain_id=domain.id):
            result.append(domain)
    return result
