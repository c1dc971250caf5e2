"""Projects: hierarchy, tags, and projects acting as domains (stored as domains)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from kumo.common.errors import Forbidden, NotFound
from kumo.identity import models as m
from kumo.identity.errors import ValidationError, duplicate, not_found
from kumo.identity.service import domains as dsvc
from kumo.identity.service.core import DEFAULT_DOMAIN_ID, Identity, extra_of, new_id, require_object, utcnow
from kumo.identity.service.grants import direct_role_ids

KNOWN = ("name", "description", "domain_id", "parent_id", "enabled", "is_domain", "tags", "options")
MAX_DEPTH = 5  # Keystone's [DEFAULT] max_project_tree_depth
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")

Entity = m.Project | m.Domain  # a Domain here is a project acting as a domain


def get_project(s: Session, project_id: Any) -> m.Project:
    return Identity.get(s, m.Project, project_id, "project")


def find_entity(s: Session, project_id: Any) -> Entity | None:
    if not isinstance(project_id, str) or not project_id:
        return None
    return s.get(m.Project, project_id) or s.get(m.Domain, project_id)


def get_entity(s: Session, project_id: Any) -> Entity:
    found = find_entity(s, project_id)
    if found is None:
        raise not_found("project", str(project_id))
    return found


def ancestors(s: Session, p: m.Project) -> list[m.Project]:
    """Parent projects, nearest first (the domain not included; cycle-safe)."""
    result: list[m.Project] = []
    seen = {p.id}
    parent_id = p.parent_id
    while parent_id and parent_id not in seen:
        parent = s.get(m.Project, parent_id)
        if parent is None:
            break
        result.append(parent)
        seen.add(parent.id)
        parent_id = parent.parent_id
    return result


def children(s: Session, project_ids: list[str]) -> list[m.Project]:
    return list(
        s.scalars(select(m.Project).where(m.Project.parent_id.in_(project_ids)).order_by(m.Project.name))
    )


def subtree(s: Session, project_id: str) -> list[m.Project]:
    """All descendants, breadth first. A domain's subtree is its root projects and theirs."""
    if s.get(m.Domain, project_id) is not None:
        level = list(
            s.scalars(
                select(m.Project).where(m.Project.domain_id == project_id, m.Project.parent_id.is_(None))
            )
        )
    else:
        level = children(s, [project_id])
    result: list[m.Project] = []
    seen = {project_id}
    while level:
        level = [p for p in level if p.id not in seen]
        seen.update(p.id for p in level)
        result.extend(level)
        level = children(s, [p.id for p in level]) if level else []
    return result


def _check_unique(s: Session, name: str, domain_id: str, exclude: str | None = None) -> None:
    q = select(m.Project.id).where(m.Project.name == name, m.Project.domain_id == domain_id)
    if exclude:
        q = q.where(m.Project.id != exclude)
    if s.scalar(q.limit(1)) is not None:
        raise duplicate("project", "name", name)


def domain_for_create(body: Any) -> str | None:
    """The domain_id a create request names (for the policy target), unvalidated."""
    if isinstance(body, dict) and isinstance(body.get("project"), dict):
        value = body["project"].get("domain_id")
        return value if isinstance(value, str) else None
    return None


# -- create / update / delete --------------------------------------------------------


def create_project(ident: Identity, body: Any, default_domain: str | None) -> Entity:
    ref = require_object(body, "project")
    is_domain = ref.get("is_domain", False)
    if not isinstance(is_domain, bool):
        raise ValidationError(f"Invalid input for field 'is_domain': {is_domain!r} is not of type 'boolean'.")
    if is_domain:
        if ref.get("parent_id"):
            raise ValidationError("only root projects are allowed to act as domains.")
        if ref.get("domain_id"):
            raise ValidationError("A project acting as a domain may not have a domain_id.")
        return dsvc.create_domain(ident, body, wrapper="project", known=KNOWN)
    name = dsvc.check_name(ref)
    description = dsvc.check_description(ref) or ""
    enabled = dsvc.check_enabled(ref)
    domain_id = dsvc.check_id(ref, "domain_id")
    parent_id = dsvc.check_id(ref, "parent_id")
    tags = dsvc.check_tags(ref["tags"]) if ref.get("tags") is not None else []
    options = dsvc.check_options(ref, {}, dsvc.PROJECT_OPTION_CHECKS)
    with ident.db.session() as s:
        parent: m.Project | None = None
        if parent_id is not None and parent_id != domain_id:
            parent = s.get(m.Project, parent_id)
            if parent is None:
                if s.get(m.Domain, parent_id) is None:
                    raise ValidationError(f"Could not find project: {parent_id}.")
                # The parent is a domain: a root project of that domain.
                if domain_id is not None and domain_id != parent_id:
                    raise ValidationError(
                        f"Cannot create project, the parent ({parent_id}) is acting as a domain, "
                        f"but this project's domain id ({domain_id}) does not match the parent's id."
                    )
                domain_id = parent_id
        if domain_id is None:
            domain_id = parent.domain_id if parent is not None else (default_domain or DEFAULT_DOMAIN_ID)
        if s.get(m.Domain, domain_id) is None:
            raise ValidationError(f"Could not find domain: {domain_id}.")
        if parent is not None:
            if parent.domain_id != domain_id:
                raise ValidationError(
                    f"Cannot create project, since it specifies its domain_id {domain_id}, "
                    f"but specifies a parent in a different domain ({parent.domain_id})."
                )
            chain = [parent, *ancestors(s, parent)]
            for p in chain:
                if not p.enabled:
                    raise ValidationError(
                        f"cannot create a project in a branch containing a disabled project: {p.id}"
                    )
            if len(chain) + 1 > MAX_DEPTH:
                raise Forbidden(f"Max hierarchy depth reached for {parent.id} branch.")
        _check_unique(s, name, domain_id)
        project = m.Project(
            id=new_id(),
            name=name,
            domain_id=domain_id,
            parent_id=parent.id if parent is not None else None,
            description=description,
            enabled=True if enabled is None else enabled,
            tags=tags,
            options=options,
            extra=extra_of(ref, KNOWN),
            created_at=utcnow(),
        )
        s.add(project)
    return project


def update_project(ident: Identity, tokens: Any, project_id: str, body: Any) -> Entity:
    ref = require_object(body, "project")
    if not ref:
        raise ValidationError("Invalid input for field 'project': {} does not have enough properties.")
    if ref.get("id") is not None and ref["id"] != project_id:
        raise ValidationError("Cannot change the project ID.")
    with dsvc.reading(ident) as s:
        entity = get_entity(s, project_id)
    if isinstance(entity, m.Domain):
        if "is_domain" in ref and ref["is_domain"] is not True:
            raise ValidationError("Update of `is_domain` is not allowed.")
        if ref.get("parent_id") is not None or ref.get("domain_id") is not None:
            raise ValidationError("Cannot change the hierarchy of a project acting as a domain.")
        return dsvc.update_domain(ident, tokens, project_id, body, wrapper="project", known=KNOWN)
    name = dsvc.check_name(ref, required=False)
    description = dsvc.check_description(ref)
    enabled = dsvc.check_enabled(ref)
    tags = dsvc.check_tags(ref["tags"]) if ref.get("tags") is not None else None
    with ident.db.session() as s:
        project = get_project(s, project_id)
        dsvc.check_immutable(project.options or {}, ref, "project", project_id)
        options = dsvc.check_options(ref, project.options or {}, dsvc.PROJECT_OPTION_CHECKS)
        if "domain_id" in ref and ref["domain_id"] != project.domain_id:
            raise ValidationError("Cannot change Domain ID.")
        if "parent_id" in ref and ref["parent_id"] not in (
            project.parent_id or project.domain_id,
            project.parent_id,
        ):
            raise Forbidden("Update of `parent_id` is not allowed.")
        if "is_domain" in ref and ref["is_domain"] is not False:
            raise ValidationError("Update of `is_domain` is not allowed.")
        if name is not None and name != project.name:
            _check_unique(s, name, project.domain_id, exclude=project.id)
            project.name = name
        if description is not None:
            project.description = description
        if enabled is not None and enabled != project.enabled:
            if enabled:
                for p in ancestors(s, project):
                    if not p.enabled:
                        raise Forbidden(f"Cannot enable project {project_id} since it has disabled parents")
            else:
                if any(p.enabled for p in subtree(s, project.id)):
                    raise Forbidden(
                        f"Cannot disable project {project_id} since its subtree contains enabled projects."
                    )
                tokens.revoke(s, project_id=project.id)
            project.enabled = enabled
        if tags is not None:
            project.tags = tags
        project.options = options
        extra = extra_of(ref, KNOWN)
        if extra:
            project.extra = {**(project.extra or {}), **extra}
    return project


def remove_project(s: Session, tokens: Any, project: m.Project) -> None:
    """Delete one project and what hangs off it (assignments, credentials, trusts, app creds)."""
    A = m.Assignment
    s.execute(delete(A).where(A.target_id == project.id, A.type.in_(("UserProject", "GroupProject"))))
    s.execute(delete(m.Credential).where(m.Credential.project_id == project.id))
    s.execute(update(m.Trust).where(m.Trust.project_id == project.id).values(deleted=True))
    s.execute(delete(m.ApplicationCredential).where(m.ApplicationCredential.project_id == project.id))
    s.execute(update(m.User).where(m.User.default_project_id == project.id).values(default_project_id=None))
    tokens.revoke(s, project_id=project.id)
    s.flush()
    s.delete(project)
    s.flush()


def delete_project(ident: Identity, tokens: Any, project_id: str) -> None:
    with dsvc.reading(ident) as s:
        entity = get_entity(s, project_id)
    if isinstance(entity, m.Domain):
        dsvc.delete_domain(ident, tokens, project_id)
        return
    with ident.db.session() as s:
        project = get_project(s, project_id)
        if (project.options or {}).get("immutable"):
            raise Forbidden(f"Unable to delete immutable project resource: `{project_id}`.")
        if children(s, [project.id]):
            raise Forbidden(
                f"Cannot delete the project {project_id} since it is not a leaf in the hierarchy. "
                "Use the cascade option if you want to delete a whole subtree."
            )
        remove_project(s, tokens, project)


# -- reading -------------------------------------------------------------------------


def _tag_ok(tags: list[str], f: Mapping[str, str]) -> bool:
    have = set(tags)
    for key in TAG_FILTERS:
        if key not in f:
            continue
        wanted = set(f[key].split(","))
        if key == "tags" and not wanted <= have:
            return False
        if key == "tags-any" and not wanted & have:
            return False
        if key == "not-tags" and wanted <= have:
            return False
        if key == "not-tags-any" and wanted & have:
            return False
    return True


def list_projects(ident: Identity, f: Mapping[str, Any]) -> list[Entity]:
    """``f``: name, domain_id, parent_id, enabled (bool), is_domain (bool), the tag filters, only_domain."""
    with dsvc.reading(ident) as s:
        if f.get("is_domain"):
            if f.get("parent_id") or f.get("domain_id"):
                return []
            q = select(m.Domain)
            if f.get("name") is not None:
                q = q.where(m.Domain.name == f["name"])
            if f.get("enabled") is not None:
                q = q.where(m.Domain.enabled == f["enabled"])
            if f.get("only_domain"):
                q = q.where(m.Domain.id == f["only_domain"])
            found: list[Entity] = list(s.scalars(q.order_by(m.Domain.name)))
            return [d for d in found if _tag_ok(list((d.extra or {}).get("tags") or []), f)]
        q = select(m.Project)
        if f.get("name") is not None:
            q = q.where(m.Project.name == f["name"])
        if f.get("domain_id") is not None:
            q = q.where(m.Project.domain_id == f["domain_id"])
        if f.get("only_domain"):
            q = q.where(m.Project.domain_id == f["only_domain"])
        if f.get("enabled") is not None:
            q = q.where(m.Project.enabled == f["enabled"])
        if f.get("parent_id") is not None:
            parent = f["parent_id"]
            if s.get(m.Domain, parent) is not None:
                q = q.where(m.Project.domain_id == parent, m.Project.parent_id.is_(None))
            else:
                q = q.where(m.Project.parent_id == parent)
        rows = s.scalars(q.order_by(m.Project.name, m.Project.id))
        return [p for p in rows if _tag_ok(list(p.tags or []), f)]


def show_project(ident: Identity, project_id: str) -> Entity:
    with dsvc.reading(ident) as s:
        return get_entity(s, project_id)


def find_project(ident: Identity, project_id: str) -> Entity | None:
    with dsvc.reading(ident) as s:
        return find_entity(s, project_id)


def _has_roles(s: Session, user_id: str | None, p: m.Project) -> bool:
    return bool(user_id) and bool(direct_role_ids(s, user_id, project=p))


def hierarchy(ident: Identity, entity: Entity, user_id: str | None, q: Mapping[str, bool]) -> dict[str, Any]:
    """The extras ``parents_as_list`` etc. add: {"parents": [...] or {...}, "subtree": ...} (entities, not JSON)."""
    if q.get("parents_as_list") and q.get("parents_as_ids"):
        raise ValidationError("Cannot use parents_as_list and parents_as_ids query params at the same time.")
    if q.get("subtree_as_list") and q.get("subtree_as_ids"):
        raise ValidationError("Cannot use subtree_as_list and subtree_as_ids query params at the same time.")
    out: dict[str, Any] = {}
    with dsvc.reading(ident) as s:
        if isinstance(entity, m.Project):
            chain = ancestors(s, entity)
            if q.get("parents_as_list"):
                out["parents"] = [p for p in chain if _has_roles(s, user_id, p)]
            elif q.get("parents_as_ids"):
                nested: dict[str, Any] | None = {entity.domain_id: None}
                for p in reversed(chain):
                    nested = {p.id: nested}
                out["parents_ids"] = nested
        elif q.get("parents_as_list"):
            out["parents"] = []
        elif q.get("parents_as_ids"):
            out["parents_ids"] = None
        if q.get("subtree_as_list") or q.get("subtree_as_ids"):
            sub = subtree(s, entity.id)
            if q.get("subtree_as_list"):
                out["subtree"] = [p for p in sub if _has_roles(s, user_id, p)]
            else:
                by_parent: dict[str, list[m.Project]] = {}
                for p in sub:
                    by_parent.setdefault(p.parent_id or p.domain_id, []).append(p)

                def walk(pid: str) -> dict[str, Any] | None:
                    kids = by_parent.get(pid)
                    return {k.id: walk(k.id) for k in kids} if kids else None

                out["subtree_ids"] = walk(entity.id)
    return out


# -- tags ----------------------------------------------------------------------------


def _tags_project(s: Session, project_id: str) -> Entity:
    return get_entity(s, project_id)


def _get_tags(e: Entity) -> list[str]:
    if isinstance(e, m.Domain):
        return list((e.extra or {}).get("tags") or [])
    return list(e.tags or [])


def _set_tags(e: Entity, tags: list[str]) -> None:
    if isinstance(e, m.Domain):
        e.extra = {**(e.extra or {}), "tags": tags}
    else:
        e.tags = tags


def list_tags(ident: Identity, project_id: str) -> list[str]:
    with dsvc.reading(ident) as s:
        return _get_tags(_tags_project(s, project_id))


def check_tag(ident: Identity, project_id: str, tag: str) -> None:
    if tag not in list_tags(ident, project_id):
        raise NotFound(f"Could not find project tag: {tag}.")


def replace_tags(ident: Identity, project_id: str, body: Any) -> list[str]:
    if not isinstance(body, dict) or "tags" not in body:
        raise ValidationError("'tags' is a required property.")
    tags = dsvc.check_tags(body["tags"])
    with ident.db.session() as s:
        _set_tags(_tags_project(s, project_id), tags)
    return tags


def add_tag(ident: Identity, project_id: str, tag: str) -> None:
    dsvc.check_tag(tag)
    with ident.db.session() as s:
        e = _tags_project(s, project_id)
        tags = _get_tags(e)
        if tag in tags:
            return
        if len(tags) >= dsvc.MAX_TAGS:
            raise ValidationError(f"Invalid input for field 'tags': more than {dsvc.MAX_TAGS} tags.")
        _set_tags(e, [*tags, tag])


def delete_tag(ident: Identity, project_id: str, tag: str) -> None:
    with ident.db.session() as s:
        e = _tags_project(s, project_id)
        tags = _get_tags(e)
        if tag not in tags:
            raise NotFound(f"Could not find project tag: {tag}.")
        _set_tags(e, [t for t in tags if t != tag])


def clear_tags(ident: Identity, project_id: str) -> None:
    with ident.db.session() as s:
        _set_tags(_tags_project(s, project_id), [])
