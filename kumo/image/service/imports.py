"""Interoperable image import (``POST /v2/images/{id}/import``): Glance's three methods.

- ``glance-direct``: the data staged with ``PUT .../stage`` goes into the target stores.
- ``web-download``: the data is fetched from an http(s) URI (filtered, see
  :mod:`kumo.image.service.web`) into staging, hashed and inspected like an upload,
  then goes into the target stores.
- ``copy-image``: an active image's data is copied into more stores (admins only, as
  Glance's default policy says).
- ``glance-download``: the data and metadata of an image in an image service of some
  region of this cloud's catalog (found in the caller's token, fetched with it) is
  imported like web-download; the formats and the ``hw_``/``trait:``/``os_*`` properties
  come along, as Glance's ``glance_download_properties`` defaults say.

The request validates, records a task, marks the image and returns 202; the copying
runs in a background thread. Progress shows on the image as Glance shows it:
``os_glance_importing_to_stores`` (stores still to do) and ``os_glance_failed_import``
(stores that failed). With ``all_stores_must_succeed`` (the default) one failed store
undoes the import: copies made by it are deleted and a new image goes back to
``queued``.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import update

from kumo.common.context import RequestContext
from kumo.image import formats
from kumo.image.errors import BadRequest, Conflict, Forbidden, InvalidImageData, PayloadTooLarge
from kumo.image.models import Image, Task
from kumo.image.service import data, locations, web
from kumo.image.service.core import ImageService, utcnow
from kumo.image.store import Store, StoreError, read_only

log = logging.getLogger("kumo.image.import")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
IMPORTING = "os_glance_importing_to_stores"
FAILED = "os_glance_failed_import"


@dataclass(frozen=True)
class ImportRequest:
    method: str
    targets: tuple[str, ...]
    must_succeed: bool
    uri: str | None = None
    remote: tuple[str, str, str] | None = None  # glance-download: (image id, region, interface)
    auth_token: str | None = None
    catalog: tuple[Any, ...] = ()


def _bool(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"'{key}' must be a boolean.")
    return value


def parse(svc: ImageService, body: Any) -> tuple[str, list[str] | None, bool, bool, str | None]:
    if not isinstance(body, dict) or not isinstance(body.get("method"), dict):
        raise BadRequest("Import request requires a 'method' object.")
    method = body["method"].get("name")
    if method not in data.IMPORT_METHODS:
        raise BadRequest(
            f"Import method {method!r} is not valid; available: {', '.join(data.IMPORT_METHODS)}."
        )
    stores = body.get("stores")
    all_stores = _bool(body, "all_stores", False)
    must_succeed = _bool(body, "all_stores_must_succeed", True)
    if stores is not None:
        if all_stores:
            raise BadRequest("'stores' and 'all_stores' cannot be used together.")
        if not isinstance(stores, list) or not stores or not all(isinstance(x, str) for x in stores):
            raise BadRequest("'stores' must be a non-empty list of store identifiers.")
        unknown = [x for x in stores if x not in svc.stores_by_id]
        if unknown:
            raise Conflict(f"Unknown stores: {', '.join(unknown)}")
        ro = [x for x in stores if read_only(svc.stores_by_id[x])]
        if ro:
            raise BadRequest(f"Stores {', '.join(ro)} are read-only.")
        stores = list(dict.fromkeys(stores))
    elif all_stores:
        stores = [st.id for st in svc.stores if not read_only(st)]
    uri = None
    if method == "web-download":
        uri = web.check_uri(body["method"].get("uri"), svc.settings)
    if method == "glance-download":
        m = body["method"]
        remote_id = m.get("glance_image_id")
        if not isinstance(remote_id, str) or not _UUID.match(remote_id):
            raise BadRequest(f"Remote image id does not look like a UUID: {remote_id!r}")
        for key in ("glance_region", "glance_service_interface"):
            if m.get(key) is not None and not isinstance(m.get(key), str):
                raise BadRequest(f"'{key}' must be a string.")
    return method, stores, all_stores, must_succeed, uri


def import_image(svc: ImageService, ctx: RequestContext, image_id: str, body: Any) -> None:
    method, stores, all_stores, must_succeed, uri = parse(svc, body)
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        if method == "copy-image":
            svc.enforce(ctx, "copy_image", image)
            if image.status != "active":
                raise Conflict(f"Image {image_id} must be active to be copied (it is {image.status}).")
            if stores is None:
                raise BadRequest("copy-image needs 'stores' or 'all_stores'.")
            present = set(locations.store_ids(image))
            if not all_stores:
                already = [x for x in stores if x in present]
                if already:
                    raise Conflict(f"Image {image_id} is already present in stores {', '.join(already)}.")
            targets = [x for x in stores if x not in present]
            busy = (image.properties or {}).get(IMPORTING)
            if busy:
                raise Conflict(f"Image {image_id} is already being copied to {busy}.")
        else:
            if not svc.owns(ctx, image):
                raise Forbidden("You are not permitted to import this image.")
            svc.enforce(ctx, "modify_image", image)
            if method == "glance-direct" and (image.status != "uploading" or not image.staging):
                raise Conflict(
                    f"Image needs to be staged before 'glance-direct' method can be used "
                    f"(image status is {image.status})."
                )
            if method in ("web-download", "glance-download") and image.status != "queued":
                raise Conflict(f"Image status must be queued for {method} (it is {image.status}).")
            if method != "glance-download" and (not image.disk_format or not image.container_format):
                raise BadRequest(
                    "Properties disk_format, container_format must be set prior to importing data."
                )
            targets = stores if stores is not None else [svc.default_store]
        now = utcnow()
        task = Task(
            id=str(uuid.uuid4()),
            image_id=image_id,
            type="api_image_import",
            status="processing",
            owner=ctx.project_id,
            user_id=ctx.user_id,
            request_id=ctx.request_id,
            input={"image_id": image_id, "import_req": dict(body), "backend": list(targets)},
            result=None,
            message="",
            created_at=now,
            updated_at=now,
        )
        s.add(task)
        props = dict(image.properties or {})
        props[IMPORTING] = ",".join(targets)
        props[FAILED] = ""
        image.properties = props
        if method != "copy-image":
            image.status = "importing"
        image.updated_at = now
        remote = None
        if method == "glance-download":
            m = body["method"]
            remote = (
                m["glance_image_id"],
                m.get("glance_region") or "",
                m.get("glance_service_interface") or "public",
            )
        req = ImportRequest(
            method,
            tuple(targets),
            must_succeed,
            uri,
            remote,
            ctx.auth_token,
            tuple((ctx.token or {}).get("catalog") or ()),
        )
        task_id = task.id
    job = threading.Thread(
        target=_run, args=(svc, task_id, image_id, req), name=f"image-import-{image_id}", daemon=True
    )
    svc.jobs[image_id] = job
    job.start()


# -- the background part -------------------------------------------------------------


def copy_data(src: Store, src_url: str, dst: Store, image_id: str) -> str:
    """Stream one copy of the data into ``dst``; the new location."""
    writer = dst.writer(image_id)
    try:
        for chunk in src.read(src_url):
            writer.write(chunk)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise


def _progress(svc: ImageService, image_id: str, store_id: str, ok: bool) -> None:
    with svc.db.session() as s:
        image = s.get(Image, image_id)
        if image is None:
            return
        props = dict(image.properties or {})
        left = [x for x in (props.get(IMPORTING) or "").split(",") if x and x != store_id]
        props[IMPORTING] = ",".join(left)
        if not ok:
            failed = [x for x in (props.get(FAILED) or "").split(",") if x]
            props[FAILED] = ",".join([*failed, store_id])
        image.properties = props
        image.updated_at = utcnow()


def _catalog(svc: ImageService, req: ImportRequest) -> list[Any]:
    """The caller's catalog: from the token, else asked of identity with the caller's token."""
    if req.catalog:
        return list(req.catalog)
    try:
        r = httpx.get(
            svc.identity_url.rstrip("/") + "/v3/auth/catalog",
            headers={"X-Auth-Token": req.auth_token or ""},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise web.FetchError(f"identity is not reachable: {exc}") from None
    if r.status_code != 200:
        raise web.FetchError(f"the catalog could not be read: HTTP {r.status_code}")
    return list(r.json().get("catalog") or [])


def _remote_image(svc: ImageService, req: ImportRequest) -> tuple[str, dict[str, Any]]:
    """glance-download: the remote image's file URL and its metadata, through the catalog."""
    assert req.remote is not None
    remote_id, region, interface = req.remote
    base = None
    for entry in _catalog(svc, req):
        if isinstance(entry, dict) and entry.get("type") == "image":
            for ep in entry.get("endpoints") or []:
                if ep.get("interface") == interface and (
                    not region or ep.get("region_id", ep.get("region")) == region
                ):
                    base = str(ep["url"]).rstrip("/")
    if base is None:
        raise web.FetchError(
            f"No image service in region {region!r} with interface {interface!r} in the catalog."
        )
    headers = {"X-Auth-Token": req.auth_token or ""}
    try:
        r = httpx.get(f"{base}/v2/images/{remote_id}", headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise web.FetchError(f"The image service at {base} is not reachable: {exc}") from None
    if r.status_code != 200:
        raise web.FetchError(f"Remote image {remote_id} could not be read: HTTP {r.status_code}")
    meta = r.json()
    if meta.get("status") != "active":
        raise web.FetchError(f"Remote image {remote_id} is {meta.get('status')}, not active.")
    return f"{base}/v2/images/{remote_id}/file", meta


REMOTE_PROPERTY_PREFIXES = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")


def _adopt_remote_metadata(svc: ImageService, image_id: str, meta: dict[str, Any]) -> None:
    with svc.db.session() as s:
        image = s.get(Image, image_id)
        if image is None:
            raise Conflict("The image was deleted.")
        image.disk_format = meta.get("disk_format")
        image.container_format = meta.get("container_format")
        props = dict(image.properties or {})
        for key, value in meta.items():
            if isinstance(value, str) and key.startswith(REMOTE_PROPERTY_PREFIXES):
                props[key] = value
        image.properties = props


@contextmanager
def _open_remote(uri: str, token: str, timeout: float) -> Iterator[tuple[int | None, Iterator[bytes]]]:
    """The data of an image in a (catalog-listed, so trusted) image service."""
    try:
        with (
            httpx.Client(timeout=timeout) as client,
            client.stream("GET", uri, headers={"X-Auth-Token": token}) as r,
        ):
            if r.status_code != 200:
                raise web.FetchError(f"{uri} answered HTTP {r.status_code}")
            length = r.headers.get("content-length")

            def chunks() -> Iterator[bytes]:
                try:
                    yield from r.iter_bytes(web.CHUNK)
                except httpx.HTTPError as exc:
                    raise web.FetchError(f"could not read {uri}: {exc}") from None

            yield (int(length) if length and length.isdigit() else None), chunks()
    except httpx.HTTPError as exc:
        raise web.FetchError(f"could not read {uri}: {exc}") from None


def _fetch(svc: ImageService, image_id: str, req: ImportRequest) -> dict[str, Any]:
    """web-download / glance-download: stream into staging, hashed and inspected; the facts."""
    if req.method == "glance-download":
        uri, meta = _remote_image(svc, req)
        _adopt_remote_metadata(svc, image_id, meta)
        source = _open_remote(uri, req.auth_token or "", svc.settings.web_download_timeout)
    else:
        uri = req.uri or ""
        source = web.open_uri(uri, svc.settings)
    with svc.reading() as s:
        image = s.get(Image, image_id)
        if image is None:
            raise Conflict("The image was deleted.")
        owner, disk_format, container_format = image.owner, image.disk_format, image.container_format
    st = svc.settings
    limit = st.web_download_max_bytes
    if st.image_size_total >= 0:
        with svc.reading() as s:
            limit = min(limit, max(0, st.image_size_total - data._quota_used(s, owner, staged=False)))
    upload = data.Upload(svc, image_id, owner, svc.staging, True, disk_format, container_format, limit)
    upload.open()
    try:
        with source as (length, chunks):
            if length is not None and length > limit:
                raise PayloadTooLarge(
                    f"The image at {uri} ({length} bytes) is larger than allowed ({limit})."
                )
            for chunk in chunks:
                upload.write(chunk)
        found = upload.inspector.result()
        problem = formats.check(disk_format, container_format, found)
        if problem:
            raise InvalidImageData(problem)
        assert upload.writer is not None
        location = upload.writer.commit()
        upload.writer = None
    except BaseException:
        if upload.writer is not None:
            upload.writer.abort()
        raise
    return {
        "size": upload.size,
        "checksum": upload.md5.hexdigest(),
        "os_hash_value": upload.sha512.hexdigest(),
        "virtual_size": found.virtual_size if found.format != "raw" else upload.size,
        "location": location,
    }


def _run(svc: ImageService, task_id: str, image_id: str, req: ImportRequest) -> None:
    try:
        _run_import(svc, task_id, image_id, req)
    except Exception as exc:  # noqa: BLE001 - the task records every failure
        log.exception("import of image %s failed", image_id)
        _give_up(svc, task_id, image_id, req, f"import failed: {exc}")
    finally:
        svc.jobs.pop(image_id, None)


def _give_up(svc: ImageService, task_id: str, image_id: str, req: ImportRequest, message: str) -> None:
    """The import failed: every target shows as failed and a new image is queued again, at once."""
    with svc.db.session() as s:
        image = s.get(Image, image_id)
        if image is not None:
            props = dict(image.properties or {})
            props[IMPORTING] = ""
            failed = [x for x in (props.get(FAILED) or "").split(",") if x]
            props[FAILED] = ",".join(dict.fromkeys([*failed, *req.targets]))
            image.properties = props
            if req.method != "copy-image" and image.status == "importing":
                image.status = "queued"
                image.staging = None
            image.updated_at = utcnow()
    data.end_task(svc, task_id, "failure", message, None, None)


def _run_import(svc: ImageService, task_id: str, image_id: str, req: ImportRequest) -> None:
    with svc.reading() as s:
        image = s.get(Image, image_id)
    if image is None:
        data.end_task(svc, task_id, "failure", "The image was deleted.", None, None)
        return
    staged: dict[str, Any] | None = None
    if req.method == "copy-image":
        src_loc = next((loc for loc in locations.get(image) if loc.get("store") in svc.stores_by_id), None)
        if src_loc is None:
            raise Conflict("The image data is in no store this node can read.")
        src_store: Store = svc.stores_by_id[src_loc["store"]]
        src_url = src_loc["url"]
    else:
        if req.method in ("web-download", "glance-download"):
            try:
                staged = _fetch(svc, image_id, req)
            except (BadRequest, PayloadTooLarge, Conflict, web.FetchError, OSError) as exc:
                _give_up(svc, task_id, image_id, req, str(getattr(exc, "message", exc)))
                return
        else:
            staged = dict(image.staging or {})
            found = formats.Detected(staged.get("format") or "raw", staged.get("virtual_size"))
            problem = staged.get("problem") or formats.check(image.disk_format, image.container_format, found)
            if problem:
                svc.staging.delete(staged["location"])
                _give_up(svc, task_id, image_id, req, problem)
                return
        src_store = svc.staging
        src_url = staged["location"]
    made: list[tuple[str, str]] = []
    failures: list[str] = []
    for store_id in req.targets:
        try:
            url = copy_data(src_store, src_url, svc.stores_by_id[store_id], image_id)
        except (OSError, ValueError, StoreError) as exc:
            log.warning("import of image %s into store %s failed: %s", image_id, store_id, exc)
            failures.append(f"{store_id}: {exc}")
            if req.must_succeed:
                break  # _give_up marks every target failed
            _progress(svc, image_id, store_id, ok=False)
            continue
        alive = _record(svc, image_id, req, store_id, url, staged)
        if not alive:  # deleted (or changed) meanwhile: throw this copy and the rest away
            svc.stores_by_id[store_id].delete(url)
            break
        made.append((store_id, url))
    if staged is not None:
        svc.staging.delete(staged["location"])
        with svc.db.session() as s:
            s.execute(update(Image).where(Image.id == image_id).values(staging=None))
    if failures and (req.must_succeed or not made):
        _undo(svc, image_id, req, made)
        _give_up(svc, task_id, image_id, req, "; ".join(failures))
        return
    if staged is None:
        data.end_task(svc, task_id, "success", "; ".join(failures), None, None)
    elif not _activate(svc, image_id, staged, made, task_id, "; ".join(failures)):
        _undo(svc, image_id, req, made)
        data.end_task(
            svc, task_id, "failure", "The image was deleted or changed during the import.", None, None
        )


def _activate(
    svc: ImageService, image_id: str, staged: dict[str, Any], made: list[tuple[str, str]], task_id: str, message: str
) -> bool:
    """A new image becomes active once every store it went to holds the data; its task succeeds in
    the same commit, so a client that sees the image active sees the task done."""
    with svc.db.session() as s:
        image = s.get(Image, image_id)
        if image is None or image.status != "importing" or not made:
            return False
        data.set_data(image, staged, made[0][0], made[0][1])
        for store_id, url in made[1:]:
            locations.add(image, store_id, url)
        image.updated_at = utcnow()
        data.close_task(s, task_id, "success", message)
    return True


def _record(
    svc: ImageService,
    image_id: str,
    req: ImportRequest,
    store_id: str,
    url: str,
    staged: dict[str, Any] | None,
) -> bool:
    with svc.db.session() as s:
        image = s.get(Image, image_id)
        if image is None or image.status != ("active" if staged is None else "importing"):
            return False
        if staged is None:  # copy-image: each new copy shows at once
            locations.add(image, store_id, url)
        props = dict(image.properties or {})
        props[IMPORTING] = ",".join(x for x in (props.get(IMPORTING) or "").split(",") if x and x != store_id)
        image.properties = props
        image.updated_at = utcnow()
    return True


def _undo(svc: ImageService, image_id: str, req: ImportRequest, made: list[tuple[str, str]]) -> None:
    """Remove the copies this import made (all_stores_must_succeed)."""
    with svc.db.session() as s:
        image = s.get(Image, image_id)
        if image is not None:
            gone = {url for _sid, url in made}
            locations.set_all(image, [loc for loc in locations.get(image) if loc["url"] not in gone])
            if req.method != "copy-image":
                image.size = image.checksum = image.os_hash_value = image.virtual_size = None
                image.os_hash_algo = None
    for store_id, url in made:
        try:
            svc.stores_by_id[store_id].delete(url)
        except (OSError, ValueError, StoreError):
            log.exception("could not remove %s after a failed import", url)


def delete_from_store(svc: ImageService, ctx: RequestContext, store_id: str, image_id: str) -> str:
    """``DELETE /v2/stores/{store}/{image}``: drop one copy (never the last); the URL to delete."""
    if store_id not in svc.stores_by_id:
        raise Conflict(f"Unknown store {store_id}.")
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        svc.enforce(ctx, "delete_image_location", image)
        if image.status != "active":
            raise Conflict(
                f"It's not allowed to remove image data from store if image status is {image.status}."
            )
        loc = locations.in_store(image, store_id)
        if loc is None:
            from kumo.image.errors import NotFound

            raise NotFound(f"Image {image_id} has no data in store {store_id}.")
        if len(locations.get(image)) == 1:
            raise Forbidden("Cannot delete the last location of an image.")
        locations.set_all(image, [x for x in locations.get(image) if x.get("store") != store_id])
        image.updated_at = utcnow()
        return str(loc["url"])


def recover_interrupted(db: Any) -> int:
    """At start: imports cut off by a stop cannot finish; say so instead of leaving them hanging.

    A new image goes back to ``uploading`` when its staged data is still there (import it
    again) or to ``queued``; a copy-image in progress lists its stores as failed; every
    task still processing fails with a message. Returns the number of images touched.
    """
    from sqlalchemy import select

    touched = 0
    now = utcnow()
    with db.session() as s:
        for image in s.scalars(select(Image).where(Image.status.in_(("importing", "active")))):
            props = dict(image.properties or {})
            left = props.get(IMPORTING)
            if image.status == "active" and not left:
                continue
            if left:
                failed = [x for x in (props.get(FAILED) or "").split(",") if x]
                props[FAILED] = ",".join(dict.fromkeys([*failed, *left.split(",")]))
                props[IMPORTING] = ""
                image.properties = props
            if image.status == "importing":
                if image.locations and all(loc.get("store") == "web" for loc in image.locations):
                    image.status = "queued"  # a location import: its hashes were never computed
                    image.size = image.checksum = image.os_hash_algo = image.os_hash_value = None
                else:
                    image.status = "uploading" if (image.staging or {}).get("location") else "queued"
            image.updated_at = now
            touched += 1
        for task in s.scalars(select(Task).where(Task.status == "processing")):
            task.status = "failure"
            task.message = "The import was interrupted by a restart of the image service."
            task.updated_at = now
    return touched
