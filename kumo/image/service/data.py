"""Image data: streamed upload (direct or staged), import, download, usage.

An upload moves the image ``queued -> saving -> active`` (staging:
``queued -> uploading``, then import: ``uploading -> importing -> active``).
Data streams through :class:`Upload` into a temporary file in the store, hashed
(md5 for ``checksum``, sha512 for ``os_hash_value``) and inspected on the way;
nothing holds the whole image in memory. Data that does not match its
disk_format or fails a safety check is refused with 400 and the image returns
to ``queued`` with the partial data removed, as Glance does; an upload cut off
midway leaves the image ``killed``, its partial data removed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from kumo.common.context import RequestContext
from kumo.image import formats
from kumo.image.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidImageData,
    NotFound,
    PayloadTooLarge,
    image_not_found,
)
from kumo.image.models import Image, Task
from kumo.image.service import locations
from kumo.image.service.core import ImageService, is_admin, utcnow
from kumo.image.store import Store, Writer, read_only

log = logging.getLogger("kumo.image")

IMPORT_METHODS = ("glance-direct", "web-download", "copy-image", "glance-download")


def _quota_used(s: Any, owner: str | None, staged: bool) -> int:
    if staged:
        rows = s.scalars(select(Image.staging).where(Image.owner == owner, Image.staging.is_not(None)))
        return sum(int((r or {}).get("size") or 0) for r in rows)
    return int(s.scalar(select(func.coalesce(func.sum(Image.size), 0)).where(Image.owner == owner)) or 0)


def _uploading_count(s: Any, owner: str | None) -> int:
    return int(
        s.scalar(
            select(func.count())
            .select_from(Image)
            .where(Image.owner == owner, Image.status.in_(("saving", "uploading", "importing")))
        )
        or 0
    )


PARALLEL_HASH = 256 * 1024  # blocks at least this large hash sha512 on a helper thread
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _hash_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kumo-image-hash")
        return _pool


@dataclass
class Upload:
    """One stream of data on its way into a store (call ``write`` off the event loop)."""

    svc: ImageService
    image_id: str
    owner: str | None
    store: Store
    staged: bool
    disk_format: str | None
    container_format: str | None
    limit: int | None  # bytes this upload may still take under the project's quota
    writer: Writer | None = None
    md5: Any = field(default_factory=hashlib.md5)
    sha512: Any = field(default_factory=hashlib.sha512)
    inspector: formats.Inspector = field(default_factory=formats.Inspector)
    size: int = 0

    def open(self) -> None:
        self.writer = self.store.writer(self.image_id)

    def write(self, data: bytes) -> None:
        assert self.writer is not None
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            quota = "image_stage_total" if self.staged else "image_size_total"
            raise PayloadTooLarge(f"The image would exceed the project's {quota} quota.")
        if len(data) < PARALLEL_HASH:
            self.md5.update(data)
            self.sha512.update(data)
            self.inspector.feed(data)
            self.writer.write(data)
            return
        # hashlib releases the GIL on large buffers: sha512 runs on another core while this
        # thread does md5, inspection and the write (the two hashes are most of the CPU cost).
        pending = _hash_pool().submit(self.sha512.update, data)
        try:
            self.md5.update(data)
            self.inspector.feed(data)
            self.writer.write(data)
        finally:
            pending.result()


def begin_upload(
    svc: ImageService,
    ctx: RequestContext,
    image_id: str,
    content_length: int | None,
    *,
    staged: bool,
    store_id: str | None = None,
) -> Upload:
    target = svc.staging if staged else svc.get_store(store_id) if store_id else svc.store
    if read_only(target):
        raise BadRequest(f"Store {target.id} is read-only.")
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        if not svc.fills(ctx, image):
            raise Forbidden("You are not permitted to upload data for this image.")
        svc.enforce(ctx, "upload_image", image)
        if image.status != "queued":
            what = "stage" if staged else "upload"
            raise Conflict(
                f"Image status transition from {image.status} to "
                f"{'uploading' if staged else 'saving'} is not allowed; cannot {what} data."
            )
        if not staged and (not image.disk_format or not image.container_format):
            raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
        st = svc.settings
        limit: int | None = None
        total = st.image_stage_total if staged else st.image_size_total
        if total >= 0:
            limit = max(0, total - _quota_used(s, image.owner, staged))
            if content_length is not None and content_length > limit:
                raise PayloadTooLarge(
                    f"The image would exceed the project's {'image_stage_total' if staged else 'image_size_total'} quota."
                )
        if st.image_count_uploading >= 0 and _uploading_count(s, image.owner) + 1 > st.image_count_uploading:
            raise PayloadTooLarge("Maximum number of images being uploaded (image_count_uploading) exceeded.")
        new = "uploading" if staged else "saving"
        done = s.execute(
            update(Image)
            .where(Image.id == image_id, Image.status == "queued")
            .values(status=new, updated_at=utcnow())
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("Image is already being uploaded.")
        upload = Upload(
            svc,
            image_id,
            image.owner,
            target,
            staged,
            image.disk_format,
            image.container_format,
            limit,
        )
    try:
        upload.open()
    except BaseException:
        _reset(svc, image_id, "queued")
        raise
    return upload


def _reset(svc: ImageService, image_id: str, status: str) -> None:
    with svc.db.session() as s:
        s.execute(
            update(Image)
            .where(Image.id == image_id, Image.status.in_(("saving", "uploading")))
            .values(status=status, staging=None, updated_at=utcnow())
        )


def fail_upload(upload: Upload, err: BaseException) -> None:
    """Throw the partial data away; a refused upload returns to queued, a broken one is killed."""
    if upload.writer is not None:
        try:
            upload.writer.abort()
        except OSError:
            log.exception("could not remove partial data of image %s", upload.image_id)
    refused = isinstance(err, (BadRequest, PayloadTooLarge, Conflict, Forbidden))
    _reset(upload.svc, upload.image_id, "queued" if refused or upload.staged else "killed")


def finish_upload(upload: Upload) -> None:
    svc = upload.svc
    assert upload.writer is not None
    found = upload.inspector.result()
    problem = formats.check(upload.disk_format, upload.container_format, found)
    if problem and not upload.staged:
        err = InvalidImageData(problem)
        fail_upload(upload, err)
        raise err
    location = upload.writer.commit()
    upload.writer = None
    with svc.db.session() as s:
        image = s.get(Image, upload.image_id)
        expected = "uploading" if upload.staged else "saving"
        if image is None or image.status != expected:  # deleted (or reset) while uploading
            upload.store.delete(location)
            raise Conflict(f"Image {upload.image_id} was deleted or changed during the upload.")
        facts = {
            "size": upload.size,
            "checksum": upload.md5.hexdigest(),
            "os_hash_value": upload.sha512.hexdigest(),
            "virtual_size": found.virtual_size if found.format != "raw" else upload.size,
        }
        if upload.staged:
            image.staging = {**facts, "location": location, "format": found.format, "problem": problem}
        else:
            set_data(image, facts, upload.store.id, location)
        image.updated_at = utcnow()


def set_data(image: Image, facts: dict[str, Any], store_id: str, location: str) -> None:
    image.size = facts["size"]
    image.checksum = facts["checksum"]
    image.os_hash_algo = "sha512"
    image.os_hash_value = facts["os_hash_value"]
    image.virtual_size = facts["virtual_size"]
    # new data: its copy is the image's only location (a failed location add may have left one)
    locations.set_all(image, [{"url": location, "metadata": {"store": store_id}, "store": store_id}])
    image.status = "active"


# -- import tasks ---------------------------------------------------------------------


def close_task(s: Any, task_id: str, status: str, message: str) -> None:
    """Record a task's outcome in the caller's session (so it can share a commit with the image)."""
    now = utcnow()
    task = s.get(Task, task_id)
    if task is not None:
        task.status = status
        task.message = message
        task.updated_at = now
        task.expires_at = now + timedelta(hours=48)
        task.result = {"image_id": task.image_id} if status == "success" else None


def end_task(
    svc: ImageService, task_id: str, status: str, message: str, image_id: str | None, image_status: str | None
) -> None:
    now = utcnow()
    with svc.db.session() as s:
        close_task(s, task_id, status, message)
        if image_id and image_status:
            s.execute(
                update(Image)
                .where(Image.id == image_id)
                .values(status=image_status, staging=None, updated_at=now)
            )


def list_tasks(svc: ImageService, ctx: RequestContext, image_id: str) -> list[Task]:
    svc.enforce(ctx, "get_tasks")
    with svc.reading() as s:
        svc.get_visible(s, ctx, image_id)
        return list(s.scalars(select(Task).where(Task.image_id == image_id).order_by(Task.created_at)))


# -- download -----------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    location: str | None
    size: int
    checksum: str | None
    store: str | None = None


def begin_download(svc: ImageService, ctx: RequestContext, image_id: str) -> Download:
    svc.enforce(ctx, "download_image")
    with svc.reading() as s:
        image = svc.get_visible(s, ctx, image_id)
    if image.status == "deactivated" and not is_admin(ctx):
        raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
    if image.location is None or image.status not in ("active", "deactivated"):
        return Download(None, 0, None)
    if svc.cache is not None:  # this node's cached copy first
        cached = svc.cache.lookup(image_id, image.size)
        if cached:
            return Download(cached, int(image.size or 0), image.checksum, "cache")
    weights = svc.settings.store_weights
    ordered = sorted(locations.get(image), key=lambda loc: -weights.get(str(loc.get("store")), 0))
    for loc in ordered:  # the heaviest copy in a store this node has
        if loc.get("store") in svc.stores_by_id:
            return Download(loc["url"], int(image.size or 0), image.checksum, loc["store"])
    raise Conflict("The image data is in no store this node can read.")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive for a ``Range: bytes=...`` header; None for the whole image."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise BadRequest(f"Unsupported Range header: {header}")
    first, dash, last = spec.strip().partition("-")
    try:
        if not dash:
            raise ValueError
        if first == "":
            n = int(last)
            if n <= 0:
                raise _unsatisfiable(size)
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        raise BadRequest(f"Invalid Range header: {header}") from None
    if start >= size or start > end:
        raise _unsatisfiable(size)
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> Exception:
    from kumo.image.errors import RangeNotSatisfiable

    return RangeNotSatisfiable(
        "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"}
    )


def delete_data(svc: ImageService, data: list[tuple[str | None, str | None]]) -> None:
    from kumo.image.store import StoreError

    for store_id, location in data:
        if not location:
            continue
        store = svc.staging if store_id == "staging" else svc.stores_by_id.get(store_id or "")
        if store is None:
            log.warning("image data at %s is in store %s, which is not enabled here", location, store_id)
            continue
        try:
            store.delete(location)
        except (OSError, ValueError, StoreError):
            log.exception("could not delete data at %s", location)


def usage(svc: ImageService, ctx: RequestContext) -> dict[str, Any]:
    svc.enforce(ctx, "get_usage")
    st = svc.settings
    owner = ctx.project_id
    with svc.reading() as s:
        count = int(s.scalar(select(func.count()).select_from(Image).where(Image.owner == owner)) or 0)
        size = _quota_used(s, owner, staged=False)
        staged = _quota_used(s, owner, staged=True)
        uploading = _uploading_count(s, owner)

    def mib(n: int) -> int:
        return -(-n // (1024 * 1024))

    return {
        "image_size_total": {
            "limit": mib(st.image_size_total) if st.image_size_total >= 0 else -1,
            "usage": mib(size),
        },
        "image_stage_total": {
            "limit": mib(st.image_stage_total) if st.image_stage_total >= 0 else -1,
            "usage": mib(staged),
        },
        "image_count_total": {"limit": st.image_count_total, "usage": count},
        "image_count_uploading": {"limit": st.image_count_uploading, "usage": uploading},
    }


def not_found(image_id: str) -> NotFound:
    return image_not_found(image_id)
