"""The block storage service object: database, settings, wake-ups for volume agents."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import Forbidden
from kumo.block_storage.models import Counter
from kumo.block_storage.policies import POLICY
from kumo.common.config import BlockStorageSettings
from kumo.common.context import RequestContext
from kumo.common.db import Database
from kumo.common.notify import Notifier


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso(dt: datetime | None) -> str | None:
    """Cinder's timestamp form: ``2026-11-24T11:50:00.000000``."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") if dt else None


def new_uuid() -> str:
    return str(uuid.uuid4())


def is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@dataclass
class BlockStorageService:
    db: Database
    settings: BlockStorageSettings
    agent_secret: str
    notifier: Notifier = field(default_factory=Notifier)
    extras: dict[str, Any] = field(default_factory=dict)

    def enforce(self, ctx: RequestContext, action: str, target: dict[str, Any] | None = None) -> None:
        POLICY.enforce(ctx, action, target)

    def is_admin(self, ctx: RequestContext) -> bool:
        return POLICY.check(ctx, "admin")

    def require_admin(self, ctx: RequestContext, what: str = "this action") -> None:
        if not self.is_admin(ctx):
            raise Forbidden(f"Policy doesn't allow {what} to be performed.")

    def next_seq(self, session: Session, name: str, count: int = 1) -> int:
        row = session.execute(select(Counter).where(Counter.name == name).with_for_update()).scalar_one_or_none()
        if row is None:
            row = Counter(name=name, value=0)
            session.add(row)
        row.value = (row.value or 0) + count
        session.flush()
        return row.value

    def wake_agents(self) -> None:
        self.notifier.bump()
