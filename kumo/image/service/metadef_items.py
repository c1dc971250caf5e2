"""What a metadata definition namespace contains: objects, properties and tags."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.image.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.image.models import MetadefNamespace, MetadefObject, MetadefProperty, MetadefTag
from kumo.image.service.core import ImageService, utcnow
from kumo.image.service.metadefs import (
    check_name,
    enforce_read,
    get_namespace,
    optional_str,
    require_dict,
    writable_namespace,
)

PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string")
MAX_TAGS = 1000

Item = MetadefObject | MetadefProperty | MetadefTag
KINDS: dict[str, type[Item]] = {"object": MetadefObject, "property": MetadefProperty, "tag": MetadefTag}


def _find(s: Session, model: type[Item], ns: MetadefNamespace, name: str) -> Item | None:
    return s.scalars(select(model).where(model.namespace_id == ns.id, model.name == name)).first()


def _get(s: Session, kind: str, ns: MetadefNamespace, name: str) -> Any:
    item = _find(s, KINDS[kind], ns, name)
    if item is None:
        raise NotFound(f"Metadata definition {kind} {name} was not found in namespace {ns.namespace}.")
    return item


def _unique(s: Session, kind: str, ns: MetadefNamespace, name: str) -> None:
    if _find(s, KINDS[kind], ns, name) is not None:
        raise Conflict(
            f"A metadata definition {kind} with name={name} already exists in namespace={ns.namespace}."
        )


# -- validation ---------------------------------------------------------------


def _object_fields(body: Any) -> dict[str, Any]:
    body = require_dict(body, "object")
    fields: dict[str, Any] = {
        "name": check_name(body.get("name")),
        "description": optional_str(body, "description", 500),
    }
    required = body.get("required")
    if required is not None and (
        not isinstance(required, list) or not all(isinstance(r, str) for r in required)
    ):
        raise BadRequest("Invalid required: a list of property names is required.")
    fields["required"] = required
    properties = body.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            raise BadRequest(
                "Invalid properties: an object mapping names to property definitions is required."
            )
        properties = {
            name: _property_schema({**(p if isinstance(p, dict) else {}), "name": name})
            for name, p in properties.items()
        }
    fields["properties"] = properties
    return fields


def _property_schema(body: Any) -> dict[str, Any]:
    """Check a property definition; the JSON schema kept for it (without its name)."""
    body = require_dict(body, "property")
    check_name(body.get("name"))
    if not isinstance(body.get("title"), str) or not body["title"]:
        raise BadRequest("Invalid property: 'title' is required and must be a string.")
    if body.get("type") not in PROPERTY_TYPES:
        raise BadRequest(
            f"Invalid property type {body.get('type')!r}: expected one of {', '.join(PROPERTY_TYPES)}."
        )
    if "enum" in body and not isinstance(body["enum"], list):
        raise BadRequest("Invalid enum: a list is required.")
    if "items" in body and not isinstance(body["items"], dict):
        raise BadRequest("Invalid items: an object is required.")
    return {k: v for k, v in body.items() if k != "name"}


# -- objects -------------------------------------------------------------------


def add_object(s: Session, ns: MetadefNamespace, body: Any) -> MetadefObject:
    fields = _object_fields(body)
    _unique(s, "object", ns, fields["name"])
    now = utcnow()
    obj = MetadefObject(id=str(uuid.uuid4()), namespace_id=ns.id, created_at=now, updated_at=now, **fields)
    s.add(obj)
    s.flush()
    return obj


def add_property(s: Session, ns: MetadefNamespace, body: Any) -> MetadefProperty:
    schema = _property_schema(body)
    name = body["name"]
    _unique(s, "property", ns, name)
    now = utcnow()
    prop = MetadefProperty(
        id=str(uuid.uuid4()),
        namespace_id=ns.id,
        name=name,
        json_schema=schema,
        created_at=now,
        updated_at=now,
    )
    s.add(prop)
    s.flush()
    return prop


def add_tag(s: Session, ns: MetadefNamespace, name: Any) -> MetadefTag:
    name = check_name(name, "tag name")
    _unique(s, "tag", ns, name)
    now = utcnow()
    tag = MetadefTag(id=str(uuid.uuid4()), namespace_id=ns.id, name=name, created_at=now, updated_at=now)
    s.add(tag)
    s.flush()
    return tag


ADDERS = {"object": add_object, "property": add_property, "tag": add_tag}


def create(svc: ImageService, ctx: RequestContext, kind: str, ns_name: str, body: Any) -> Any:
    with svc.db.session() as s:
        ns = writable_namespace(s, ctx, ns_name)
        item = ADDERS[kind](s, ns, body)
        s.expunge(item)
        return item


def list_items(
    svc: ImageService, ctx: RequestContext, kind: str, ns_name: str, query: Any = None
) -> list[Any]:
    enforce_read(ctx)
    model = KINDS[kind]
    query = query or {}
    sort_key = query.get("sort_key", "created_at")
    if sort_key not in ("created_at", "updated_at", "name"):
        raise BadRequest(f"Invalid sort_key {sort_key!r}.")
    sort_dir = query.get("sort_dir", "desc" if kind != "property" else "asc")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort_dir {sort_dir!r}: expected asc or desc.")
    column = getattr(model, sort_key)
    with svc.reading() as s:
        ns = get_namespace(s, ctx, ns_name)
        stmt = select(model).where(model.namespace_id == ns.id)
        stmt = stmt.order_by(column.asc() if sort_dir == "asc" else column.desc(), model.name)
        found = list(s.scalars(stmt))
    marker = query.get("marker")
    if marker:
        names = [i.name for i in found]
        if marker not in names:
            raise BadRequest(f"Marker {kind} {marker} not found.")
        found = found[names.index(marker) + 1 :]
    limit = query.get("limit")
    if limit is not None:
        try:
            found = found[: max(int(limit), 0)]
        except ValueError:
            raise BadRequest(f"Invalid limit {limit!r}: an integer is required.") from None
    return found


def show(svc: ImageService, ctx: RequestContext, kind: str, ns_name: str, name: str) -> Any:
    enforce_read(ctx)
    with svc.reading() as s:
        return _get(s, kind, get_namespace(s, ctx, ns_name), name)


def update(svc: ImageService, ctx: RequestContext, kind: str, ns_name: str, name: str, body: Any) -> Any:
    body = require_dict(body, kind)
    with svc.db.session() as s:
        ns = writable_namespace(s, ctx, ns_name)
        item = _get(s, kind, ns, name)
        if kind == "object":
            fields = _object_fields(body)
        elif kind == "property":
            fields = {"name": check_name(body.get("name")), "json_schema": _property_schema(body)}
        else:
            fields = {"name": check_name(body.get("name"), "tag name")}
        if fields["name"] != item.name:
            _unique(s, kind, ns, fields["name"])
        for key, value in fields.items():
            setattr(item, key, value)
        item.updated_at = utcnow()
        s.flush()
        s.expunge(item)
        return item


def delete_item(svc: ImageService, ctx: RequestContext, kind: str, ns_name: str, name: str) -> None:
    with svc.db.session() as s:
        ns = writable_namespace(s, ctx, ns_name)
        item = _get(s, kind, ns, name)
        if ns.protected:
            raise Forbidden(f"Metadata definition namespace {ns_name} is protected.")
        s.delete(item)


def delete_all(svc: ImageService, ctx: RequestContext, kind: str, ns_name: str) -> None:
    with svc.db.session() as s:
        ns = writable_namespace(s, ctx, ns_name)
        if ns.protected:
            raise Forbidden(f"Metadata definition namespace {ns_name} is protected.")
        model = KINDS[kind]
        s.execute(delete(model).where(model.namespace_id == ns.id))


# -- tags ------------------------------------------------------------------------


def create_tag(svc: ImageService, ctx: RequestContext, ns_name: str, name: str) -> MetadefTag:
    return create(svc, ctx, "tag", ns_name, name)


def create_tags(
    svc: ImageService, ctx: RequestContext, ns_name: str, body: Any, *, append: bool
) -> list[MetadefTag]:
    """``POST .../tags``: replace the namespace's tags (or add to them with ``append``)."""
    body = require_dict(body, "tags")
    tags = body.get("tags")
    if not isinstance(tags, list):
        raise BadRequest('Invalid tags: the body must be {"tags": [{"name": "..."}, ...]}.')
    names = [check_name(t.get("name") if isinstance(t, dict) else None, "tag name") for t in tags]
    if len(set(names)) != len(names):
        raise Conflict("Duplicate tag names in the request.")
    if len(names) > MAX_TAGS:
        raise BadRequest(f"At most {MAX_TAGS} tags per namespace.")
    with svc.db.session() as s:
        ns = writable_namespace(s, ctx, ns_name)
        if not append:
            s.execute(delete(MetadefTag).where(MetadefTag.namespace_id == ns.id))
            s.flush()
        created = [add_tag(s, ns, name) for name in names]
        for tag in created:
            s.expunge(tag)
        return created
