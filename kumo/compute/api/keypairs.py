"""``/os-keypairs``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kumo.common.asgi import API, Call, json_response
from kumo.common.pagination import paginate, parse_limit
from kumo.compute.api.common import mv, next_link, svc
from kumo.compute.models import Keypair
from kumo.compute.service import keypairs

api = API()


def _iso(dt) -> str:  # type: ignore[no-untyped-def]
    return dt.isoformat()


def render(call: Call, kp: Keypair, full: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"name": kp.name, "public_key": kp.public_key, "fingerprint": kp.fingerprint}
    if mv(call).matches("2.2"):
        body["type"] = kp.type
    if full:
        body.update(
            {
                "user_id": kp.user_id,
                "deleted": False,
                "created_at": _iso(kp.created_at),
                "updated_at": None,
                "deleted_at": None,
                "id": kp.id,
            }
        )
    return body


@api.route("/v2.1/os-keypairs", "GET")
def list_keypairs(call: Call):
    user_id = call.query.get("user_id") if mv(call).matches("2.10") else None
    items = keypairs.list_keypairs(svc(call), call.ctx, user_id)
    body: dict[str, Any] = {}
    if mv(call).matches("2.35"):
        limit = parse_limit(call.query)
        items, _ = paginate(items, limit, call.query.get("marker"), key=lambda k: k.name)
        if limit and len(items) == limit:
            body["keypairs_links"] = next_link(call, "os-keypairs", items[-1].name)
    body["keypairs"] = [{"keypair": render(call, k)} for k in items]
    return body


@api.route("/v2.1/os-keypairs", "POST")
def create_keypair(call: Call):
    kp, private = keypairs.create_keypair(svc(call), call.ctx, call.body, mv(call))
    body = render(call, kp)
    body["user_id"] = kp.user_id
    if private:
        body["private_key"] = private
    return json_response({"keypair": body}, 201 if mv(call).matches("2.2") else 200)


@api.route("/v2.1/os-keypairs/{name}", "GET")
def show_keypair(call: Call):
    user_id = call.query.get("user_id") if mv(call).matches("2.10") else None
    return {
        "keypair": render(
            call, keypairs.get_keypair(svc(call), call.ctx, call.params["name"], user_id), full=True
        )
    }


@api.route("/v2.1/os-keypairs/{name}", "DELETE")
def delete_keypair(call: Call):
    user_id = call.query.get("user_id") if mv(call).matches("2.10") else None
    keypairs.delete_keypair(svc(call), call.ctx, call.params["name"], user_id)
    return Response(status_code=204 if mv(call).matches("2.2") else 202)
