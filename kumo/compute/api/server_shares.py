"""``/servers/{id}/shares`` (compute 2.97): share attachments; see kumo.compute.service.shares."""

from __future__ import annotations

from starlette.responses import Response

from kumo.common.asgi import API, Call, json_response
from kumo.compute.api.common import mv, svc
from kumo.compute.errors import BadRequest, NotFound
from kumo.compute.service import shares

api = API()


def _check(call: Call) -> None:
    """404 below 2.97 (the resource does not exist there); no query parameters are accepted."""
    if not mv(call).matches("2.97"):
        raise NotFound("The resource could not be found.")
    extra = sorted(set(call.query.keys()))
    if extra:
        raise BadRequest(
            f"Additional properties are not allowed ({', '.join(repr(k) for k in extra)} "
            f"{'was' if len(extra) == 1 else 'were'} unexpected)"
        )


@api.route("/v2.1/servers/{server_id}/shares", "GET")
def list_shares(call: Call):
    _check(call)
    return {"shares": shares.list_shares(svc(call), call.ctx, call.params["server_id"])}


@api.route("/v2.1/servers/{server_id}/shares", "POST")
def attach_share(call: Call):
    _check(call)
    share = shares.attach_share(svc(call), call.ctx, call.params["server_id"], call.body)
    return json_response({"share": share}, 201)


@api.route("/v2.1/servers/{server_id}/shares/{share_id}", "GET")
def show_share(call: Call):
    _check(call)
    return {"share": shares.show_share(svc(call), call.ctx, call.params["server_id"], call.params["share_id"])}


@api.route("/v2.1/servers/{server_id}/shares/{share_id}", "DELETE")
def detach_share(call: Call):
    _check(call)
    shares.detach_share(svc(call), call.ctx, call.params["server_id"], call.params["share_id"])
    return Response(status_code=200)
