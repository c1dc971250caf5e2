"""The image service object: database, stores, settings, and who may see what."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.common.config import ImageSettings
from kumo.common.context import RequestContext
from kumo.common.db import Database
from kumo.image.errors import image_not_found
from kumo.image.models import Image, Member
from kumo.image.policies import POLICY
from kumo.image.store import FileStore


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def iso(when: datetime | None) -> str | None:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def is_admin(ctx: RequestContext) -> bool:
    return POLICY.check(ctx, "set_owner")


@dataclass
class ImageService:
    db: Database
    store: FileStore
    staging: FileStore
    settings: ImageSettings

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session whose objects stay usable after it ends."""
        with self.db.reader() as s:
            yield s
            s.expunge_all()

    @property
    def stores(self) -> list[FileStore]:
        return [self.store]

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
        if not is_admin(ctx):
            stmt = stmt.where(self.visible_filter(ctx))
        image = s.scalars(stmt).first()
        if image is None:
            raise image_not_found(image_id)
        if image.visibility == "private" and image.owner != ctx.project_id and not is_admin(ctx):
            raise image_not_found(image_id)
        return image

    def enforce(self, ctx: RequestContext, action: str, image: Image | None = None) -> None:
        target = {"project_id": image.owner if image is not None else ctx.project_id}
        POLICY.enforce(ctx, action, target)

    def owns(self, ctx: RequestContext, image: Image) -> bool:
        return is_admin(ctx) or (image.owner is not None and image.owner == ctx.project_id)
