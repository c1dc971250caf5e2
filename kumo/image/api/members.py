"""``/v2/images/{id}/members``: sharing."""

from __future__ import annotations

from kumo.common.asgi import API, Call
from kumo.image.api.render import render_member, svc
from kumo.image.service import members

api = API()


@api.route("/v2/images/{image_id}/members", "POST")
def create_member(call: Call):
    return render_member(members.create_member(svc(call), call.ctx, call.params["image_id"], call.body))


@api.route("/v2/images/{image_id}/members", "GET")
def list_members(call: Call):
    found = members.list_members(svc(call), call.ctx, call.params["image_id"])
    return {"members": [render_member(m) for m in found], "schema": "/v2/schemas/members"}


@api.route("/v2/images/{image_id}/members/{member_id}", "GET")
def show_member(call: Call):
    return render_member(
        members.show_member(svc(call), call.ctx, call.params["image_id"], call.params["member_id"])
    )


@api.route("/v2/images/{image_id}/members/{member_id}", "PUT")
def update_member(call: Call):
    p = call.params
    return render_member(members.update_member(svc(call), call.ctx, p["image_id"], p["member_id"], call.body))


@api.route("/v2/images/{image_id}/members/{member_id}", "DELETE")
def delete_member(call: Call):
    members.delete_member(svc(call), call.ctx, call.params["image_id"], call.params["member_id"])
    return None
