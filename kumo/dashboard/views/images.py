"""Images: list, upload (streamed through the dashboard with a progress bar), edit, delete."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kumo.dashboard.client import ApiError
from kumo.dashboard.web import Page, field_errors, page

DISK_FORMATS = ["raw", "qcow2", "vmdk", "vdi", "iso", "vhd", "vhdx", "ami", "ari", "aki", "ploop"]
CONTAINER_FORMATS = ["bare", "ovf", "ova", "aki", "ari", "ami", "docker", "compressed"]
VISIBILITIES = ["private", "shared", "community", "public"]
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


def _choices(values: list[str]) -> list[tuple[str, str]]:
    return [(v, v) for v in values]


@page()
async def images(p: Page) -> Response:
    body = await p.cloud.get("image", "/images", params={"limit": 1000})
    rows = sorted(body.get("images", []), key=lambda i: (i.get("name") or "", i["id"]))
    return p.render("images/list.html", images=rows, errors={}, values={"disk_format": "raw", "container_format": "bare"},
                    disk_formats=_choices(DISK_FORMATS), container_formats=_choices(CONTAINER_FORMATS),
                    visibilities=_choices(VISIBILITIES))


def _json_error(message: str, status: int = 400, field: str = "") -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


@page()
async def upload(p: Page) -> Response:
    """PUT the file as the body, fields in the query: create the image, then stream the data on."""
    q = p.query
    name = (q.get("name") or q.get("filename") or "").strip()
    if not name:
        return _json_error("Give the image a name.", field="name")
    body: dict[str, Any] = {
        "name": name,
        "disk_format": q.get("disk_format") or "raw",
        "container_format": q.get("container_format") or "bare",
        "visibility": q.get("visibility") or "private",
    }
    for key in ("min_disk", "min_ram"):
        if q.get(key):
            try:
                body[key] = int(q[key])
            except ValueError:
                return _json_error(f"{key} must be a whole number.", field=key)
    cloud = p.cloud
    try:
        image = await cloud.post("image", "/images", body)
    except ApiError as err:
        return _json_error(err.message, err.status)
    headers = {"Content-Type": "application/octet-stream"}
    if p.request.headers.get("content-length"):
        headers["Content-Length"] = p.request.headers["content-length"]
    try:
        await cloud.request("image", "PUT", f"/images/{image['id']}/file", content=p.request.stream(), headers=headers)
    except ApiError as err:
        return _json_error(f"The image record {image['id']} was created but its upload failed: {err.message}", err.status)
    return JSONResponse({"location": f"{p.base}/images?notice=Uploaded+{name}", "id": image["id"]}, status_code=201)


async def _members(p: Page, img: dict[str, Any]) -> list[dict[str, Any]]:
    if img.get("visibility") != "shared":
        return []
    try:
        return (await p.cloud.get("image", f"/images/{img['id']}/members")).get("members", [])
    except ApiError:  # only the owner may list members
        return []


@page()
async def image(p: Page) -> Response:
    img = await p.cloud.get("image", f"/images/{p.params['id']}")
    return p.render("images/edit.html", image=img, errors={}, values=img, visibilities=_choices(VISIBILITIES),
                    members=await _members(p, img))


@page()
async def image_share(p: Page) -> Response:
    """Share with another project (the image must have visibility "shared"), or stop sharing."""
    iid = p.params["id"]
    form = await p.form()
    cloud = p.cloud
    try:
        if form["op"] == "remove":
            await cloud.delete("image", f"/images/{iid}/members/{form['member']}")
        else:
            if not form["member"]:
                raise ApiError(400, "Enter the ID of the project to share with.", "image")
            await cloud.post("image", f"/images/{iid}/members", {"member": form["member"]})
    except ApiError as err:
        img = await cloud.get("image", f"/images/{iid}")
        return p.render("images/edit.html", status=400, image=img, errors={"member": err.message}, values=img,
                        visibilities=_choices(VISIBILITIES), members=await _members(p, img))
    return p.redirect(f"/images/{iid}", notice="Sharing updated")


@page()
async def image_update(p: Page) -> Response:
    iid = p.params["id"]
    form = await p.form()
    cloud = p.cloud
    img = await cloud.get("image", f"/images/{iid}")
    ops: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    if form["name"] != (img.get("name") or ""):
        ops.append({"op": "replace", "path": "/name", "value": form["name"]})
    if form["visibility"] and form["visibility"] != img.get("visibility"):
        ops.append({"op": "replace", "path": "/visibility", "value": form["visibility"]})
    for key in ("min_disk", "min_ram"):
        try:
            value = int(form[key] or "0")
        except ValueError:
            errors[key] = "Enter a whole number."
            continue
        if value != img.get(key):
            ops.append({"op": "replace", "path": f"/{key}", "value": value})
    protected = bool(form["protected"])
    if protected != bool(img.get("protected")):
        ops.append({"op": "replace", "path": "/protected", "value": protected})
    if not errors and ops:
        try:
            await cloud.patch("image", f"/images/{iid}", ops, content_type=PATCH_TYPE)
        except ApiError as err:
            errors = field_errors(err, ["name", "visibility", "min_disk", "min_ram", "protected"])
    if errors:
        return p.render("images/edit.html", status=400, image=img, errors=errors, values=form.values(),
                        visibilities=_choices(VISIBILITIES), members=await _members(p, img))
    return p.redirect("/images", notice=f"Saved image {form['name'] or iid}")


@page()
async def image_delete(p: Page) -> Response:
    await p.cloud.delete("image", f"/images/{p.params['id']}")
    return p.redirect("/images", notice="Deleted the image")


ROUTES = [
    Route("/images", images, methods=["GET"]),
    Route("/images/upload", upload, methods=["PUT"]),
    Route("/images/{id}", image, methods=["GET"]),
    Route("/images/{id}", image_update, methods=["POST"]),
    Route("/images/{id}/delete", image_delete, methods=["POST"]),
    Route("/images/{id}/members", image_share, methods=["POST"]),
]
