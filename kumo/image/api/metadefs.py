"""``/v2/metadefs``: metadata definition namespaces, their contents, resource types."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from kumo.common.asgi import API, Call
from kumo.image.api.render import svc
from kumo.image.models import (
    MetadefNamespace,
    MetadefObject,
    MetadefProperty,
    MetadefResourceType,
    MetadefResourceTypeAssociation,
    MetadefTag,
)
from kumo.image.service import metadef_items as items
from kumo.image.service import metadefs
from kumo.image.service.core import iso

api = API()

NS = "/v2/metadefs/namespaces"


def _path(*parts: str) -> str:
    return "/".join(quote(p, safe=":") for p in parts)


def _stamps(body: dict[str, Any], row: Any) -> dict[str, Any]:
    body["created_at"] = iso(row.created_at)
    body["updated_at"] = iso(row.updated_at)
    return body


# -- documents -------------------------------------------------------------------


def render_association(assoc: MetadefResourceTypeAssociation) -> dict[str, Any]:
    body: dict[str, Any] = {"name": assoc.resource_type}
    if assoc.prefix is not None:
        body["prefix"] = assoc.prefix
    if assoc.properties_target is not None:
        body["properties_target"] = assoc.properties_target
    return _stamps(body, assoc)


def render_property(prop: MetadefProperty) -> dict[str, Any]:
    return {"name": prop.name, **(prop.json_schema or {})}


def render_object(ns_name: str, obj: MetadefObject) -> dict[str, Any]:
    body: dict[str, Any] = {"name": obj.name}
    if obj.description is not None:
        body["description"] = obj.description
    if obj.required is not None:
        body["required"] = obj.required
    body["properties"] = obj.properties or {}
    body["self"] = f"{NS}/{_path(ns_name)}/objects/{_path(obj.name)}"
    body["schema"] = "/v2/schemas/metadefs/object"
    return _stamps(body, obj)


def render_tag(tag: MetadefTag) -> dict[str, Any]:
    return _stamps({"name": tag.name}, tag)


def render_namespace(view: metadefs.NamespaceView) -> dict[str, Any]:
    ns: MetadefNamespace = view.namespace
    body: dict[str, Any] = {"namespace": ns.namespace}
    for key in ("display_name", "description"):
        if getattr(ns, key) is not None:
            body[key] = getattr(ns, key)
    body.update({"visibility": ns.visibility, "protected": ns.protected, "owner": ns.owner})
    if view.associations:
        body["resource_type_associations"] = [render_association(a) for a in view.associations]
    if view.objects:
        body["objects"] = [
            {k: v for k, v in render_object(ns.namespace, o).items() if k not in ("self", "schema")}
            for o in view.objects
        ]
    if view.properties:
        body["properties"] = {
            p.name: {k: v for k, v in render_property(p).items() if k != "name"} for p in view.properties
        }
    if view.tags:
        body["tags"] = [{"name": t.name} for t in view.tags]
    body["self"] = f"{NS}/{_path(ns.namespace)}"
    body["schema"] = "/v2/schemas/metadefs/namespace"
    return _stamps(body, ns)


# -- namespaces --------------------------------------------------------------------


@api.route(NS, "POST", status=201)
def create_namespace(call: Call):
    return render_namespace(metadefs.create_namespace(svc(call), call.ctx, call.body))


@api.route(NS, "GET")
def list_namespaces(call: Call):
    views = metadefs.list_namespaces(svc(call), call.ctx, call.query)
    body: dict[str, Any] = {
        "namespaces": [render_namespace(v) for v in views],
        "first": NS,
        "schema": "/v2/schemas/metadefs/namespaces",
    }
    limit = call.query.get("limit")
    if limit and views and len(views) >= int(limit):
        body["next"] = f"{NS}?marker={quote(views[-1].namespace.namespace)}&limit={limit}"
    return body


@api.route(NS + "/{ns}", "GET")
def show_namespace(call: Call):
    return render_namespace(metadefs.show_namespace(svc(call), call.ctx, call.params["ns"]))


@api.route(NS + "/{ns}", "PUT")
def update_namespace(call: Call):
    return render_namespace(metadefs.update_namespace(svc(call), call.ctx, call.params["ns"], call.body))


@api.route(NS + "/{ns}", "DELETE")
def delete_namespace(call: Call):
    metadefs.delete_namespace(svc(call), call.ctx, call.params["ns"])


# -- resource types ------------------------------------------------------------------


def render_resource_type(rt: MetadefResourceType) -> dict[str, Any]:
    return _stamps({"name": rt.name}, rt)


@api.route("/v2/metadefs/resource_types", "GET")
def list_resource_types(call: Call):
    return {
        "resource_types": [render_resource_type(r) for r in metadefs.list_resource_types(svc(call), call.ctx)]
    }


@api.route(NS + "/{ns}/resource_types", "POST", status=201)
def create_association(call: Call):
    return render_association(metadefs.create_association(svc(call), call.ctx, call.params["ns"], call.body))


@api.route(NS + "/{ns}/resource_types", "GET")
def list_associations(call: Call):
    found = metadefs.list_associations(svc(call), call.ctx, call.params["ns"])
    return {"resource_type_associations": [render_association(a) for a in found]}


@api.route(NS + "/{ns}/resource_types/{rt}", "DELETE")
def delete_association(call: Call):
    metadefs.delete_association(svc(call), call.ctx, call.params["ns"], call.params["rt"])


# -- objects, properties, tags ----------------------------------------------------------


@api.route(NS + "/{ns}/objects", "POST", status=201)
def create_object(call: Call):
    ns = call.params["ns"]
    return render_object(ns, items.create(svc(call), call.ctx, "object", ns, call.body))


@api.route(NS + "/{ns}/objects", "GET")
def list_objects(call: Call):
    ns = call.params["ns"]
    found = items.list_items(svc(call), call.ctx, "object", ns, call.query)
    return {"objects": [render_object(ns, o) for o in found], "schema": "/v2/schemas/metadefs/objects"}


@api.route(NS + "/{ns}/properties", "POST", status=201)
def create_property(call: Call):
    return render_property(items.create(svc(call), call.ctx, "property", call.params["ns"], call.body))


@api.route(NS + "/{ns}/properties", "GET")
def list_properties(call: Call):
    found = items.list_items(
        svc(call), call.ctx, "property", call.params["ns"], {"sort_key": "name", "sort_dir": "asc"}
    )
    return {
        "properties": {p.name: {k: v for k, v in render_property(p).items() if k != "name"} for p in found},
        "schema": "/v2/schemas/metadefs/properties",
    }


@api.route(NS + "/{ns}/tags", "POST", status=201)
def create_tags(call: Call):
    append = (call.headers.get("x-openstack-append") or "").strip().lower() in ("true", "1", "yes")
    created = items.create_tags(svc(call), call.ctx, call.params["ns"], call.body, append=append)
    return {"tags": [{"name": t.name} for t in created]}


@api.route(NS + "/{ns}/tags", "GET")
def list_tags(call: Call):
    found = items.list_items(svc(call), call.ctx, "tag", call.params["ns"], call.query)
    return {"tags": [render_tag(t) for t in found]}


@api.route(NS + "/{ns}/tags/{name}", "POST", status=201)
def create_tag(call: Call):
    return render_tag(items.create_tag(svc(call), call.ctx, call.params["ns"], call.params["name"]))


RENDER = {
    "objects": ("object", lambda ns, item: render_object(ns, item)),
    "properties": ("property", lambda _ns, item: render_property(item)),
    "tags": ("tag", lambda _ns, item: render_tag(item)),
}


for _coll in ("objects", "properties", "tags"):

    def _routes(coll: str) -> None:
        kind, render = RENDER[coll]

        @api.route(NS + "/{ns}/" + coll + "/{name}", "GET")
        def show_item(call: Call):
            ns = call.params["ns"]
            return render(ns, items.show(svc(call), call.ctx, kind, ns, call.params["name"]))

        @api.route(NS + "/{ns}/" + coll + "/{name}", "PUT")
        def update_item(call: Call):
            ns = call.params["ns"]
            return render(ns, items.update(svc(call), call.ctx, kind, ns, call.params["name"], call.body))

        @api.route(NS + "/{ns}/" + coll + "/{name}", "DELETE")
        def delete_item(call: Call):
            items.delete_item(svc(call), call.ctx, kind, call.params["ns"], call.params["name"])

        @api.route(NS + "/{ns}/" + coll, "DELETE")
        def delete_all(call: Call):
            items.delete_all(svc(call), call.ctx, kind, call.params["ns"])

    _routes(_coll)
