"""``/v3/regions``, ``/v3/services``, ``/v3/endpoints``: the service catalog."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.identity import models as m
from kumo.identity.api.common import collection, enforce, ident
from kumo.identity.service import catalog
from kumo.identity.service.core import require_object

api = API()


def render_region(call: Call, r: m.Region) -> dict[str, Any]:
    return {
        **(r.extra or {}),
        "id": r.id,
        "description": r.description or "",
        "parent_region_id": r.parent_region_id,
        "links": {"self": call.url(f"/v3/regions/{r.id}")},
    }


def render_service(call: Call, svc: m.Service) -> dict[str, Any]:
    body = {
        **(svc.extra or {}),
        "id": svc.id,
        "type": svc.type,
        "name": svc.name,
        "enabled": svc.enabled,
        "links": {"self": call.url(f"/v3/services/{svc.id}")},
    }
    if svc.description:
        body["description"] = svc.description
    return body


def render_endpoint(call: Call, e: m.Endpoint) -> dict[str, Any]:
    return {
        **(e.extra or {}),
        "id": e.id,
        "interface": e.interface,
        "region_id": e.region_id,
        "region": e.region_id,
        "service_id": e.service_id,
        "url": e.url,
        "enabled": e.enabled,
        "links": {"self": call.url(f"/v3/endpoints/{e.id}")},
    }


# -- regions ---------------------------------------------------------------------
@api.route("/v3/regions", "GET")
def list_regions(call: Call):
    enforce(call, "list_regions")
    items = catalog.list_regions(ident(call), call.query.get("parent_region_id"))
    return collection(call, "regions", items, lambda r: render_region(call, r))


@api.route("/v3/regions", "POST", status=201)
def create_region(call: Call):
    enforce(call, "create_region")
    region = catalog.create_region(ident(call), require_object(call.body, "region"))
    return {"region": render_region(call, region)}


@api.route("/v3/regions/{region_id}", "PUT", status=201)
def put_region(call: Call):
    enforce(call, "create_region")
    body = require_object(call.body, "region")
    region = catalog.create_region(ident(call), body, call.params["region_id"])
    return {"region": render_region(call, region)}


@api.route("/v3/regions/{region_id}", "GET")
def get_region(call: Call):
    enforce(call, "get_region")
    return {"region": render_region(call, catalog.get_region(ident(call), call.params["region_id"]))}


@api.route("/v3/regions/{region_id}", "PATCH")
def update_region(call: Call):
    enforce(call, "update_region")
    body = require_object(call.body, "region")
    return {"region": render_region(call, catalog.update_region(ident(call), call.params["region_id"], body))}


@api.route("/v3/regions/{region_id}", "DELETE", status=204)
def delete_region(call: Call):
    enforce(call, "delete_region")
    catalog.delete_region(ident(call), call.params["region_id"])


# -- services --------------------------------------------------------------------
@api.route("/v3/services", "GET")
def list_services(call: Call):
    enforce(call, "list_services")
    items = catalog.list_services(ident(call), call.query.get("type"), call.query.get("name"))
    return collection(call, "services", items, lambda x: render_service(call, x))


@api.route("/v3/services", "POST", status=201)
def create_service(call: Call):
    enforce(call, "create_service")
    svc = catalog.create_service(ident(call), require_object(call.body, "service"))
    return {"service": render_service(call, svc)}


@api.route("/v3/services/{service_id}", "GET")
def get_service(call: Call):
    enforce(call, "get_service")
    return {"service": render_service(call, catalog.get_service(ident(call), call.params["service_id"]))}


@api.route("/v3/services/{service_id}", "PATCH")
def update_service(call: Call):
    enforce(call, "update_service")
    body = require_object(call.body, "service")
    return {
        "service": render_service(call, catalog.update_service(ident(call), call.params["service_id"], body))
    }


@api.route("/v3/services/{service_id}", "DELETE", status=204)
def delete_service(call: Call):
    enforce(call, "delete_service")
    catalog.delete_service(ident(call), call.params["service_id"])


# -- endpoints -------------------------------------------------------------------
@api.route("/v3/endpoints", "GET")
def list_endpoints(call: Call):
    enforce(call, "list_endpoints")
    q = call.query
    items = catalog.list_endpoints(ident(call), q.get("interface"), q.get("service_id"), q.get("region_id"))
    return collection(call, "endpoints", items, lambda e: render_endpoint(call, e))


@api.route("/v3/endpoints", "POST", status=201)
def create_endpoint(call: Call):
    enforce(call, "create_endpoint")
    ep = catalog.create_endpoint(ident(call), require_object(call.body, "endpoint"))
    return {"endpoint": render_endpoint(call, ep)}


@api.route("/v3/endpoints/{endpoint_id}", "GET")
def get_endpoint(call: Call):
    enforce(call, "get_endpoint")
    return {"endpoint": render_endpoint(call, catalog.get_endpoint(ident(call), call.params["endpoint_id"]))}


@api.route("/v3/endpoints/{endpoint_id}", "PATCH")
def update_endpoint(call: Call):
    enforce(call, "update_endpoint")
    body = require_object(call.body, "endpoint")
    ep = catalog.update_endpoint(ident(call), call.params["endpoint_id"], body)
    return {"endpoint": render_endpoint(call, ep)}


@api.route("/v3/endpoints/{endpoint_id}", "DELETE", status=204)
def delete_endpoint(call: Call):
    enforce(call, "delete_endpoint")
    catalog.delete_endpoint(ident(call), call.params["endpoint_id"])
