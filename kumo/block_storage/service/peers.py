"""Calls to the other kumo services on the caller's behalf (the image service, found in the
caller's token catalog, with the caller's token): image lookups and image metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from kumo.block_storage.errors import APIError, BadRequest
from kumo.block_storage.service.core import BlockStorageService
from kumo.common.context import RequestContext


def image_url(svc: BlockStorageService, ctx: RequestContext) -> str | None:
    for entry in (ctx.token or {}).get("catalog") or []:
        if entry.get("type") == "image":
            for ep in entry.get("endpoints") or []:
                if ep.get("interface") == "public":
                    return str(ep["url"]).rstrip("/")
    for etype, _name, url in svc.extras.get("endpoints", []):
        if etype == "image":
            return str(url).rstrip("/")
    return None


def catalog_url(svc: BlockStorageService, ctx: RequestContext, service_type: str) -> str | None:
    for entry in (ctx.token or {}).get("catalog") or []:
        if entry.get("type") == service_type:
            for ep in entry.get("endpoints") or []:
                if ep.get("interface") == "public":
                    return str(ep["url"]).rstrip("/")
    for etype, _name, url in svc.extras.get("endpoints", []):  # tokens validated without their catalog
        if etype == service_type:
            url = str(url)
            for key in ("$(project_id)s", "$(tenant_id)s", "%(project_id)s", "%(tenant_id)s"):
                url = url.replace(key, ctx.project_id or "")
            return url.rstrip("/")
    return None


def peer_args(svc: BlockStorageService, ctx: RequestContext, *service_types: str) -> dict[str, Any]:
    """What the agent needs to call image or object storage as the requester (as Cinder passes the
    request context to its volume and backup services): the token and the endpoints. It lives in
    the task only until the task settles."""
    out: dict[str, Any] = {"auth_token": ctx.auth_token}
    if "image" in service_types:
        out["image_url"] = image_url(svc, ctx)
    if "object-store" in service_types:
        url = catalog_url(svc, ctx, "object-store")
        if url is None:
            raise APIError("The object storage service is not available for backups.", status=503,
                           fault="serviceUnavailable")
        out["object_store_url"] = url
    return out


def image_request(svc: BlockStorageService, ctx: RequestContext, method: str, path: str, **kw: Any) -> httpx.Response:
    base = image_url(svc, ctx)
    if base is None:
        raise APIError("The image service is not available.", status=503, fault="serviceUnavailable")
    try:
        with httpx.Client(timeout=60.0, headers={"X-Auth-Token": ctx.auth_token or ""}) as c:
            return c.request(method, base + path, **kw)
    except httpx.HTTPError as exc:
        raise APIError(f"The image service is not reachable: {exc}", status=503, fault="serviceUnavailable") from None


IMAGE_CORE = ("id", "name", "status", "checksum", "size", "min_disk", "min_ram", "disk_format", "container_format",
              "visibility", "owner", "protected", "virtual_size", "tags", "created_at", "updated_at", "file",
              "schema", "self", "direct_url", "locations", "os_hash_algo", "os_hash_value", "os_hidden", "stores")


def image_metadata_from(image: Mapping[str, Any]) -> dict[str, str]:
    """``volume_image_metadata`` as Cinder records it from a Glance image."""
    out = {
        "image_id": str(image["id"]),
        "image_name": str(image.get("name") or ""),
        "checksum": str(image.get("checksum") or ""),
        "container_format": str(image.get("container_format") or ""),
        "disk_format": str(image.get("disk_format") or ""),
        "min_disk": str(image.get("min_disk") or 0),
        "min_ram": str(image.get("min_ram") or 0),
        "size": str(image.get("size") or 0),
    }
    for k, v in image.items():
        if k not in IMAGE_CORE and v is not None and not isinstance(v, (dict, list)):
            out[k] = str(v)
    return out


def fetch_image(svc: BlockStorageService, ctx: RequestContext, image_ref: str) -> dict[str, Any]:
    if not isinstance(image_ref, str) or not image_ref:
        raise BadRequest("Invalid image identifier or unable to access requested image.")
    r = image_request(svc, ctx, "GET", f"/v2/images/{image_ref}")
    if r.status_code in (400, 404):
        # Cinder also accepts an image name
        r2 = image_request(svc, ctx, "GET", "/v2/images", params={"name": image_ref})
        found = r2.json().get("images", []) if r2.status_code == 200 else []
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise BadRequest(f"Multiple images match {image_ref}; use the image id.")
        raise BadRequest(f"Invalid image identifier or unable to access requested image. (Image {image_ref} "
                         "could not be found.)")
    if r.status_code >= 400:
        raise BadRequest(f"Invalid image identifier or unable to access requested image ({r.status_code}).")
    return r.json()
