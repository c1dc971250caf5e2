"""What every resource module shares: the database, transactions with retry, the
global revision counter, standard attributes, If-Match and quotas."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from kumo.common.context import RequestContext
from kumo.common.db import Database
from kumo.network import models as m
from kumo.network.errors import APIError, bad, conflict
from kumo.network.policies import is_admin
from kumo.network.schemas import check_keys, project_of, to_str, to_str_list
from kumo.network.settings import NetworkSettings

T = TypeVar("T")

STANDARD_KEYS = ("name", "description", "project_id", "tenant_id")


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def iso(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def new_id() -> str:
    return str(uuid.uuid4())


class Core:
    def __init__(self, db: Database, settings: NetworkSettings) -> None:
        self.db = db
        self.settings = settings

    # -- transactions ------------------------------------------------------------------------

    def tx(self, fn: Callable[[Session], T], attempts: int = 30) -> T:
        """Run ``fn`` in one transaction; retry it when a concurrent writer won a uniqueness
        race (IntegrityError) or the database was busy. The last failure propagates."""
        for attempt in range(attempts):
            try:
                with self.db.session() as s:
                    return fn(s)
            except (IntegrityError, OperationalError) as exc:
                if isinstance(exc, OperationalError) and "locked" not in str(exc).lower():
                    raise
                if attempt == attempts - 1:
                    raise
                time.sleep(random.uniform(0.001, 0.02) * (attempt + 1))
        raise AssertionError("unreachable")

    def read(self, fn: Callable[[Session], T]) -> T:
        with self.db.reader() as s:
            return fn(s)

    # -- global revision ---------------------------------------------------------------------

    def bump(self, s: Session) -> None:
        res = s.execute(update(m.Revision).where(m.Revision.id == 1).values(revision=m.Revision.revision + 1))
        if res.rowcount == 0:  # type: ignore[attr-defined]
            s.add(m.Revision(id=1, revision=1))

    def current_revision(self) -> int:
        with self.db.reader() as s:
            value = s.scalar(select(m.Revision.revision).where(m.Revision.id == 1))
        return int(value or 0)

    # -- standard attributes -----------------------------------------------------------------

    @staticmethod
    def std(row: Any, with_name: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": row.id}
        if with_name:
            out["name"] = row.name
        out.update({
            "tenant_id": row.project_id,
            "project_id": row.project_id,
            "description": row.description,
            "tags": list(row.tags or []),
            "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at),
            "revision_number": row.revision_number,
        })
        return out

    @staticmethod
    def new_row(cls: type[T], ctx: RequestContext, data: dict[str, Any], **extra: Any) -> T:
        ts = now()
        values: dict[str, Any] = {
            "id": extra.pop("id", None) or new_id(),
            "project_id": extra.pop("project_id", None) or project_of(ctx, data),
            "name": to_str(data.get("name", ""), "name") or "",
            "description": to_str(data.get("description", ""), "description") or "",
            "tags": [],
            "revision_number": 0,
            "created_at": ts,
            "updated_at": ts,
        }
        values.update(extra)
        return cls(**values)  # type: ignore[call-arg]

    @staticmethod
    def set_std(row: Any, data: dict[str, Any]) -> None:
        if "name" in data:
            row.name = to_str(data["name"], "name") or ""
        if "description" in data:
            row.description = to_str(data["description"], "description") or ""

    @staticmethod
    def touch(row: Any) -> None:
        row.revision_number = (row.revision_number or 0) + 1
        row.updated_at = now()

    @staticmethod
    def check_if_match(row: Any, if_match: str | None) -> None:
        """``If-Match: revision_number=N`` (several may be comma separated)."""
        if not if_match:
            return
        for part in if_match.split(","):
            part = part.strip()
            if not part.startswith("revision_number="):
                raise bad("If-Match only supports revision_number=N constraints.")
            try:
                wanted = int(part.split("=", 1)[1])
            except ValueError:
                raise bad("If-Match revision_number must be an integer.") from None
            if wanted != row.revision_number:
                raise APIError(
                    f"Constrained to {wanted}, but current revision is {row.revision_number}",
                    status=412, fault="RevisionNumberConstraintFailed",
                )

    @staticmethod
    def check_project_change(ctx: RequestContext, row: Any, data: dict[str, Any]) -> None:
        for key in ("project_id", "tenant_id"):
            if key in data and data[key] != row.project_id:
                raise bad(f"Cannot update read-only attribute {key}")

    @staticmethod
    def allowed(data: dict[str, Any], *keys: str, standard: bool = True) -> None:
        check_keys(data, (*keys, *(STANDARD_KEYS if standard else ())))

    # -- tags --------------------------------------------------------------------------------

    @staticmethod
    def validate_tags(tags: Any) -> list[str]:
        tags = to_str_list(tags, "tags")
        for t in tags:
            if not t or len(t) > 255 or "," in t:
                raise bad(f"Invalid input for tags. Reason: '{t}' is not a valid tag.", "InvalidInput")
        return list(dict.fromkeys(tags))

    # -- quotas ------------------------------------------------------------------------------

    def quota_limit(self, s: Session, project_id: str, resource: str) -> int:
        row = s.get(m.Quota, (project_id, resource))
        if row is not None:
            return row.limit
        return int(getattr(self.settings.quotas, resource, -1))

    def check_quota(self, s: Session, ctx: RequestContext, project_id: str, resource: str,
                    model: Any, adding: int = 1, where: Any = None) -> None:
        limit = self.quota_limit(s, project_id, resource)
        if limit < 0:
            return
        stmt = select(func.count()).select_from(model).where(model.project_id == project_id)
        if where is not None:
            stmt = stmt.where(where)
        used = s.scalar(stmt) or 0
        if used + adding > limit:
            raise conflict("OverQuota", f"Quota exceeded for resources: ['{resource}'].")

    @staticmethod
    def admin(ctx: RequestContext) -> bool:
        return is_admin(ctx)
