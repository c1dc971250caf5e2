"""``/images``: Nova's (deprecated, until 2.35) proxy to the image service, with the user's token."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import link, mv, next_link, svc
from kumo.compute.clients import Peers
from kumo.compute.errors import APIError, BadRequest, NotFound, OverLimit
from kumo.compute.service import quotas
from kumo.compute.service import validate as v

api = API()

STANDARD = {
    "id", "name", "status", "visibility", "protected", "os_hidden", "owner", "container_format", "disk_format",
    "min_disk", "min_ram", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "tags",
    "created_at", "updated_at", "self", "file", "schema", "direct_url", "locations", "stores",
}  # fmt: skip
STATUS = {"active": "ACTIVE", "queued": "SAVING", "saving": "SAVING", "importing": "SAVING", "uploading": "SAVING",
          "deleted": "DELETED", "pending_delete": "DELETED", "killed": "ERROR", "deactivated": "ERROR"}  # fmt: skip
PROGRESS = {"ACTIVE": 100, "SAVING": 25}
PATCH = "application/openstack-images-v2.1-json-patch"


def _check_version(call: Call) -> None:
    if mv(call).matches("2.36"):
        raise NotFound("The resource could not be found.")


def _meta(image: dict[str, Any]) -> dict[str, str]:
    return {k: str(val) for k, val in image.items() if k not in STANDARD and not k.startswith("os_glance")}


def _iso(value: str | None) -> str | None:
    if not value:
        return value
    return value if value.endswith("Z") else value + "Z"


def render(call: Call, image: dict[str, Any]) -> dict[str, Any]:
    status = STATUS.get(image.get("status", ""), "UNKNOWN")
    body: dict[str, Any] = {
        "id": image["id"], "name": image.get("name"), "status": status, "created": _iso(image.get("created_at")),
        "updated": _iso(image.get("updated_at")), "minDisk": image.get("min_disk") or 0,
        "minRam": image.get("min_ram") or 0, "progress": PROGRESS.get(status, 0), "metadata": _meta(image),
        "OS-EXT-IMG-SIZE:size": image.get("size"),
        "links": link(call, "images", image["id"]) + [
            {"rel": "alternate", "type": "application/vnd.openstack.image",
             "href": f"{Peers(call.ctx, svc(call).extras).image_url}/images/{image['id']}"}],
    }  # fmt: skip
    if image.get("instance_uuid"):
        sid = image["instance_uuid"]
        body["server"] = {"id": sid, "links": link(call, "servers", sid)}
    return body


async def _get(call: Call, image_id: str) -> tuple[Peers, dict[str, Any]]:
    _check_version(call)
    peers = Peers(call.ctx, svc(call).extras)
    image = await peers.get_image(image_id)
    if image is None:
        raise NotFound("Image not found.")
    return peers, image


async def _list(call: Call, detail: bool) -> dict[str, Any]:
    _check_version(call)
    peers = Peers(call.ctx, svc(call).extras)
    q = call.query
    params: list[tuple[str, str]] = []
    if q.get("name"):
        params.append(("name", q["name"]))
    if q.get("status"):
        wanted = q["status"].upper()
        params += [("status", g) for g, n in STATUS.items() if n == wanted][:1]
    if q.get("server"):
        params.append(("instance_uuid", q["server"].rstrip("/").rsplit("/", 1)[-1]))
    if q.get("type"):
        params.append(("image_type", q["type"]))
    if q.get("changes-since"):
        params.append(("updated_at", "gte:" + q["changes-since"]))
    async with peers._client() as c:
        r = await c.get(f"{peers.image_url}/v2/images?" + urlencode(params + [("limit", "1000")]))
    if r.status_code >= 400:
        raise BadRequest(f"Invalid image filter: {r.text[:200]}")
    images = r.json().get("images", [])
    for key, field in (("minRam", "min_ram"), ("minDisk", "min_disk")):
        if q.get(key):
            try:
                floor = int(q[key])
            except ValueError:
                raise BadRequest(f"Invalid {key} filter") from None
            images = [i for i in images if (i.get(field) or 0) >= floor]
    marker = q.get("marker")
    if marker:
        ids = [i["id"] for i in images]
        if marker not in ids:
            raise BadRequest(f"marker [{marker}] not found")
        images = images[ids.index(marker) + 1 :]
    limit = q.get("limit")
    body: dict[str, Any] = {}
    if limit:
        try:
            n = int(limit)
        except ValueError:
            raise BadRequest("limit must be an integer") from None
        if n < 0:
            raise BadRequest("limit must be positive")
        if len(images) > n:
            images = images[:n]
            if images:
                body["images_links"] = next_link(
                    call, "images/detail" if detail else "images", images[-1]["id"]
                )
    if detail:
        body["images"] = [render(call, i) for i in images]
    else:
        body["images"] = [
            {"id": i["id"], "name": i.get("name"), "links": render(call, i)["links"]} for i in images
        ]
    return body


@api.route("/v2.1/images", "GET")
async def list_images(call: Call):
    return await _list(call, False)


@api.route("/v2.1/images/detail", "GET")
async def list_images_detail(call: Call):
    return await _list(call, True)


@api.route("/v2.1/images/{image_id}", "GET")
async def show_image(call: Call):
    _peers, image = await _get(call, call.params["image_id"])
    return {"image": render(call, image)}


@api.route("/v2.1/images/", "DELETE")
async def delete_image_blank(call: Call):
    raise NotFound("Image not found.")


@api.route("/v2.1/images/{image_id}", "DELETE")
async def delete_image(call: Call):
    peers, image = await _get(call, call.params["image_id"])
    async with peers._client() as c:
        r = await c.delete(f"{peers.image_url}/v2/images/{image['id']}")
    if r.status_code == 403:
        raise APIError("Unable to delete image.", status=403, fault="forbidden")
    if r.status_code >= 400:
        raise NotFound("Image not found.")
    return Response(status_code=204)


async def _patch(
    call: Call, peers: Peers, image: dict[str, Any], new: dict[str, str], replace: bool
) -> dict[str, str]:
    current = _meta(image)
    target = dict(new) if replace else {**current, **new}
    limit = quotas.limit_for(svc(call), call.ctx.project_id, "metadata_items")
    if 0 <= limit < len(target):
        raise OverLimit(f"Quota exceeded for metadata_items: Requested {len(target)}, but maximum is {limit}")
    ops: list[dict[str, Any]] = []
    for k in current:
        if k not in target:
            ops.append({"op": "remove", "path": f"/{k}"})
    for k, val in target.items():
        if current.get(k) != val:
            ops.append({"op": "replace" if k in current else "add", "path": f"/{k}", "value": val})
    if ops:
        async with peers._client() as c:
            r = await c.patch(
                f"{peers.image_url}/v2/images/{image['id']}", json=ops, headers={"Content-Type": PATCH}
            )
        if r.status_code >= 400:
            raise BadRequest(f"The image service refused the metadata: {r.text[:200]}")
        return _meta(r.json())
    return target


def _body_meta(call: Call, key: str) -> dict[str, str]:
    body = call.body
    if not isinstance(body, dict) or key not in body:
        raise BadRequest(f"Malformed request body: '{key}' is a required property")
    return v.metadata(body[key], key)


@api.route("/v2.1/images/{image_id}/metadata", "GET")
async def list_metadata(call: Call):
    _peers, image = await _get(call, call.params["image_id"])
    return {"metadata": _meta(image)}


@api.route("/v2.1/images/{image_id}/metadata", "POST")
async def update_metadata(call: Call):
    peers, image = await _get(call, call.params["image_id"])
    return {"metadata": await _patch(call, peers, image, _body_meta(call, "metadata"), False)}


@api.route("/v2.1/images/{image_id}/metadata", "PUT")
async def set_metadata(call: Call):
    peers, image = await _get(call, call.params["image_id"])
    return {"metadata": await _patch(call, peers, image, _body_meta(call, "metadata"), True)}


@api.route("/v2.1/images/{image_id}/metadata/{key}", "GET")
async def show_metadata_item(call: Call):
    _peers, image = await _get(call, call.params["image_id"])
    meta = _meta(image)
    if call.params["key"] not in meta:
        raise NotFound("Image metadata item not found.")
    return {"meta": {call.params["key"]: meta[call.params["key"]]}}


@api.route("/v2.1/images/{image_id}/metadata/{key}", "PUT")
async def set_metadata_item(call: Call):
    peers, image = await _get(call, call.params["image_id"])
    item = _body_meta(call, "meta")
    if len(item) != 1:
        raise BadRequest("Request body contains too many items")
    if call.params["key"] not in item:
        raise BadRequest("Request body and URI mismatch")
    await _patch(call, peers, image, item, False)
    return {"meta": item}


@api.route("/v2.1/images/{image_id}/metadata/{key}", "DELETE")
async def delete_metadata_item(call: Call):
    peers, image = await _get(call, call.params["image_id"])
    current = _meta(image)
    key = call.params["key"]
    if key not in current:
        raise NotFound("Image metadata item not found.")
    del current[key]
    await _patch(call, peers, image, current, True)
    return Response(status_code=204)
