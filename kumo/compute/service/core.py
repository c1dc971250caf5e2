"""The compute service object: database, settings, peers, wake-ups for agents."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from kumo.common.config import ComputeSettings
from kumo.common.context import RequestContext
from kumo.common.db import Database
from kumo.common.notify import Notifier
from kumo.compute.errors import Forbidden
from kumo.compute.models import Counter
from kumo.compute.policies import POLICY


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass
class ComputeService:
    db: Database
    settings: ComputeSettings
    agent_secret: str
    notifier: Notifier = field(default_factory=Notifier)
    region: str = "RegionOne"
    extras: dict[str, Any] = field(default_factory=dict)

    def enforce(self, ctx: RequestContext, action: str, target: dict[str, Any] | None = None) -> None:
        POLICY.enforce(ctx, action, target)

    def is_admin(self, ctx: RequestContext) -> bool:
        return POLICY.check(ctx, "admin")

    def require_admin(self, ctx: RequestContext, what: str = "this action") -> None:
        if not self.is_admin(ctx):
            raise Forbidden(f"Policy doesn't allow {what} to be performed.")

    def next_value(self, session: Any, name: str, count: int = 1) -> int:
        row = session.execute(
            select(Counter).where(Counter.name == name).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            row = Counter(name=name, value=0)
            session.add(row)
        row.value = (row.value or 0) + count
        session.flush()
        return row.value
