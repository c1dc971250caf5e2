"""Image, member and task documents exactly as Glance shows them."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import Call
from kumo.image.models import Image, Member, Task
from kumo.image.service import ImageService, location_ops, locations
from kumo.image.service.core import iso


def svc(call: Call) -> ImageService:
    return call.request.app.state.images


def shows_locations(call: Call, image: Image) -> bool:
    """Locations are shown with show_multiple_locations, to the owner's project and admins."""
    service = svc(call)
    if not service.settings.show_multiple_locations:
        return False
    return service.enforce_ok(call.ctx, "get_image_location", image)


def image_doc(call: Call, image: Image) -> dict[str, Any]:
    return render_image(image, locs=shows_locations(call, image), weights=svc(call).settings.store_weights)


def render_image(
    image: Image, *, locs: bool = False, weights: dict[str, int] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = dict(image.properties or {})
    body.update(
        {
            "id": image.id,
            "name": image.name,
            "status": image.status,
            "visibility": image.visibility,
            "protected": image.protected,
            "os_hidden": image.os_hidden,
            "checksum": image.checksum,
            "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value,
            "size": image.size,
            "virtual_size": image.virtual_size,
            "min_disk": image.min_disk,
            "min_ram": image.min_ram,
            "owner": image.owner,
            "container_format": image.container_format,
            "disk_format": image.disk_format,
            "created_at": iso(image.created_at),
            "updated_at": iso(image.updated_at),
            "tags": list(image.tags or []),
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
        }
    )
    stores = locations.store_ids(image, weights)
    if stores:
        body["stores"] = ",".join(stores)
    if locs:
        body["locations"] = location_ops.render(image)
    return body


def render_member(member: Member) -> dict[str, Any]:
    return {
        "created_at": iso(member.created_at),
        "image_id": member.image_id,
        "member_id": member.member_id,
        "schema": "/v2/schemas/member",
        "status": member.status,
        "updated_at": iso(member.updated_at),
    }


def render_task(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "owner": task.owner,
        "input": task.input,
        "result": task.result,
        "message": task.message,
        "image_id": task.image_id,
        "request_id": task.request_id,
        "user_id": task.user_id,
        "expires_at": iso(task.expires_at),
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "deleted": False,
        "deleted_at": None,
    }
