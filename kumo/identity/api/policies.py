"""``/v3/policies``: Keystone's (deprecated) policy blob store."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.identity import models as m
from kumo.identity.api.common import collection, enforce, ident
from kumo.identity.service import policies
from kumo.identity.service.core import require_object

api = API()


def render(call: Call, p: m.Policy) -> dict[str, Any]:
    return {
        **(p.extra or {}),
        "id": p.id,
        "type": p.type,
        "blob": p.blob,
        "links": {"self": call.url(f"/v3/policies/{p.id}")},
    }


@api.route("/v3/policies", "GET", "HEAD")
def list_policies(call: Call):
    enforce(call, "list_policies")
    items = policies.list_all(ident(call), call.query.get("type"))
    return collection(call, "policies", items, lambda p: render(call, p))


@api.route("/v3/policies", "POST", status=201)
def create_policy(call: Call):
    enforce(call, "create_policy")
    return {"policy": render(call, policies.create(ident(call), require_object(call.body, "policy")))}


@api.route("/v3/policies/{policy_id}", "GET", "HEAD")
def get_policy(call: Call):
    enforce(call, "get_policy")
    return {"policy": render(call, policies.get(ident(call), call.params["policy_id"]))}


@api.route("/v3/policies/{policy_id}", "PATCH")
def update_policy(call: Call):
    enforce(call, "update_policy")
    body = require_object(call.body, "policy")
    return {"policy": render(call, policies.update(ident(call), call.params["policy_id"], body))}


@api.route("/v3/policies/{policy_id}", "DELETE", status=204)
def delete_policy(call: Call):
    enforce(call, "delete_policy")
    policies.delete(ident(call), call.params["policy_id"])
