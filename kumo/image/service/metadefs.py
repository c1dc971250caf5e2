"""Metadata definitions (Glance's ``/v2/metadefs``): namespaces and resource types.

A namespace groups objects, properties and tags (see ``metadef_items``) and is
associated with resource types such as ``OS::Glance::Image``. Everyone may read
public namespaces and their project's private ones; writing is for admins, as
Glance's defaults have it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.common.policy import ADMIN, Policy
from kumo.image.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.image.models import (
    MetadefNamespace,
    MetadefObject,
    MetadefProperty,
    MetadefResourceType,
    MetadefResourceTypeAssociation,
    MetadefTag,
)
from kumo.image.policies import READ
from kumo.image.service.core import ImageService, is_admin, utcnow

POLICY = Policy(
    {
        "get_metadef": READ,
        "modify_metadef": ADMIN,
    }
)

VISIBILITIES = ("public", "private")
NAME_MAX = 80
NAMESPACE_FIELDS = ("namespace", "display_name", "description", "visibility", "protected", "owner")


# -- input checks ------------------------------------------------------------


def require_dict(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"The request body must be a JSON object describing the {what}.")
    return body


def check_name(value: Any, what: str = "name", *, required: bool = True) -> str:
    if value is None and not required:
        return value
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"Invalid {what}: a non-empty string is required.")
    if len(value) > NAME_MAX:
        raise BadRequest(f"Invalid {what}: at most {NAME_MAX} characters.")
    if "/" in value:
        raise BadRequest(f"Invalid {what}: '/' is not allowed.")
    return value


def optional_str(body: dict[str, Any], key: str, limit: int | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"Invalid {key}: a string is required.")
    if limit is not None and len(value) > limit:
        raise BadRequest(f"Invalid {key}: at most {limit} characters.")
    return value


def enforce_write(ctx: RequestContext) -> None:
    if not POLICY.check(ctx, "modify_metadef", {"project_id": ctx.project_id}):
        raise Forbidden("Only administrators may change metadata definitions.")


def enforce_read(ctx: RequestContext) -> None:
    POLICY.enforce(ctx, "get_metadef", {"project_id": ctx.project_id})


# -- namespaces --------------------------------------------------------------


@dataclass
class NamespaceView:
    """A namespace with what it contains, for the namespace document."""

    namespace: MetadefNamespace
    associations: list[MetadefResourceTypeAssociation] = field(default_factory=list)
    objects: list[MetadefObject] = field(default_factory=list)
    properties: list[MetadefProperty] = field(default_factory=list)
    tags: list[MetadefTag] = field(default_factory=list)


def namespace_not_found(name: str) -> NotFound:
    return NotFound(f"Metadata definition namespace={name} was not found.")


def get_namespace(s: Session, ctx: RequestContext, name: str) -> MetadefNamespace:
    ns = s.scalars(select(MetadefNamespace).where(MetadefNamespace.namespace == name)).first()
    if ns is None or not visible(ctx, ns):
        raise namespace_not_found(name)
    return ns


def visible(ctx: RequestContext, ns: MetadefNamespace) -> bool:
    return ns.visibility == "public" or is_admin(ctx) or (ns.owner is not None and ns.owner == ctx.project_id)


def writable_namespace(s: Session, ctx: RequestContext, name: str) -> MetadefNamespace:
    ns = get_namespace(s, ctx, name)
    enforce_write(ctx)
    return ns


def _apply_namespace_fields(ns: MetadefNamespace, body: dict[str, Any], *, creating: bool) -> None:
    if creating or "namespace" in body:
        ns.namespace = check_name(body.get("namespace"), "namespace")
    if creating or "display_name" in body:
        ns.display_name = optional_str(body, "display_name", NAME_MAX)
    if creating or "description" in body:
        ns.description = optional_str(body, "description", 500)
    if creating or "visibility" in body:
        visibility = body.get("visibility") or "private"
        if visibility not in VISIBILITIES:
            raise BadRequest(f"Invalid visibility {visibility!r}: expected public or private.")
        ns.visibility = visibility
    if creating or "protected" in body:
        protected = body.get("protected", False)
        if protected is None:
            protected = False
        if not isinstance(protected, bool):
            raise BadRequest("Invalid protected: a boolean is required.")
        ns.protected = protected
    if "owner" in body and body["owner"] is not None:
        ns.owner = optional_str(body, "owner", 255)


def create_namespace(svc: ImageService, ctx: RequestContext, body: Any) -> NamespaceView:
    from kumo.image.service import metadef_items as items

    body = require_dict(body, "namespace")
    enforce_write(ctx)
    now = utcnow()
    ns = MetadefNamespace(id=str(uuid.uuid4()), owner=ctx.project_id, created_at=now, updated_at=now)
    _apply_namespace_fields(ns, body, creating=True)
    for key in ("resource_type_associations", "objects", "tags"):
        if body.get(key) is not None and not isinstance(body[key], list):
            raise BadRequest(f"Invalid {key}: a list is required.")
    if body.get("properties") is not None and not isinstance(body["properties"], dict):
        raise BadRequest("Invalid properties: an object mapping names to property definitions is required.")
    with svc.db.session() as s:
        if s.scalars(select(MetadefNamespace.id).where(MetadefNamespace.namespace == ns.namespace)).first():
            raise Conflict(f"Metadata definition namespace={ns.namespace} already exists.")
        s.add(ns)
        s.flush()
        for assoc in body.get("resource_type_associations") or []:
            _associate(s, ns, assoc)
        for obj in body.get("objects") or []:
            items.add_object(s, ns, obj)
        for prop_name, prop in (body.get("properties") or {}).items():
            items.add_property(s, ns, {**(prop if isinstance(prop, dict) else {}), "name": prop_name})
        for tag in body.get("tags") or []:
            items.add_tag(s, ns, tag.get("name") if isinstance(tag, dict) else None)
        s.flush()
        view = _view(s, ns)
        s.expunge_all()
        return view


def _view(s: Session, ns: MetadefNamespace, *, full: bool = True) -> NamespaceView:
    view = NamespaceView(ns, associations=list_associations_in(s, ns))
    if full:
        view.objects = list(
            s.scalars(
                select(MetadefObject).where(MetadefObject.namespace_id == ns.id).order_by(MetadefObject.name)
            )
        )
        view.properties = list(
            s.scalars(
                select(MetadefProperty)
                .where(MetadefProperty.namespace_id == ns.id)
                .order_by(MetadefProperty.name)
            )
        )
        view.tags = list(
            s.scalars(select(MetadefTag).where(MetadefTag.namespace_id == ns.id).order_by(MetadefTag.name))
        )
    return view


def list_namespaces(svc: ImageService, ctx: RequestContext, query: Any) -> list[NamespaceView]:
    enforce_read(ctx)
    stmt = select(MetadefNamespace)
    visibility = query.get("visibility")
    if visibility:
        if visibility not in VISIBILITIES:
            raise BadRequest(f"Invalid visibility {visibility!r}: expected public or private.")
        stmt = stmt.where(MetadefNamespace.visibility == visibility)
    sort_key = query.get("sort_key", "created_at")
    if sort_key not in ("created_at", "updated_at", "namespace"):
        raise BadRequest(f"Invalid sort_key {sort_key!r}.")
    sort_dir = query.get("sort_dir", "desc")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort_dir {sort_dir!r}: expected asc or desc.")
    column = getattr(MetadefNamespace, sort_key)
    stmt = stmt.order_by(column.asc() if sort_dir == "asc" else column.desc(), MetadefNamespace.namespace)
    wanted_types = {t for t in (query.get("resource_types") or "").split(",") if t}
    limit = _limit(query.get("limit"))
    marker = query.get("marker")
    with svc.reading() as s:
        found = [ns for ns in s.scalars(stmt) if visible(ctx, ns)]
        if marker:
            names = [ns.namespace for ns in found]
            if marker not in names:
                raise BadRequest(f"Marker namespace {marker} not found.")
            found = found[names.index(marker) + 1 :]
        views = []
        for ns in found:
            view = _view(s, ns, full=False)
            if wanted_types and not wanted_types & {a.resource_type for a in view.associations}:
                continue
            views.append(view)
            if limit is not None and len(views) >= limit:
                break
        return views


def _limit(value: Any) -> int | None:
    if value is None:
        return None
    try:
        limit = int(value)
    except ValueError:
        raise BadRequest(f"Invalid limit {value!r}: an integer is required.") from None
    if limit < 0:
        raise BadRequest("Invalid limit: it must not be negative.")
    return limit


def show_namespace(svc: ImageService, ctx: RequestContext, name: str) -> NamespaceView:
    enforce_read(ctx)
    with svc.reading() as s:
        return _view(s, get_namespace(s, ctx, name))


def update_namespace(svc: ImageService, ctx: RequestContext, name: str, body: Any) -> NamespaceView:
    body = require_dict(body, "namespace")
    with svc.db.session() as s:
        ns = writable_namespace(s, ctx, name)
        new_name = body.get("namespace", ns.namespace)
        if new_name != ns.namespace:
            check_name(new_name, "namespace")
            if s.scalars(select(MetadefNamespace.id).where(MetadefNamespace.namespace == new_name)).first():
                raise Conflict(f"Metadata definition namespace={new_name} already exists.")
        _apply_namespace_fields(ns, {k: v for k, v in body.items() if k in NAMESPACE_FIELDS}, creating=False)
        ns.updated_at = utcnow()
        s.flush()
        view = _view(s, ns)
        s.expunge_all()
        return view


def delete_namespace(svc: ImageService, ctx: RequestContext, name: str) -> None:
    with svc.db.session() as s:
        ns = writable_namespace(s, ctx, name)
        if ns.protected:
            raise Forbidden(f"Metadata definition namespace {name} is protected and cannot be deleted.")
        for model in (MetadefObject, MetadefProperty, MetadefTag, MetadefResourceTypeAssociation):
            s.execute(delete(model).where(model.namespace_id == ns.id))
        s.delete(ns)


# -- resource types ----------------------------------------------------------


def list_resource_types(svc: ImageService, ctx: RequestContext) -> list[MetadefResourceType]:
    enforce_read(ctx)
    with svc.reading() as s:
        return list(s.scalars(select(MetadefResourceType).order_by(MetadefResourceType.name)))


def list_associations_in(s: Session, ns: MetadefNamespace) -> list[MetadefResourceTypeAssociation]:
    stmt = (
        select(MetadefResourceTypeAssociation)
        .where(MetadefResourceTypeAssociation.namespace_id == ns.id)
        .order_by(MetadefResourceTypeAssociation.resource_type)
    )
    return list(s.scalars(stmt))


def _associate(s: Session, ns: MetadefNamespace, body: Any) -> MetadefResourceTypeAssociation:
    body = require_dict(body, "resource type association")
    name = check_name(body.get("name"), "resource type name")
    prefix = optional_str(body, "prefix", NAME_MAX)
    target = optional_str(body, "properties_target", NAME_MAX)
    now = utcnow()
    if s.get(MetadefResourceType, name) is None:  # Glance creates resource types on first use
        s.add(MetadefResourceType(name=name, protected=False, created_at=now, updated_at=now))
        s.flush()
    if s.get(MetadefResourceTypeAssociation, (ns.id, name)) is not None:
        raise Conflict(f"Resource type {name} is already associated with namespace {ns.namespace}.")
    assoc = MetadefResourceTypeAssociation(
        namespace_id=ns.id,
        resource_type=name,
        prefix=prefix,
        properties_target=target,
        created_at=now,
        updated_at=now,
    )
    s.add(assoc)
    return assoc


def create_association(
    svc: ImageService, ctx: RequestContext, name: str, body: Any
) -> MetadefResourceTypeAssociation:
    with svc.db.session() as s:
        ns = writable_namespace(s, ctx, name)
        assoc = _associate(s, ns, body)
        s.flush()
        s.expunge(assoc)
        return assoc


def list_associations(
    svc: ImageService, ctx: RequestContext, name: str
) -> list[MetadefResourceTypeAssociation]:
    enforce_read(ctx)
    with svc.reading() as s:
        return list_associations_in(s, get_namespace(s, ctx, name))


def delete_association(svc: ImageService, ctx: RequestContext, name: str, resource_type: str) -> None:
    with svc.db.session() as s:
        ns = writable_namespace(s, ctx, name)
        assoc = s.get(MetadefResourceTypeAssociation, (ns.id, resource_type))
        if assoc is None:
            raise NotFound(f"Resource type {resource_type} is not associated with namespace {name}.")
        if ns.protected:
            raise Forbidden(f"Metadata definition namespace {name} is protected.")
        s.delete(assoc)
