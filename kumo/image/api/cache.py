"""``/v2/cache``: this node's image cache (admins only)."""

from __future__ import annotations

from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.image.api.render import svc
from kumo.image.service import cache

api = API()


@api.route("/v2/cache", "GET")
def list_cache(call: Call):
    return cache.list_cache(svc(call), call.ctx)


@api.route("/v2/cache/{image_id}", "PUT")
def queue_image(call: Call):
    cache.queue_image(svc(call), call.ctx, call.params["image_id"])
    return Response(status_code=202)


@api.route("/v2/cache/{image_id}", "DELETE")
def delete_cached(call: Call):
    cache.delete_cached(svc(call), call.ctx, call.params["image_id"])
    return Response(status_code=204)


@api.route("/v2/cache", "DELETE")
def clear_cache(call: Call):
    cache.clear_cache(svc(call), call.ctx, call.headers.get("x-image-cache-clear-target"))
    return Response(status_code=204)
