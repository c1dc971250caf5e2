"""The image service object: database, stores, settings, and who may see what."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.common.config import ImageSettings
from kumo.common.context import RequestContext
from kumo.common.db import Database
from kumo.image.errors import BadRequest, image_not_found
from kumo.image.models import Image, Member
from kumo.image.policies import POLICY
from kumo.image.store import FileStore, Store


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def iso(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def is_admin(ctx: RequestContext) -> bool:
    return POLICY.check(ctx, "set_owner")


def is_service(ctx: RequestContext) -> bool:
    """kumo's own node users (the ``service`` role): compute hosts fetch any server's image and
    fill in the snapshot images the compute API created for a user (upstream Nova passes the
    user's token instead; kumo's agents work asynchronously and never hold it)."""
    return "service" in (ctx.roles or ())


@dataclass
class ImageService:
    db: Database
    stores_by_id: dict[str, Store]  # enabled stores, in configuration order
    default_store: str
    staging: FileStore
    settings: ImageSettings
    # background import jobs still running (image id -> thread), for tests and shutdown
    jobs: dict[str, object] = field(default_factory=dict)
    cache: Any = None  # this node's ImageCache, when enabled
    identity_url: str = ""  # e.g. http://h:p/identity, for catalogs (glance-download)

    def read_store(self, store_id: str) -> Store:
        """A store to read from: an enabled store, or this node's cache."""
        if store_id == "cache" and self.cache is not None:
            return self.cache.files  # type: ignore[no-any-return]
        return self.get_store(store_id)

    @property
    def store(self) -> Store:
        return self.stores_by_id[self.default_store]

    def get_store(self, store_id: str) -> Store:
        store = self.stores_by_id.get(store_id)
        if store is None:
            raise BadRequest(f"Store {store_id} is not available on this node.")
        return store

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session whose objects stay usable after it ends."""
        with self.db.reader() as s:
            yield s
            s.expunge_all()

    @property
    def stores(self) -> list[Store]:
        return list(self.stores_by_id.values())

    # -- visibility -------------------------------------------------------

    def visible_filter(self, ctx: RequestContext):  # type: ignore[no-untyped-def]
        """SQL condition for the images ``ctx`` may see (by id or in a list)."""
        members = select(Member.image_id).where(Member.member_id == ctx.project_id)
        return or_(
            Image.owner == ctx.project_id,
            Image.visibility.in_(("public", "community")),
            Image.id.in_(members),
        )

    def get_visible(self, s: Session, ctx: RequestContext, image_id: str, *, lock: bool = False) -> Image:
        stmt = select(Image).where(Image.id == image_id)
        if not is_admin(ctx) and not is_service(ctx):
            stmt = stmt.where(self.visible_filter(ctx))
        image = s.scalars(stmt).first()
        if image is None:
            raise image_not_found(image_id)
        if (image.visibility == "private" and image.owner != ctx.project_id and not is_admin(ctx)
                and not is_service(ctx)):
            raise image_not_found(image_id)
        return image

    def enforce(self, ctx: RequestContext, action: str, image: Image | None = None) -> None:
        target = {"project_id": image.owner if image is not None else ctx.project_id}
        POLICY.enforce(ctx, action, target)

    def enforce_ok(self, ctx: RequestContext, action: str, image: Image) -> bool:
        return POLICY.check(ctx, action, {"project_id": image.owner})

    def owns(self, ctx: RequestContext, image: Image) -> bool:
        return is_admin(ctx) or (image.owner is not None and image.owner == ctx.project_id)

    def fills(self, ctx: RequestContext, image: Image) -> bool:
        """May write this image's data or drop it: its owner, or a service user while the image
        has no data yet (a snapshot in progress)."""
        return self.owns(ctx, image) or (is_service(ctx) and image.status in ("queued", "saving", "killed"))
