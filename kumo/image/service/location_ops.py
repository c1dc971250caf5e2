"""Managing an image's locations by hand: Glance's ``show_multiple_locations`` JSON patch
(``add``/``replace``/``remove`` on ``/locations``) and the v2.17 ``POST .../locations``.

Only two kinds of URL are accepted: http(s) URLs (the read-only ``web`` store, filtered
like web-download URIs: no private addresses) and URLs that already are a copy of *this*
image in one of kumo's stores (so metadata can change and copies can be reordered, but
no image can be pointed at another image's data or at a host path).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from kumo.common.context import RequestContext
from kumo.image.errors import BadRequest, Conflict, Forbidden
from kumo.image.models import Image
from kumo.image.service import locations
from kumo.image.service.core import ImageService
from kumo.image.store import StoreError

HASH_ALGOS = ("sha1", "sha224", "sha256", "sha384", "sha512", "md5")
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def enabled(svc: ImageService) -> None:
    if not svc.settings.show_multiple_locations:
        raise Forbidden("It's not allowed to add locations if locations are invisible.")


def _store_for(svc: ImageService, image: Image, url: Any) -> str:
    """The store id for a new location ``url``, or 400."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        raise BadRequest("Invalid location: 'url' must be a string of at most 2048 characters.")
    for loc in locations.get(image):
        if loc.get("url") == url:
            return str(loc.get("store"))
    web = svc.stores_by_id.get("web")
    if web is None or not web.owns(url):
        raise BadRequest(f"Invalid location {url}: only http and https URLs can be added.")
    web.check(url, svc.settings)  # type: ignore[attr-defined]
    return web.id


def validation_data(vd: Any) -> dict[str, str]:
    """Checked ``validation_data`` (checksum, os_hash_algo, os_hash_value), or 400."""
    if vd in (None, {}):
        return {}
    if not isinstance(vd, dict):
        raise BadRequest("validation_data must be an object.")
    extra = set(vd) - {"checksum", "os_hash_algo", "os_hash_value"}
    if extra:
        raise BadRequest(f"Invalid validation_data keys: {', '.join(sorted(extra))}.")
    out: dict[str, str] = {}
    checksum = vd.get("checksum")
    if checksum is not None:
        if not isinstance(checksum, str) or len(checksum) != 32 or not _HEX.match(checksum):
            raise BadRequest("validation_data checksum must be 32 hexadecimal digits (md5).")
        out["checksum"] = checksum
    algo, value = vd.get("os_hash_algo"), vd.get("os_hash_value")
    if value is not None and algo is None:
        raise BadRequest("validation_data needs os_hash_algo with os_hash_value.")
    if algo is not None:
        if algo not in HASH_ALGOS:
            raise BadRequest(f"Invalid os_hash_algo {algo!r}: expected one of {', '.join(HASH_ALGOS)}.")
        if value is None:
            raise BadRequest("validation_data needs os_hash_value with os_hash_algo.")
        size = hashlib.new(algo).digest_size * 2
        if not isinstance(value, str) or len(value) != size or not _HEX.match(value):
            raise BadRequest(f"os_hash_value must be {size} hexadecimal digits for {algo}.")
        out["os_hash_algo"], out["os_hash_value"] = algo, value
    return out


def _apply_validation(image: Image, vd: dict[str, Any], *, check_only: bool = False) -> None:
    for key in ("checksum", "os_hash_algo", "os_hash_value"):
        have, want = getattr(image, key), vd.get(key)
        if want is not None and have is not None and have != want:
            raise Conflict(f"Image {key} {have} does not match the location's validation_data ({want}).")
    if check_only:
        return
    for key, value in vd.items():
        setattr(image, key, value)


def _location(svc: ImageService, image: Image, value: Any, *, allow_validation: bool) -> tuple[dict, dict]:
    if not isinstance(value, dict) or "url" not in value:
        raise BadRequest("A location must be an object with 'url' and 'metadata'.")
    metadata = value.get("metadata", {})
    if not isinstance(metadata, dict):
        raise BadRequest("Location metadata must be an object.")
    extra = set(value) - {"url", "metadata", "validation_data"}
    if extra:
        raise BadRequest(f"Invalid location keys: {', '.join(sorted(extra))}.")
    vd = validation_data(value.get("validation_data"))
    if vd and not allow_validation:
        raise BadRequest("validation_data is only accepted when adding a location.")
    store_id = _store_for(svc, image, value["url"])
    meta = dict(metadata)
    meta.setdefault("store", store_id)
    return {"url": value["url"], "metadata": meta, "store": store_id}, vd


def _activate(svc: ImageService, image: Image, loc: dict) -> None:
    """A queued image with its first location: active, its size read from the store."""
    if image.status != "queued":
        return
    store = svc.stores_by_id[loc["store"]]
    try:
        image.size = int(store.size(loc["url"]))  # type: ignore[attr-defined]
    except (StoreError, OSError) as exc:
        raise BadRequest(f"Cannot use location {loc['url']}: {exc}") from None
    image.status = "active"


def patch(svc: ImageService, ctx: RequestContext, image: Image, op: Any) -> list[tuple[str | None, str]]:
    """One JSON-patch operation on ``/locations``; the (store, url) copies it removed."""
    enabled(svc)
    if image.status not in ("queued", "active"):
        raise Conflict(f"Locations cannot be changed while the image is {image.status}.")
    current = locations.get(image)
    if op.op == "remove":
        svc.enforce(ctx, "delete_image_location", image)
        index = _index(op.path, len(current), allow_end=False)
        if len(current) == 1:
            raise Forbidden("Cannot remove the last location of an image.")
        gone = current.pop(index)
        locations.set_all(image, current)
        return [(gone.get("store"), gone["url"])]
    svc.enforce(ctx, "set_image_location", image)
    if op.op == "add":
        index = _index(op.path, len(current), allow_end=True)
        raw = op.value.get("validation_data") if isinstance(op.value, dict) else None
        if isinstance(raw, dict):  # a mismatch with the image's own hashes is a conflict first
            _apply_validation(
                image,
                {k: v for k, v in raw.items() if k in ("checksum", "os_hash_algo", "os_hash_value")},
                check_only=True,
            )
        loc, vd = _location(svc, image, op.value, allow_validation=True)
        if any(x["url"] == loc["url"] for x in current):
            raise BadRequest(f"Location {loc['url']} is already a location of this image.")
        _apply_validation(image, vd)
        current.insert(index, loc)
        _activate(svc, image, loc)
        locations.set_all(image, current)
        return []
    # replace /locations with a whole list: only metadata and order may change on an image
    # with data; a queued image without locations takes the list as new
    if len(op.path) != 1:
        raise BadRequest("Only the whole /locations list can be replaced.")
    if not isinstance(op.value, list):
        raise BadRequest("The value of /locations must be a list of locations.")
    new = [_location(svc, image, v, allow_validation=False)[0] for v in op.value]
    urls = [x["url"] for x in new]
    if len(set(urls)) != len(urls):
        raise BadRequest("The same location cannot appear twice.")
    if current:
        if set(urls) != {x["url"] for x in current}:
            raise BadRequest("Replacing locations may not add or remove any; change metadata only.")
    elif new:
        _activate(svc, image, new[0])
    locations.set_all(image, new)
    return []


def _index(path: tuple[str, ...], size: int, *, allow_end: bool) -> int:
    if len(path) != 2:
        raise BadRequest("Location operations need a path like /locations/0 or /locations/-.")
    raw = path[1]
    if raw == "-" and allow_end:
        return size
    if not raw.isdigit():
        raise BadRequest(f"Invalid location index {raw!r}.")
    index = int(raw)
    if index > size or (index == size and not allow_end):
        raise BadRequest(f"Invalid location index {index}: the image has {size} locations.")
    return index


def render(image: Image) -> list[dict[str, Any]]:
    return [{"url": loc["url"], "metadata": dict(loc.get("metadata") or {})} for loc in locations.get(image)]


# -- v2.17: POST /v2/images/{id}/locations (the data is read and hashed in the background) ---


def add_location(svc: ImageService, ctx: RequestContext, image_id: str, body: Any) -> None:
    import threading
    import uuid

    from kumo.image.models import Task
    from kumo.image.service.core import utcnow

    if not isinstance(body, dict) or set(body) - {"url", "validation_data"}:
        raise BadRequest("The body must be an object with 'url' and, optionally, 'validation_data'.")
    vd = validation_data(body.get("validation_data"))
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        if not svc.owns(ctx, image):
            raise Forbidden("You are not permitted to add locations to this image.")
        svc.enforce(ctx, "add_image_location", image)
        if image.status != "queued" or locations.get(image):
            raise Conflict(
                f"Locations can only be added to a queued image without data (it is {image.status})."
            )
        store_id = _store_for(svc, image, body.get("url"))
        if store_id != "web":
            raise BadRequest("Only http and https URLs can be added.")
        url = body["url"]
        locations.set_all(image, [{"url": url, "metadata": {"store": store_id}, "store": store_id}])
        image.status = "importing"
        now = utcnow()
        task = Task(
            id=str(uuid.uuid4()),
            image_id=image_id,
            type="location_import",
            status="processing",
            owner=ctx.project_id,
            user_id=ctx.user_id,
            request_id=ctx.request_id,
            input={"image_id": image_id, "loc_url": url, "validation_data": vd},
            result=None,
            message="",
            created_at=now,
            updated_at=now,
        )
        s.add(task)
        image.updated_at = now
        task_id = task.id
    job = threading.Thread(
        target=_hash_location,
        args=(svc, task_id, image_id, url, vd),
        name=f"image-location-{image_id}",
        daemon=True,
    )
    svc.jobs[image_id] = job
    job.start()


def _hash_location(svc: ImageService, task_id: str, image_id: str, url: str, vd: dict[str, str]) -> None:
    from kumo.image import formats
    from kumo.image.service import data

    try:
        algo = vd.get("os_hash_algo", "sha512")
        md5, digest, inspector, size = hashlib.md5(), hashlib.new(algo), formats.Inspector(), 0
        try:
            for chunk in svc.stores_by_id["web"].read(url):
                size += len(chunk)
                md5.update(chunk)
                digest.update(chunk)
                inspector.feed(chunk)
                with svc.reading() as s:  # stop early when the image went away
                    if s.get(Image, image_id) is None:
                        data.end_task(svc, task_id, "failure", "The image was deleted.", None, None)
                        return
        except (StoreError, OSError, BadRequest) as exc:
            _location_failed(svc, task_id, image_id, f"Could not read {url}: {getattr(exc, 'message', exc)}")
            return
        found = inspector.result()
        if found.unsafe:
            _location_failed(svc, task_id, image_id, f"Image is unsafe: {found.unsafe}")
            return
        facts = {"checksum": md5.hexdigest(), "os_hash_algo": algo, "os_hash_value": digest.hexdigest()}
        wrong = [k for k, v in vd.items() if facts[k] != v]
        if wrong:
            _location_failed(
                svc, task_id, image_id, f"The data does not match validation_data ({', '.join(wrong)})."
            )
            return
        from kumo.image.service.core import utcnow

        with svc.db.session() as s:
            image = s.get(Image, image_id)
            if image is None or image.status != "importing":
                done = False
            else:
                done = True
                image.size = size
                image.virtual_size = found.virtual_size if found.format != "raw" else size
                for key, value in facts.items():
                    setattr(image, key, value)
                image.status = "active"
                image.updated_at = utcnow()
                data.close_task(s, task_id, "success", "")  # one commit: active means the task is done
        if not done:
            data.end_task(svc, task_id, "failure", "The image was deleted or changed.", None, None)
    except Exception as exc:  # noqa: BLE001 - recorded on the task
        _location_failed(svc, task_id, image_id, f"Location import failed: {exc}")
    finally:
        svc.jobs.pop(image_id, None)


def _location_failed(svc: ImageService, task_id: str, image_id: str, message: str) -> None:
    """Back to queued without hashes; the location stays, as Glance leaves it."""
    from sqlalchemy import update

    from kumo.image.service import data
    from kumo.image.service.core import utcnow

    with svc.db.session() as s:
        s.execute(
            update(Image)
            .where(Image.id == image_id, Image.status == "importing")
            .values(
                status="queued",
                size=None,
                checksum=None,
                os_hash_algo=None,
                os_hash_value=None,
                updated_at=utcnow(),
            )
        )
    data.end_task(svc, task_id, "failure", message, None, None)


def fetch_locations(svc: ImageService, ctx: RequestContext, image_id: str) -> list[dict[str, Any]]:
    """``GET /v2/images/{id}/locations``: for service users (Glance's fetch_image_location)."""
    with svc.reading() as s:
        image = svc.get_visible(s, ctx, image_id)
    svc.enforce(ctx, "fetch_image_location", image)
    return render(image)
