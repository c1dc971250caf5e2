"""The dashboard's only table: server-side login sessions (the user's token never leaves the server)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kumo.common.db import Base


class DashboardBase(Base):
    __abstract__ = True


class WebSession(DashboardBase):
    __tablename__ = "dashboard_sessions"

    # sha256 of the cookie value: a leaked table does not hand out live session ids
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf: Mapped[str] = mapped_column(String(64), nullable=False)
    token: Mapped[str] = mapped_column(Text, nullable=False)
    # the token body identity returned (user, project, roles, catalog), as JSON
    token_body: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
