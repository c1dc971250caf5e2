"""This node's image cache (Glance's ``/v2/cache``, admins only).

A cached image is a local file copy of its data under ``<data_dir>/images/cache``;
downloads on this node are served from it instead of the image's store (useful when
the data lives in object storage or behind an http location). Admins queue images to
be cached (a background copy), list, and remove them. The cache is per node, so its
state lives on this node's disk, not in the shared database: ``<id>`` is the data,
``<id>.json`` its hit count and last access, ``queue/<id>`` a queued image.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from kumo.common.context import RequestContext
from kumo.image.errors import BadRequest, NotFound
from kumo.image.models import Image
from kumo.image.service import locations
from kumo.image.service.core import ImageService
from kumo.image.store import FileStore, StoreError

log = logging.getLogger("kumo.image.cache")
TARGETS = ("cache", "queue")


class ImageCache:
    def __init__(self, root: Path) -> None:
        self.files = FileStore(root, store_id="cache", description="Image cache")
        self.queue_dir = root / "queue"
        self.queue_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()

    def _data(self, image_id: str) -> Path:
        return self.files.root / image_id

    def _meta(self, image_id: str) -> Path:
        return self.files.root / f"{image_id}.json"

    def cached(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.files.root.iterdir()):
            if not path.is_file() or path.name.startswith(".") or path.suffix == ".json":
                continue
            meta = self._read_meta(path.name)
            st = path.stat()
            out.append(
                {
                    "image_id": path.name,
                    "hits": meta.get("hits", 0),
                    "last_accessed": meta.get("last_accessed", st.st_mtime),
                    "last_modified": st.st_mtime,
                    "size": st.st_size,
                }
            )
        return out

    def queued(self) -> list[str]:
        return sorted(p.name for p in self.queue_dir.iterdir() if p.is_file())

    def _read_meta(self, image_id: str) -> dict[str, Any]:
        try:
            return json.loads(self._meta(image_id).read_text())
        except (OSError, ValueError):
            return {}

    def lookup(self, image_id: str, size: int | None) -> str | None:
        """The cached copy's location when it is complete; counts a hit."""
        path = self._data(image_id)
        try:
            if size is None or path.stat().st_size != size:
                return None
        except OSError:
            return None
        with self._lock:
            meta = self._read_meta(image_id)
            meta.update(hits=int(meta.get("hits", 0)) + 1, last_accessed=time.time())
            tmp = self._meta(image_id).with_suffix(".json.tmp")
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, self._meta(image_id))
        return f"file://{path}"

    def remove(self, image_id: str) -> bool:
        found = False
        for path in (self._data(image_id), self._meta(image_id), self.queue_dir / image_id):
            if path.exists():
                found = True
                path.unlink(missing_ok=True)
        return found

    def clear(self, target: str | None) -> None:
        if target in (None, "cache"):
            for entry in self.cached():
                self._data(entry["image_id"]).unlink(missing_ok=True)
                self._meta(entry["image_id"]).unlink(missing_ok=True)
        if target in (None, "queue"):
            for image_id in self.queued():
                (self.queue_dir / image_id).unlink(missing_ok=True)


def _cache(svc: ImageService) -> ImageCache:
    cache = svc.cache
    if cache is None:
        raise NotFound("The image cache is not enabled on this node.")
    return cache  # type: ignore[no-any-return]


def list_cache(svc: ImageService, ctx: RequestContext) -> dict[str, Any]:
    svc.enforce(ctx, "cache_list")
    cache = _cache(svc)
    return {"cached_images": cache.cached(), "queued_images": cache.queued()}


def queue_image(svc: ImageService, ctx: RequestContext, image_id: str) -> None:
    svc.enforce(ctx, "cache_image")
    cache = _cache(svc)
    with svc.reading() as s:
        image = s.get(Image, image_id)
    if image is None:
        raise NotFound(f"No image found with ID {image_id}")
    if image.status != "active":
        raise BadRequest(f"Only active images can be cached (image {image_id} is {image.status}).")
    (cache.queue_dir / image_id).touch()
    threading.Thread(
        target=_prefetch, args=(svc, cache, image_id), name=f"image-cache-{image_id}", daemon=True
    ).start()


def _prefetch(svc: ImageService, cache: ImageCache, image_id: str) -> None:
    from kumo.image.service.imports import copy_data

    try:
        with svc.reading() as s:
            image = s.get(Image, image_id)
        if image is None or image.status != "active":
            return
        weights = svc.settings.store_weights
        for loc in sorted(locations.get(image), key=lambda x: -weights.get(str(x.get("store")), 0)):
            store = svc.stores_by_id.get(str(loc.get("store")))
            if store is None:
                continue
            try:
                copy_data(store, loc["url"], cache.files, image_id)
                return
            except (OSError, ValueError, StoreError) as exc:
                log.warning("caching image %s from %s failed: %s", image_id, loc.get("store"), exc)
    finally:
        (cache.queue_dir / image_id).unlink(missing_ok=True)


def delete_cached(svc: ImageService, ctx: RequestContext, image_id: str) -> None:
    svc.enforce(ctx, "cache_delete")
    if not _cache(svc).remove(image_id):
        raise NotFound(f"Image {image_id} is neither cached nor queued on this node.")


def clear_cache(svc: ImageService, ctx: RequestContext, target: str | None) -> None:
    svc.enforce(ctx, "cache_delete")
    if target is not None and target not in TARGETS:
        raise BadRequest(f"Invalid x-image-cache-clear-target {target!r}: expected cache or queue.")
    _cache(svc).clear(target)
