"""The service catalog: regions, services and endpoints (Keystone v3 semantics)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.common.errors import Conflict, Forbidden
from kumo.identity import models as m
from kumo.identity.errors import ValidationError, not_found
from kumo.identity.service.core import Identity, extra_of, new_id, require_bool, require_str

INTERFACES = ("public", "internal", "admin")
_URL = re.compile(r"^[a-zA-Z0-9+.-]+:.+")
# Substitutions Keystone allows in endpoint URLs.
_URL_VARS = (
    "tenant_id",
    "project_id",
    "user_id",
    "admin_token",
    "public_port",
    "admin_port",
    "compute_port",
    "compute_host",
    "admin_bind_host",
    "public_bind_host",
    "compute_port",
)


# -- regions ---------------------------------------------------------------------
def _region_ref(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 255:
        raise ValidationError(f"Invalid input for field '{key}': {value!r} is not a valid region id.")
    return value


def _description(body: dict[str, Any]) -> str:
    value = body.get("description")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"Invalid input for field 'description': {value!r} is not of type 'string'.")
    if len(value) > 255:
        raise ValidationError("Invalid input for field 'description': longer than 255 characters.")
    return value


def _check_no_cycle(s: Session, region_id: str, parent_id: str | None) -> None:
    seen = {region_id}
    while parent_id:
        if parent_id in seen:
            raise ValidationError(
                f"The specified parent region {parent_id} would create a circular region hierarchy."
            )
        seen.add(parent_id)
        parent_id = s.scalar(select(m.Region.parent_region_id).where(m.Region.id == parent_id))


def create_region(ident: Identity, body: dict[str, Any], region_id: str | None = None) -> m.Region:
    rid = body.get("id")
    if rid is not None and not isinstance(rid, str):
        raise ValidationError(f"Invalid input for field 'id': {rid!r} is not of type 'string'.")
    if region_id is not None:
        if rid and rid != region_id:
            raise ValidationError(f'Conflicting region IDs specified: "{region_id}" != "{rid}"')
        rid = region_id
    rid = rid or new_id()
    if len(rid) > 255:
        raise ValidationError("Invalid input for field 'id': longer than 255 characters.")
    parent = _region_ref(body, "parent_region_id")
    description = _description(body)
    extra = extra_of(body, ("description", "parent_region_id"))
    with ident.db.session() as s:
        if s.get(m.Region, rid) is not None:
            raise Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {rid}.")
        if parent is not None and s.get(m.Region, parent) is None:
            raise not_found("region", parent)
        region = m.Region(id=rid, description=description, parent_region_id=parent, extra=extra)
        s.add(region)
        s.flush()
    return region


def list_regions(ident: Identity, parent_region_id: str | None = None) -> list[m.Region]:
    with ident.db.reader() as s:
        q = select(m.Region).order_by(m.Region.id)
        if parent_region_id is not None:
            q = q.where(m.Region.parent_region_id == parent_region_id)
        items = list(s.scalars(q))
        return items


def get_region(ident: Identity, region_id: str) -> m.Region:
    with ident.db.reader() as s:
        obj = ident.get(s, m.Region, region_id, "region")
        return obj


def update_region(ident: Identity, region_id: str, body: dict[str, Any]) -> m.Region:
    if not body:
        raise ValidationError("Invalid input for field 'region': it must have at least one property.")
    if "id" in body and body["id"] != region_id:
        raise ValidationError("Cannot change ID.")
    with ident.db.session() as s:
        region = ident.get(s, m.Region, region_id, "region")
        if "parent_region_id" in body:
            parent = _region_ref(body, "parent_region_id")
            if parent is not None:
                if s.get(m.Region, parent) is None:
                    raise not_found("region", parent)
                _check_no_cycle(s, region_id, parent)
            region.parent_region_id = parent
        if "description" in body:
            region.description = _description(body)
        extra = extra_of(body, ("description", "parent_region_id"))
        if extra:
            region.extra = {**(region.extra or {}), **extra}
        s.flush()
    return region


def _subtree(s: Session, region_id: str) -> list[str]:
    result, frontier = [region_id], [region_id]
    while frontier:
        children = [
            c
            for c in s.scalars(select(m.Region.id).where(m.Region.parent_region_id.in_(frontier)))
            if c not in result
        ]
        result.extend(children)
        frontier = children
    return result


def delete_region(ident: Identity, region_id: str) -> None:
    """Keystone deletes the child regions too, unless any of them has endpoints (403)."""
    with ident.db.session() as s:
        ident.get(s, m.Region, region_id, "region")
        ids = _subtree(s, region_id)
        if s.scalar(select(m.Endpoint.id).where(m.Endpoint.region_id.in_(ids)).limit(1)):
            raise Forbidden(
                f"Unable to delete region {region_id} because it or its child regions have associated endpoints."
            )
        for region in s.scalars(select(m.Region).where(m.Region.id.in_(ids))):
            s.delete(region)


# -- services --------------------------------------------------------------------
def _service_fields(body: dict[str, Any], *, create: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if create or "type" in body:
        fields["type"] = require_str(body, "type")
    if "name" in body:
        fields["name"] = require_str(body, "name")
    if "description" in body:
        value = body["description"]
        if value is not None and not isinstance(value, str):
            raise ValidationError(
                f"Invalid input for field 'description': {value!r} is not of type 'string'."
            )
        fields["description"] = value or ""
    if "enabled" in body:
        fields["enabled"] = require_bool(body, "enabled", True)
    return fields


_SERVICE_KNOWN = ("type", "name", "description", "enabled")


def create_service(ident: Identity, body: dict[str, Any]) -> m.Service:
    fields = _service_fields(body, create=True)
    sid = body.get("id") if isinstance(body.get("id"), str) and body.get("id") else new_id()
    with ident.db.session() as s:
        if s.get(m.Service, sid) is not None:
            raise Conflict(f"Conflict occurred attempting to store service - Duplicate ID, {sid}.")
        svc = m.Service(
            id=sid,
            type=fields["type"],
            name=fields.get("name", ""),
            description=fields.get("description", ""),
            enabled=fields.get("enabled", True),
            extra=extra_of(body, _SERVICE_KNOWN),
        )
        s.add(svc)
        s.flush()
    return svc


def list_services(ident: Identity, type: str | None = None, name: str | None = None) -> list[m.Service]:
    with ident.db.reader() as s:
        q = select(m.Service).order_by(m.Service.type, m.Service.id)
        if type is not None:
            q = q.where(m.Service.type == type)
        if name is not None:
            q = q.where(m.Service.name == name)
        items = list(s.scalars(q))
        return items


def get_service(ident: Identity, service_id: str) -> m.Service:
    with ident.db.reader() as s:
        obj = ident.get(s, m.Service, service_id, "service")
        return obj


def update_service(ident: Identity, service_id: str, body: dict[str, Any]) -> m.Service:
    if not body:
        raise ValidationError("Invalid input for field 'service': it must have at least one property.")
    if "id" in body and body["id"] != service_id:
        raise ValidationError("Cannot change ID.")
    fields = _service_fields(body, create=False)
    with ident.db.session() as s:
        svc = ident.get(s, m.Service, service_id, "service")
        for key, value in fields.items():
            setattr(svc, key, value)
        extra = extra_of(body, _SERVICE_KNOWN)
        if extra:
            svc.extra = {**(svc.extra or {}), **extra}
        s.flush()
    return svc


def delete_service(ident: Identity, service_id: str) -> None:
    with ident.db.session() as s:
        svc = ident.get(s, m.Service, service_id, "service")
        s.execute(delete(m.Endpoint).where(m.Endpoint.service_id == service_id))
        s.delete(svc)


# -- endpoints -------------------------------------------------------------------
_ENDPOINT_KNOWN = ("service_id", "interface", "url", "region_id", "region", "enabled")


def _check_url(url: str) -> None:
    if len(url) > 225 or not _URL.match(url):
        raise ValidationError(f"Invalid input for field 'url': {url!r} is not a valid URL.")
    try:
        url.replace("$(", "%(") % dict.fromkeys(_URL_VARS, "")
    except (KeyError, TypeError, ValueError):
        raise ValidationError(
            f"Invalid input for field 'url': {url!r} has an unknown substitution."
        ) from None


def _endpoint_fields(s: Session, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if create or "service_id" in body:
        sid = require_str(body, "service_id", max_len=64)
        if s.get(m.Service, sid) is None:
            raise ValidationError("Expecting to find endpoint service_id in service table.")
        fields["service_id"] = sid
    if create or "interface" in body:
        interface = body.get("interface")
        if interface not in INTERFACES:
            if interface is None:
                raise ValidationError("'interface' is a required property.")
            raise ValidationError(
                f"Invalid input for field 'interface': {interface!r} is not one of ['admin', 'internal', 'public']."
            )
        fields["interface"] = interface
    if create or "url" in body:
        url = body.get("url")
        if url is None:
            raise ValidationError("'url' is a required property.")
        if not isinstance(url, str):
            raise ValidationError(f"Invalid input for field 'url': {url!r} is not of type 'string'.")
        _check_url(url)
        fields["url"] = url
    if "enabled" in body:
        fields["enabled"] = require_bool(body, "enabled", True)
    for key in ("region_id", "region"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"Invalid input for field '{key}': {value!r} is not of type 'string'.")
    if body.get("region_id") is not None:
        if s.get(m.Region, body["region_id"]) is None:
            raise ValidationError("Expecting to find endpoint region_id in region table.")
        fields["region_id"] = body["region_id"]
    elif body.get("region") is not None:
        # The v2-style ``region`` creates the region when missing (Keystone does this).
        rid = body["region"]
        if not rid or len(rid) > 255:
            raise ValidationError(f"Invalid input for field 'region': {rid!r} is not a valid region id.")
        if s.get(m.Region, rid) is None:
            s.add(m.Region(id=rid, description="", parent_region_id=None, extra={}))
            s.flush()
        fields["region_id"] = rid
    elif "region_id" in body or "region" in body:
        fields["region_id"] = None
    return fields


def create_endpoint(ident: Identity, body: dict[str, Any]) -> m.Endpoint:
    with ident.db.session() as s:
        fields = _endpoint_fields(s, body, create=True)
        eid = body.get("id") if isinstance(body.get("id"), str) and body.get("id") else new_id()
        if s.get(m.Endpoint, eid) is not None:
            raise Conflict(f"Conflict occurred attempting to store endpoint - Duplicate ID, {eid}.")
        ep = m.Endpoint(
            id=eid,
            service_id=fields["service_id"],
            interface=fields["interface"],
            url=fields["url"],
            region_id=fields.get("region_id"),
            enabled=fields.get("enabled", True),
            extra=extra_of(body, _ENDPOINT_KNOWN),
        )
        s.add(ep)
        s.flush()
    return ep


def list_endpoints(
    ident: Identity, interface: str | None = None, service_id: str | None = None, region_id: str | None = None
) -> list[m.Endpoint]:
    if interface is not None and interface not in INTERFACES:
        raise ValidationError(
            f"Invalid input for field 'interface': {interface!r} is not one of ['admin', 'internal', 'public']."
        )
    with ident.db.reader() as s:
        q = select(m.Endpoint).order_by(m.Endpoint.service_id, m.Endpoint.interface, m.Endpoint.id)
        if interface is not None:
            q = q.where(m.Endpoint.interface == interface)
        if service_id is not None:
            q = q.where(m.Endpoint.service_id == service_id)
        if region_id is not None:
            q = q.where(m.Endpoint.region_id == region_id)
        items = list(s.scalars(q))
        return items


def get_endpoint(ident: Identity, endpoint_id: str) -> m.Endpoint:
    with ident.db.reader() as s:
        obj = ident.get(s, m.Endpoint, endpoint_id, "endpoint")
        return obj


def update_endpoint(ident: Identity, endpoint_id: str, body: dict[str, Any]) -> m.Endpoint:
    if not body:
        raise ValidationError("Invalid input for field 'endpoint': it must have at least one property.")
    if "id" in body and body["id"] != endpoint_id:
        raise ValidationError("Cannot change ID.")
    with ident.db.session() as s:
        ep = ident.get(s, m.Endpoint, endpoint_id, "endpoint")
        for key, value in _endpoint_fields(s, body, create=False).items():
            setattr(ep, key, value)
        extra = extra_of(body, _ENDPOINT_KNOWN)
        if extra:
            ep.extra = {**(ep.extra or {}), **extra}
        s.flush()
    return ep


def delete_endpoint(ident: Identity, endpoint_id: str) -> None:
    with ident.db.session() as s:
        s.delete(ident.get(s, m.Endpoint, endpoint_id, "endpoint"))
