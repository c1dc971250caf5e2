"""``/v2/info/*`` and ``/v2/schemas/*``."""

from __future__ import annotations

from kumo.common.asgi import API, Call
from kumo.image.api.render import svc
from kumo.image.errors import NotFound
from kumo.image.schemas import SCHEMAS
from kumo.image.service import data

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


@api.route("/v2/info/stores", "GET")
def info_stores(call: Call):
    return {
        "stores": [{"id": st.id, "description": st.description, "default": "true"} for st in svc(call).stores]
    }


@api.route("/v2/info/usage", "GET")
def info_usage(call: Call):
    return {"usage": data.usage(svc(call), call.ctx)}


@api.route("/v2/schemas/{name:path}", "GET")
def show_schema(call: Call):
    make = SCHEMAS.get(call.params["name"])
    if make is None:
        raise NotFound(f"Schema {call.params['name']} not found.")
    return make()
