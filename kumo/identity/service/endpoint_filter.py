"""OS-EP-FILTER: endpoint groups and project <-> endpoint (group) associations.

Stored and listed as Keystone does. The token catalog is not filtered by these
associations (Keystone does that only with its opt-in ``endpoint_filter.sql``
catalog driver).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.common.errors import Conflict, NotFound
from kumo.identity import models as m
from kumo.identity.errors import ValidationError
from kumo.identity.service.core import Identity, new_id

EG = m.EndpointGroup
FILTER_KEYS = ("service_id", "region_id", "interface")
_INTERFACES = ("admin", "internal", "public")
_FIELDS = ("name", "description", "filters")


# -- endpoint groups -------------------------------------------------------------
def _bad(field: str, value: Any, kind: str) -> ValidationError:
    return ValidationError(f"Invalid input for field '{field}': {value!r} is not of type '{kind}'.")


def _filters(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad("filters", value, "object")
    if not value:
        raise ValidationError("filters field is required and cannot be empty")
    for key, item in value.items():
        if key not in FILTER_KEYS:
            raise ValidationError(
                "Expecting to find service_id or region_id or interface in endpoint_group. The server "
                "could not comply with the request since it is either malformed or otherwise incorrect."
            )
        if key == "interface" and item not in _INTERFACES:
            raise ValidationError(
                f"Invalid input for field 'filters/interface': {item!r} is not one of {list(_INTERFACES)}."
            )
        if key == "service_id" and not isinstance(item, str):
            raise _bad("filters/service_id", item, "string")
        if key == "region_id" and item is not None and not isinstance(item, str):
            raise _bad("filters/region_id", item, "string")
    return dict(value)


def _fields(body: dict[str, Any], *, create: bool) -> dict[str, Any]:
    unknown = sorted(k for k in body if k not in _FIELDS)
    if unknown:
        raise ValidationError(
            f"Invalid input for field 'endpoint_group': Additional properties are not allowed "
            f"({', '.join(repr(k) for k in unknown)} {'was' if len(unknown) == 1 else 'were'} unexpected)."
        )
    if create:
        for key in ("name", "filters"):
            if key not in body:
                raise ValidationError(f"'{key}' is a required property.")
    elif not body:
        raise ValidationError("Invalid input for field 'endpoint_group': it must have at least one property.")
    fields: dict[str, Any] = {}
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str):
            raise _bad("name", name, "string")
        if not name.strip() or len(name) > 255:
            raise ValidationError(f"Invalid input for field 'name': {name!r} must be 1 to 255 characters.")
        fields["name"] = name
    if "description" in body:
        desc = body["description"]
        if desc is not None and not isinstance(desc, str):
            raise _bad("description", desc, "string")
        fields["description"] = desc
    if "filters" in body:
        fields["filters"] = _filters(body["filters"])
    return fields


def _group(s: Session, ident: Identity, group_id: str) -> m.EndpointGroup:
    obj = s.get(EG, group_id) if isinstance(group_id, str) else None
    if obj is None:
        raise NotFound(f"Could not find Endpoint Group: {group_id}.")
    return obj


def create_group(ident: Identity, body: dict[str, Any]) -> m.EndpointGroup:
    fields = _fields(body, create=True)
    with ident.db.session() as s:
        group = EG(
            id=new_id(), name=fields["name"], description=fields.get("description"), filters=fields["filters"]
        )
        s.add(group)
        s.flush()
    return group


def list_groups(ident: Identity, name: str | None = None) -> list[m.EndpointGroup]:
    with ident.db.reader() as s:
        q = select(EG).order_by(EG.name, EG.id)
        if name is not None:
            q = q.where(EG.name == name)
        return list(s.scalars(q))


def get_group(ident: Identity, group_id: str) -> m.EndpointGroup:
    with ident.db.reader() as s:
        return _group(s, ident, group_id)


def update_group(ident: Identity, group_id: str, body: dict[str, Any]) -> m.EndpointGroup:
    if "id" in body and body["id"] != group_id:
        raise ValidationError("Cannot change ID.")
    body = {k: v for k, v in body.items() if k != "id"}
    fields = _fields(body, create=False)
    with ident.db.session() as s:
        group = _group(s, ident, group_id)
        for key, value in fields.items():
            setattr(group, key, value)
        s.flush()
    return group


def delete_group(ident: Identity, group_id: str) -> None:
    with ident.db.session() as s:
        group = _group(s, ident, group_id)
        for assoc in s.scalars(
            select(m.ProjectEndpointGroup).where(m.ProjectEndpointGroup.endpoint_group_id == group_id)
        ):
            s.delete(assoc)
        s.delete(group)


def _matches(ep: m.Endpoint, filters: dict[str, Any]) -> bool:
    return all(getattr(ep, key, object()) == value for key, value in filters.items() if key in FILTER_KEYS)


def _group_endpoints(s: Session, group: m.EndpointGroup) -> list[m.Endpoint]:
    eps = s.scalars(select(m.Endpoint).order_by(m.Endpoint.service_id, m.Endpoint.interface, m.Endpoint.id))
    return [ep for ep in eps if _matches(ep, group.filters or {})]


def endpoints_in_group(ident: Identity, group_id: str) -> list[m.Endpoint]:
    with ident.db.reader() as s:
        return _group_endpoints(s, _group(s, ident, group_id))


def projects_in_group(ident: Identity, group_id: str) -> list[m.Project]:
    with ident.db.reader() as s:
        _group(s, ident, group_id)
        q = (
            select(m.Project)
            .join(m.ProjectEndpointGroup, m.ProjectEndpointGroup.project_id == m.Project.id)
            .where(m.ProjectEndpointGroup.endpoint_group_id == group_id)
            .order_by(m.Project.name, m.Project.id)
        )
        return list(s.scalars(q))


# -- endpoint group <-> project ---------------------------------------------------------
def _group_assoc(s: Session, group_id: str, project_id: str) -> m.ProjectEndpointGroup:
    assoc = s.get(m.ProjectEndpointGroup, (group_id, project_id))
    if assoc is None:
        raise NotFound("Endpoint Group Project Association not found")
    return assoc


def get_group_in_project(ident: Identity, group_id: str, project_id: str) -> m.ProjectEndpointGroup:
    with ident.db.reader() as s:
        ident.get(s, m.Project, project_id, "project")
        _group(s, ident, group_id)
        return _group_assoc(s, group_id, project_id)


def add_group_to_project(ident: Identity, group_id: str, project_id: str) -> None:
    with ident.db.session() as s:
        ident.get(s, m.Project, project_id, "project")
        _group(s, ident, group_id)
        if s.get(m.ProjectEndpointGroup, (group_id, project_id)) is not None:
            raise Conflict("Conflict occurred attempting to store project_endpoint_group - Duplicate entry.")
        s.add(m.ProjectEndpointGroup(endpoint_group_id=group_id, project_id=project_id))


def remove_group_from_project(ident: Identity, group_id: str, project_id: str) -> None:
    with ident.db.session() as s:
        ident.get(s, m.Project, project_id, "project")
        _group(s, ident, group_id)
        s.delete(_group_assoc(s, group_id, project_id))


def groups_for_project(ident: Identity, project_id: str) -> list[m.EndpointGroup]:
    with ident.db.reader() as s:
        ident.get(s, m.Project, project_id, "project")
        q = (
            select(EG)
            .join(m.ProjectEndpointGroup, m.ProjectEndpointGroup.endpoint_group_id == EG.id)
            .where(m.ProjectEndpointGroup.project_id == project_id)
            .order_by(EG.name, EG.id)
        )
        return list(s.scalars(q))


# -- endpoint <-> project ---------------------------------------------------------------
def _endpoint_assoc(s: Session, endpoint_id: str, project_id: str) -> m.ProjectEndpoint:
    assoc = s.get(m.ProjectEndpoint, (endpoint_id, project_id))
    if assoc is None:
        raise NotFound(f"Endpoint {endpoint_id} not found in project {project_id}")
    return assoc


def add_endpoint_to_project(ident: Identity, endpoint_id: str, project_id: str) -> None:
    with ident.db.session() as s:
        ident.get(s, m.Endpoint, endpoint_id, "endpoint")
        ident.get(s, m.Project, project_id, "project")
        if s.get(m.ProjectEndpoint, (endpoint_id, project_id)) is not None:
            raise Conflict("Conflict occurred attempting to store project_endpoint - Duplicate entry.")
        s.add(m.ProjectEndpoint(endpoint_id=endpoint_id, project_id=project_id))


def check_endpoint_in_project(ident: Identity, endpoint_id: str, project_id: str) -> None:
    with ident.db.reader() as s:
        ident.get(s, m.Endpoint, endpoint_id, "endpoint")
        ident.get(s, m.Project, project_id, "project")
        _endpoint_assoc(s, endpoint_id, project_id)


def remove_endpoint_from_project(ident: Identity, endpoint_id: str, project_id: str) -> None:
    with ident.db.session() as s:
        s.delete(_endpoint_assoc(s, endpoint_id, project_id))


def projects_for_endpoint(ident: Identity, endpoint_id: str) -> list[m.Project]:
    with ident.db.reader() as s:
        ident.get(s, m.Endpoint, endpoint_id, "endpoint")
        q = (
            select(m.Project)
            .join(m.ProjectEndpoint, m.ProjectEndpoint.project_id == m.Project.id)
            .where(m.ProjectEndpoint.endpoint_id == endpoint_id)
            .order_by(m.Project.name, m.Project.id)
        )
        return list(s.scalars(q))


def endpoints_for_project(ident: Identity, project_id: str) -> list[m.Endpoint]:
    """The endpoints associated directly, then those of the project's endpoint groups."""
    with ident.db.reader() as s:
        ident.get(s, m.Project, project_id, "project")
        direct = select(m.Endpoint).join(m.ProjectEndpoint, m.ProjectEndpoint.endpoint_id == m.Endpoint.id)
        found = {ep.id: ep for ep in s.scalars(direct.where(m.ProjectEndpoint.project_id == project_id))}
        groups = s.scalars(
            select(EG)
            .join(m.ProjectEndpointGroup, m.ProjectEndpointGroup.endpoint_group_id == EG.id)
            .where(m.ProjectEndpointGroup.project_id == project_id)
        )
        for group in groups:
            for ep in _group_endpoints(s, group):
                found.setdefault(ep.id, ep)
        return list(found.values())
