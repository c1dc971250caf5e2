"""``/v2/images``: create, list, show, update (JSON patch), delete, actions, tags, tasks."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from kumo.common.asgi import API, Call, json_response
from kumo.image.api.render import image_doc, render_task, svc
from kumo.image.service import data, images, location_ops, patch

api = API()


@api.route("/v2/images", "POST")
def create_image(call: Call):
    image = images.create_image(svc(call), call.ctx, call.body if call.body is not None else {})
    return json_response(
        image_doc(call, image),
        201,
        {"Location": call.url(f"/v2/images/{image.id}")},
    )


@api.route("/v2/images", "GET")
def list_images(call: Call):
    st = svc(call).settings
    items = list(call.query.multi_items())
    q = images.parse_list_query(items, st.limit_param_default, st.api_limit_max)
    page, more = images.list_images(svc(call), call.ctx, q)
    body = {
        "images": [image_doc(call, i) for i in page],
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    }
    if first := _first(items):
        body["first"] = first
    if more and page:
        params = [(k, v) for k, v in items if k != "marker"] + [("marker", page[-1].id)]
        body["next"] = "/v2/images?" + urlencode(params)
    return body


def _first(items: list[tuple[str, str]]) -> str | None:
    params = [(k, v) for k, v in items if k != "marker"]
    return "/v2/images?" + urlencode(params) if params else None


@api.route("/v2/images/{image_id}", "GET")
def show_image(call: Call):
    image = images.show_image(svc(call), call.ctx, call.params["image_id"])
    return image_doc(call, image)


@api.route("/v2/images/{image_id}", "PATCH")
def update_image(call: Call):
    media = patch.check_media_type(call.headers.get("content-type"))
    ops = patch.parse(call.body, media)
    image, removed = images.update_image(svc(call), call.ctx, call.params["image_id"], ops)
    data.delete_data(svc(call), [(store, url) for store, url in removed])
    return image_doc(call, image)


@api.route("/v2/images/{image_id}", "DELETE")
def delete_image(call: Call):
    leftovers = images.delete_image(svc(call), call.ctx, call.params["image_id"])
    data.delete_data(svc(call), leftovers)
    if svc(call).cache is not None:
        svc(call).cache.remove(call.params["image_id"])
    return None


@api.route("/v2/images/{image_id}/actions/deactivate", "POST")
def deactivate(call: Call):
    images.set_active(svc(call), call.ctx, call.params["image_id"], "deactivate")
    return None


@api.route("/v2/images/{image_id}/actions/reactivate", "POST")
def reactivate(call: Call):
    images.set_active(svc(call), call.ctx, call.params["image_id"], "reactivate")
    return None


@api.route("/v2/images/{image_id}/tags/{tag:path}", "PUT")
def add_tag(call: Call):
    images.add_tag(svc(call), call.ctx, call.params["image_id"], call.params["tag"])
    return None


@api.route("/v2/images/{image_id}/tags/{tag:path}", "DELETE")
def delete_tag(call: Call):
    images.delete_tag(svc(call), call.ctx, call.params["image_id"], call.params["tag"])
    return None


@api.route("/v2/images/{image_id}/locations", "POST")
def add_location(call: Call):
    location_ops.add_location(svc(call), call.ctx, call.params["image_id"], call.body)
    return Response(status_code=202)


@api.route("/v2/images/{image_id}/locations", "GET")
def fetch_locations(call: Call):
    return location_ops.fetch_locations(svc(call), call.ctx, call.params["image_id"])


@api.route("/v2/images/{image_id}/tasks", "GET")
def image_tasks(call: Call):
    return {"tasks": [render_task(t) for t in data.list_tasks(svc(call), call.ctx, call.params["image_id"])]}


@api.route("/v2/images/", "GET", "DELETE", "PATCH")
def empty_id(call: Call):
    from kumo.image.errors import image_not_found

    raise image_not_found("")


@api.route("/v2/tasks", "POST")
def create_task(call: Call):
    """Glance's legacy tasks API: kumo runs no task types (imports go through /import)."""
    from kumo.image.errors import BadRequest

    body = call.body if isinstance(call.body, dict) else {}
    kind = body.get("type")
    raise BadRequest(
        f"Task type {kind!r} is not available: kumo imports images with the interoperable image import "
        "API (PUT /v2/images/{id}/stage, POST /v2/images/{id}/import); importing from a URL is disabled."
    )


@api.route("/v2/tasks", "GET")
def list_legacy_tasks(call: Call):
    return {"tasks": [], "first": "/v2/tasks", "schema": "/v2/schemas/tasks"}
