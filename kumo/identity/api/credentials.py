"""``/v3/credentials`` and ``/v3/users/{user_id}/credentials/OS-EC2``."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.identity import models as m
from kumo.identity.api.common import collection, enforce, ident
from kumo.identity.errors import ValidationError
from kumo.identity.policies import POLICY
from kumo.identity.service import credentials as creds
from kumo.identity.service.core import require_object

api = API()


def render(call: Call, c: m.Credential) -> dict[str, Any]:
    return {
        **(c.extra or {}),
        "id": c.id,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "type": c.type,
        "blob": c.blob,
        "links": {"self": call.url(f"/v3/credentials/{c.id}")},
    }


@api.route("/v3/credentials", "GET")
def list_credentials(call: Call):
    ctx = enforce(call, "list_credentials")
    items = creds.list_all(ident(call), call.query.get("user_id"), call.query.get("type"))
    delegated = bool(ctx.trust_id or ctx.application_credential_id)
    visible = [
        c for c in items if not delegated and POLICY.check(ctx, "get_credential", {"user_id": c.user_id})
    ]
    return collection(call, "credentials", visible, lambda c: render(call, c))


@api.route("/v3/credentials", "POST", status=201)
def create_credential(call: Call):
    body = require_object(call.body, "credential")
    ctx = enforce(call, "create_credential", {"user_id": body.get("user_id")})
    creds.check_primary_auth(ctx)
    return {"credential": render(call, creds.create(ident(call), body))}


def _lookup(call: Call, action: str) -> m.Credential:
    cred = creds.get(ident(call), call.params["credential_id"])
    ctx = enforce(call, action, {"user_id": cred.user_id})
    creds.check_primary_auth(ctx)
    return cred


@api.route("/v3/credentials/{credential_id}", "GET")
def get_credential(call: Call):
    return {"credential": render(call, _lookup(call, "get_credential"))}


@api.route("/v3/credentials/{credential_id}", "PATCH")
def update_credential(call: Call):
    body = require_object(call.body, "credential")
    cred = _lookup(call, "update_credential")
    if "user_id" in body and body["user_id"] != cred.user_id:
        enforce(call, "update_credential", {"user_id": body.get("user_id")})
    return {"credential": render(call, creds.update(ident(call), cred.id, body))}


@api.route("/v3/credentials/{credential_id}", "DELETE", status=204)
def delete_credential(call: Call):
    cred = _lookup(call, "delete_credential")
    creds.delete(ident(call), cred.id)


# -- OS-EC2 ----------------------------------------------------------------------
def render_ec2(call: Call, c: m.Credential) -> dict[str, Any]:
    view = creds.ec2_view(c)
    return {**view, "links": {"self": call.url(f"/v3/users/{c.user_id}/credentials/OS-EC2/{view['access']}")}}


@api.route("/v3/users/{user_id}/credentials/OS-EC2", "GET", "HEAD")
def list_ec2_credentials(call: Call):
    user_id = call.params["user_id"]
    creds.check_primary_auth(enforce(call, "get_credential", {"user_id": user_id}))
    items = creds.ec2_list(ident(call), user_id)
    return collection(call, "credentials", items, lambda c: render_ec2(call, c))


@api.route("/v3/users/{user_id}/credentials/OS-EC2", "POST", status=201)
def create_ec2_credential(call: Call):
    user_id = call.params["user_id"]
    ctx = enforce(call, "create_credential", {"user_id": user_id})
    creds.check_primary_auth(ctx)
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get("tenant_id"), str):
        raise ValidationError("'tenant_id' is a required property.")
    cred = creds.ec2_create(ident(call), user_id, body["tenant_id"], ctx.trust_id)
    return {"credential": render_ec2(call, cred)}


@api.route("/v3/users/{user_id}/credentials/OS-EC2/{access}", "GET", "HEAD")
def get_ec2_credential(call: Call):
    user_id = call.params["user_id"]
    creds.check_primary_auth(enforce(call, "get_credential", {"user_id": user_id}))
    return {"credential": render_ec2(call, creds.ec2_get(ident(call), user_id, call.params["access"]))}


@api.route("/v3/users/{user_id}/credentials/OS-EC2/{access}", "DELETE", status=204)
def delete_ec2_credential(call: Call):
    user_id = call.params["user_id"]
    creds.check_primary_auth(enforce(call, "delete_credential", {"user_id": user_id}))
    creds.ec2_delete(ident(call), user_id, call.params["access"])
