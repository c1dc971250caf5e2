"""``/v2/info/*`` and ``/v2/schemas/*``."""

from __future__ import annotations

from kumo.common.asgi import API, Call
from kumo.image.api.render import svc
from kumo.image.errors import NotFound
from kumo.image.schemas import SCHEMAS
from kumo.image.service import data
from kumo.image.store import read_only

api = API()


@api.route("/v2/info/import", "GET")
def info_import(call: Call):
    return {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": list(data.IMPORT_METHODS),
        }
    }


def _store(service, st) -> dict:  # type: ignore[no-untyped-def]
    body = {"id": st.id, "description": st.description}
    if st.id == service.default_store:
        body["default"] = "true"
    if read_only(st):
        body["read-only"] = "true"
    if service.settings.store_weights:
        body["weight"] = service.settings.store_weights.get(st.id, 0)
    return body


@api.route("/v2/info/stores", "GET")
def info_stores(call: Call):
    service = svc(call)
    return {"stores": [_store(service, st) for st in service.stores]}


@api.route("/v2/info/stores/detail", "GET")
def info_stores_detail(call: Call):
    service = svc(call)
    service.enforce(call.ctx, "stores_info_detail")
    out = []
    for st in service.stores:
        body = _store(service, st)
        body["type"] = st.kind
        if st.kind == "file":
            body["properties"] = {"datadir": str(st.root)}  # type: ignore[attr-defined]
        elif st.kind == "swift":
            body["properties"] = {"container": st.container}  # type: ignore[attr-defined]
        else:
            body["properties"] = {}
        out.append(body)
    return {"stores": out}


@api.route("/v2/info/usage", "GET")
def info_usage(call: Call):
    return {"usage": data.usage(svc(call), call.ctx)}


@api.route("/v2/schemas/{name:path}", "GET")
def show_schema(call: Call):
    make = SCHEMAS.get(call.params["name"])
    if make is None:
        raise NotFound(f"Schema {call.params['name']} not found.")
    return make()
