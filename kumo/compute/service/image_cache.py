"""Image pre-caching (2.81): the hosts of an aggregate fetch images into their local cache.

The API records one ``ImageCacheEntry`` per (host, image) and wakes the agents; each host's
agent finds its pending entries in its work document, fetches the images (checksum verified,
as for a boot) and reports ``cached`` or ``error`` back.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from kumo.compute.errors import BadRequest, NotFound
from kumo.compute.models import Aggregate, ImageCacheEntry
from kumo.compute.service.core import ComputeService as Svc
from kumo.compute.service.core import now
from kumo.compute.service.servers import is_uuid

log = logging.getLogger("kumo.compute.image_cache")
STATUSES = ("cached", "error")


def parse_request(body: Any) -> list[str]:
    """The image ids of ``{"cache": [{"id": <uuid>}, ...]}`` (400 on a bad body or duplicates)."""
    if not isinstance(body, dict) or set(body) != {"cache"}:
        raise BadRequest("Invalid input for field/attribute cache. 'cache' is a required property")
    items = body["cache"]
    if not isinstance(items, list) or not items:
        raise BadRequest(
            f"Invalid input for field/attribute cache. Value: {items!r}. Expected a non-empty list"
        )
    ids = []
    for item in items:
        if not isinstance(item, dict) or set(item) != {"id"}:
            raise BadRequest(f"Invalid input for field/attribute cache. Value: {item!r}.")
        if not isinstance(item["id"], str) or not is_uuid(item["id"]):
            raise BadRequest(f"Invalid input for field/attribute id. Value: {item['id']!r}. Is not a 'uuid'")
        ids.append(item["id"])
    if len(set(ids)) != len(ids):
        raise BadRequest("Duplicate images in request")
    return ids


def aggregate_hosts(svc: Svc, agg_id: str) -> list[str]:
    try:
        key = int(agg_id)
    except ValueError:
        raise BadRequest(f"Invalid aggregate id {agg_id!r}: must be an integer.") from None
    with svc.db.reader() as s:
        agg = s.get(Aggregate, key)
        if agg is None:
            raise NotFound(f"Aggregate {agg_id} could not be found.")
        return list(agg.hosts or [])


def request(svc: Svc, agg_id: int, hosts: list[str], images: list[dict[str, Any]]) -> int:
    """Ask every host of the aggregate for every image; returns how many (host, image) entries."""
    ts = now()
    with svc.db.session() as s:
        for host in hosts:
            for image in images:
                row = s.execute(
                    select(ImageCacheEntry).where(
                        ImageCacheEntry.host == host, ImageCacheEntry.image_id == image["id"]
                    )
                ).scalar_one_or_none()
                if row is None:
                    row = ImageCacheEntry(host=host, image_id=image["id"], created_at=ts)
                    s.add(row)
                row.aggregate_id = agg_id
                row.checksum = image.get("checksum")
                row.status = "pending"
                row.message = None
                row.updated_at = ts
    log.info(
        "image cache: aggregate %s asks %d host(s) to cache %s",
        agg_id,
        len(hosts),
        ", ".join(i["id"] for i in images),
    )
    svc.notifier.bump()
    return len(hosts) * len(images)


def pending(svc: Svc, host: str) -> list[dict[str, Any]]:
    """The work document's ``image_cache`` part: what this host still has to fetch."""
    base = None
    for etype, _n, url in svc.extras.get("endpoints", []):
        if etype == "image":
            base = str(url).rstrip("/")
    with svc.db.reader() as s:
        rows = list(
            s.execute(
                select(ImageCacheEntry)
                .where(ImageCacheEntry.host == host, ImageCacheEntry.status == "pending")
                .order_by(ImageCacheEntry.id)
            ).scalars()
        )
    return [
        {
            "id": r.image_id,
            "url": f"{base}/v2/images/{r.image_id}/file" if base else "",
            "checksum": r.checksum,
        }
        for r in rows
    ]


def report(svc: Svc, host: str, image_id: str, body: Any) -> None:
    if not isinstance(body, dict) or body.get("status") not in STATUSES:
        raise BadRequest("status must be one of " + ", ".join(STATUSES))
    message = body.get("message")
    with svc.db.session() as s:
        row = s.execute(
            select(ImageCacheEntry).where(ImageCacheEntry.host == host, ImageCacheEntry.image_id == image_id)
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"Host {host} was not asked to cache image {image_id}.")
        row.status = body["status"]
        row.message = str(message)[:1000] if message else None
        row.updated_at = now()
        agg = row.aggregate_id
    if body["status"] == "cached":
        log.info("image cache: host %s cached image %s (aggregate %s)", host, image_id, agg)
    else:
        log.warning(
            "image cache: host %s failed to cache image %s (aggregate %s): %s", host, image_id, agg, message
        )


def entries(svc: Svc, host: str | None = None) -> list[dict[str, Any]]:
    """Every recorded entry (for the agent API's status view and tests)."""
    stmt = select(ImageCacheEntry).order_by(ImageCacheEntry.id)
    if host is not None:
        stmt = stmt.where(ImageCacheEntry.host == host)
    with svc.db.reader() as s:
        return [
            {
                "host": r.host,
                "image_id": r.image_id,
                "aggregate_id": r.aggregate_id,
                "status": r.status,
                "message": r.message,
            }
            for r in s.execute(stmt).scalars()
        ]
