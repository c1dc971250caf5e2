"""``/v3/domains/{domain_id}/config[/{group}[/{option}]]`` and ``/v3/domains/config/.../default``."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call, json_response
from kumo.identity.api.common import enforce, ident
from kumo.identity.errors import ValidationError
from kumo.identity.service import domain_configs as dc

api = API()
D = "/v3/domains/{domain_id}/config"


def _body_config(call: Call) -> Any:
    body = call.body
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValidationError("Expecting to find config in request body.")
    return body.get("config", {})


# -- defaults (registered first: literal "config" segments) --------------------------
@api.route("/v3/domains/config/default", "GET", "HEAD")
def get_default(call: Call):
    enforce(call, "get_domain_config_default")
    return {"config": dc.get_default()}


@api.route("/v3/domains/config/{group}/default", "GET", "HEAD")
def get_default_group(call: Call):
    enforce(call, "get_domain_config_default")
    return {"config": dc.get_default(call.params["group"])}


@api.route("/v3/domains/config/{group}/{option}/default", "GET", "HEAD")
def get_default_option(call: Call):
    enforce(call, "get_domain_config_default")
    return {"config": dc.get_default(call.params["group"], call.params["option"])}


# -- a domain's config -----------------------------------------------------------------
def _get(call: Call):
    p = call.params
    group, option = p.get("group"), p.get("option")
    if group == dc.SECURITY_COMPLIANCE:
        enforce(call, "get_security_compliance_domain_config")
        return {"config": dc.get_security_compliance(p["domain_id"], option, ident(call).settings)}
    enforce(call, "get_domain_config")
    return {"config": dc.get(ident(call), p["domain_id"], group, option)}


def _patch(call: Call):
    enforce(call, "update_domain_config")
    p = call.params
    config = dc.update(ident(call), p["domain_id"], _body_config(call), p.get("group"), p.get("option"))
    return {"config": config}


def _delete(call: Call):
    enforce(call, "delete_domain_config")
    p = call.params
    dc.delete_config(ident(call), p["domain_id"], p.get("group"), p.get("option"))


for path in (D, D + "/{group}", D + "/{group}/{option}"):
    api.route(path, "GET", "HEAD")(_get)
    api.route(path, "PATCH")(_patch)
    api.route(path, "DELETE", status=204)(_delete)


@api.route(D, "PUT", status=201)
def create_config(call: Call):
    enforce(call, "create_domain_config")
    config, created = dc.create(ident(call), call.params["domain_id"], _body_config(call))
    return json_response({"config": config}, 201 if created else 200)
