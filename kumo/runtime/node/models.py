"""The node registry's tables: the nodes of a multi-node cloud and their one-time join tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from kumo.common.db import Base


class NodeBase(Base):
    __abstract__ = True


class Node(NodeBase):
    __tablename__ = "node_nodes"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    address: Mapped[str] = mapped_column(String(255), default="")
    key_hash: Mapped[str] = mapped_column(String(128), default="")  # sha256 of the node key
    user_id: Mapped[str] = mapped_column(String(64), default="")  # its identity service user
    version: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    joined_at: Mapped[datetime] = mapped_column(DateTime)
    last_heartbeat: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class JoinToken(NodeBase):
    __tablename__ = "node_join_tokens"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(128))  # sha256 of the secret half
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)  # roles it may join with
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    used_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
