"""The node registry's domain logic: join tokens, nodes, heartbeats and health. No HTTP here."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from kumo.common.db import Database
from kumo.common.errors import BadRequest, Conflict, NotFound, Unauthorized
from kumo.runtime.node.models import JoinToken, Node

MIGRATIONS = Path(__file__).parent / "migrations"
ROLES = ("controller", "compute", "network", "storage")
JOIN_ROLES = ("compute", "network", "storage")
TOKEN_PREFIX = "kmj1"
NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_roles(roles: Any, allowed: tuple[str, ...] = ROLES) -> list[str]:
    if isinstance(roles, str):
        roles = [r for r in roles.split(",") if r.strip()]
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise BadRequest("roles must be a non-empty list of role names.")
    roles = [r.strip() for r in roles]
    unknown = [r for r in roles if r not in allowed]
    if unknown:
        raise BadRequest(f"Unknown role(s) {', '.join(unknown)}; a node may join as {', '.join(allowed)}.")
    return list(dict.fromkeys(roles))


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise BadRequest("A node name is 1-63 lowercase letters, digits, dots and dashes, starting alphanumeric.")
    return name


@dataclass(frozen=True, slots=True)
class CreatedToken:
    token: str
    id: str
    roles: list[str]
    expires_at: datetime


class Registry:
    def __init__(self, db: Database, down_after: float = 60.0) -> None:
        self.db = db
        self.down_after = down_after

    def migrate(self) -> None:
        self.db.migrate("node", MIGRATIONS)

    # -- join tokens ----------------------------------------------------------------------------

    def create_token(self, roles: list[str] | None = None, ttl: int = 3600, description: str = "") -> CreatedToken:
        """A one-time token ``kmj1.<id>.<secret>``; only the secret's hash is stored."""
        roles = check_roles(roles or list(JOIN_ROLES), JOIN_ROLES)
        if ttl < 60 or ttl > 7 * 86400:
            raise BadRequest("A join token lives between 60 seconds and 7 days.")
        token_id, secret = uuid.uuid4().hex, secrets.token_urlsafe(32)
        now = _now()
        row = JoinToken(id=token_id, secret_hash=_hash(secret), roles=roles, description=description[:255],
                        created_at=now, expires_at=now + timedelta(seconds=ttl))
        with self.db.session() as s:
            s.add(row)
        return CreatedToken(f"{TOKEN_PREFIX}.{token_id}.{secret}", token_id, roles, row.expires_at)

    def list_tokens(self) -> list[dict[str, Any]]:
        with self.db.reader() as s:
            rows = list(s.scalars(select(JoinToken).order_by(JoinToken.created_at)))
        now = _now()
        return [{"id": t.id, "roles": t.roles, "description": t.description,
                 "expires_at": t.expires_at.isoformat() + "Z", "used_by": t.used_by,
                 "state": "used" if t.used_at else ("expired" if t.expires_at <= now else "valid")} for t in rows]

    def redeem(self, token: Any, name: str, roles: list[str], address: str = "") -> tuple[Node, str, bool]:
        """Spend ``token`` for node ``name``: (the node, its new node key, whether it is new)."""
        if not isinstance(token, str):
            raise BadRequest("token must be a string.")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise Unauthorized("The join token is malformed.")
        _, token_id, secret = parts
        name = check_name(name)
        roles = check_roles(roles, JOIN_ROLES)
        key = secrets.token_urlsafe(32)
        now = _now()
        with self.db.session() as s:
            row = s.get(JoinToken, token_id)
            if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
                raise Unauthorized("The join token is not valid.")
            if row.used_at is not None:
                raise Unauthorized("The join token was already used.")
            if row.expires_at <= now:
                raise Unauthorized("The join token has expired.")
            outside = [r for r in roles if r not in row.roles]
            if outside:
                raise BadRequest(f"This join token does not allow the role(s) {', '.join(outside)}.")
            # One-time: only the first of two concurrent joins flips used_at.
            spent = s.execute(update(JoinToken).where(JoinToken.id == token_id, JoinToken.used_at.is_(None))
                              .values(used_at=now, used_by=name))
            if spent.rowcount != 1:
                raise Unauthorized("The join token was already used.")
            node = s.get(Node, name)
            is_new = node is None
            if node is None:
                node = Node(name=name, created_at=now, user_id="", version="")
                s.add(node)
            node.roles, node.address, node.key_hash = roles, address[:255], _hash(key)
            node.joined_at, node.last_heartbeat = now, None
        return node, key, is_new

    def set_user(self, name: str, user_id: str) -> None:
        with self.db.session() as s:
            node = s.get(Node, name)
            if node is not None:
                node.user_id = user_id

    # -- nodes ----------------------------------------------------------------------------------

    def register_local(self, name: str, roles: list[str], address: str, version: str = "") -> None:
        """A node started on the controller itself records itself (no key: it shares the database)."""
        name, roles = check_name(name), check_roles(roles)
        now = _now()
        with self.db.session() as s:
            node = s.get(Node, name)
            if node is None:
                node = Node(name=name, created_at=now, key_hash="", user_id="", joined_at=now)
                s.add(node)
            node.roles = list(dict.fromkeys([*node.roles, *roles])) if node.roles else roles
            node.address, node.version, node.last_heartbeat = address[:255], version[:64], now

    def heartbeat(self, name: str, key: str, version: str = "") -> None:
        with self.db.session() as s:
            node = s.get(Node, name)
            if node is None:
                raise NotFound(f"Node {name} is not registered.")
            if not node.key_hash or not hmac.compare_digest(node.key_hash, _hash(key or "")):
                raise Unauthorized("The node key is missing or wrong.")
            node.last_heartbeat = _now()
            if version:
                node.version = version[:64]

    def beat_local(self, name: str) -> None:
        with self.db.session() as s:
            node = s.get(Node, name)
            if node is not None:
                node.last_heartbeat = _now()

    def delete(self, name: str) -> Node:
        with self.db.session() as s:
            node = s.get(Node, name)
            if node is None:
                raise NotFound(f"Node {name} is not registered.")
            s.delete(node)
            return node

    def list_nodes(self) -> list[dict[str, Any]]:
        with self.db.reader() as s:
            rows = list(s.scalars(select(Node).order_by(Node.name)))
        return [self.render(n) for n in rows]

    def show(self, name: str) -> dict[str, Any]:
        with self.db.reader() as s:
            node = s.get(Node, name)
        if node is None:
            raise NotFound(f"Node {name} is not registered.")
        return self.render(node)

    def render(self, n: Node) -> dict[str, Any]:
        now = _now()
        age = (now - n.last_heartbeat).total_seconds() if n.last_heartbeat else None
        return {
            "name": n.name, "roles": list(n.roles or []), "address": n.address, "version": n.version,
            "joined_at": n.joined_at.isoformat() + "Z" if n.joined_at else None,
            "last_heartbeat": n.last_heartbeat.isoformat() + "Z" if n.last_heartbeat else None,
            "seconds_since_heartbeat": round(age, 1) if age is not None else None,
            "health": "up" if age is not None and age <= self.down_after else "down",
        }


def ensure_unique_roles(nodes: list[dict[str, Any]], name: str) -> None:
    """Refuse a join that would reuse the name of a live node holding the controller role."""
    for n in nodes:
        if n["name"] == name and "controller" in n["roles"]:
            raise Conflict(f"Node {name} is a controller; pick another name.")
