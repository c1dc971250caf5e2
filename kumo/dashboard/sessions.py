"""Server-side sessions: the browser holds only an opaque random id; the token stays here."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from kumo.common.db import Database
from kumo.dashboard.models import WebSession

COOKIE = "kumo_dashboard_session"
LOGIN_CSRF_COOKIE = "kumo_dashboard_login_csrf"


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_expiry(value: str | None, default_hours: int = 1) -> datetime:
    if value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed.astimezone(UTC).replace(tzinfo=None)
        except ValueError:
            pass
    return _now() + timedelta(hours=default_hours)


@dataclass(slots=True)
class Session:
    """One logged-in browser: the token, what identity said about it, and its CSRF secret."""

    sid_hash: str
    csrf: str
    token: str
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def user(self) -> dict[str, Any]:
        return self.body.get("user") or {}

    @property
    def project(self) -> dict[str, Any] | None:
        return self.body.get("project")

    @property
    def project_id(self) -> str:
        return (self.project or {}).get("id", "")

    @property
    def roles(self) -> list[str]:
        return sorted(r.get("name", "") for r in self.body.get("roles") or [])

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def catalog(self) -> list[dict[str, Any]]:
        return self.body.get("catalog") or []

    def endpoint(self, service_type: str, *alternates: str) -> str | None:
        """The public URL of a service type in this token's catalog (None when absent)."""
        for wanted in (service_type, *alternates):
            for entry in self.catalog:
                if entry.get("type") != wanted:
                    continue
                eps = entry.get("endpoints") or []
                for ep in eps:
                    if ep.get("interface") == "public":
                        return str(ep["url"]).rstrip("/")
                if eps:
                    return str(eps[0]["url"]).rstrip("/")
        return None

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf, presented or "")


class SessionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, token: str, body: dict[str, Any]) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        row = WebSession(
            id=_digest(sid),
            csrf=secrets.token_urlsafe(32),
            token=token,
            token_body=json.dumps(body),
            expires_at=parse_expiry(body.get("expires_at")),
            created_at=_now(),
        )
        with self.db.session() as s:
            s.execute(delete(WebSession).where(WebSession.expires_at < _now()))  # sweep stale ones
            s.add(row)
        return sid, Session(row.id, row.csrf, token, body)

    def load(self, sid: str | None) -> Session | None:
        if not sid or len(sid) > 200:
            return None
        with self.db.reader() as s:
            row = s.execute(select(WebSession).where(WebSession.id == _digest(sid))).scalar_one_or_none()
        if row is None or row.expires_at < _now():
            return None
        return Session(row.id, row.csrf, row.token, json.loads(row.token_body))

    def replace_token(self, session: Session, token: str, body: dict[str, Any]) -> None:
        with self.db.session() as s:
            row = s.get(WebSession, session.sid_hash)
            if row is None:
                return
            row.token = token
            row.token_body = json.dumps(body)
            row.expires_at = parse_expiry(body.get("expires_at"))
        session.token, session.body = token, body

    def delete(self, session: Session) -> None:
        with self.db.session() as s:
            s.execute(delete(WebSession).where(WebSession.id == session.sid_hash))
