"""``POST /os-aggregates/{id}/images`` (2.81): pre-cache images on the hosts of an aggregate."""

from __future__ import annotations

import anyio.to_thread
from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import mv, svc
from kumo.compute.clients import Peers
from kumo.compute.errors import BadRequest, NotFound
from kumo.compute.service import image_cache

api = API()


@api.route("/v2.1/os-aggregates/{agg_id}/images", "POST")
async def cache_images(call: Call):
    if not mv(call).matches("2.81"):
        raise NotFound("The resource could not be found.")
    service = svc(call)
    await anyio.to_thread.run_sync(service.require_admin, call.ctx, "compute:aggregates:images")
    image_ids = image_cache.parse_request(call.body)
    agg_id = call.params["agg_id"]
    hosts = await anyio.to_thread.run_sync(image_cache.aggregate_hosts, service, agg_id)
    peers = Peers(call.ctx, service.extras)
    images = []
    for image_id in image_ids:
        image = await peers.get_image(image_id)
        if image is None:
            raise BadRequest(f"Image {image_id} could not be found.")
        if image.get("status") != "active":
            raise BadRequest(f"Image {image_id} is not active.")
        images.append({"id": image_id, "checksum": image.get("checksum")})
    await anyio.to_thread.run_sync(image_cache.request, service, int(agg_id), hosts, images)
    return Response(status_code=202)
