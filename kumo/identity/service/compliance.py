"""Keystone's ``[security_compliance]``: lockout, password history, age, expiry and rules.

Configured in :class:`kumo.common.config.IdentitySettings` with Keystone's option names
and defaults (everything disabled). Users opt out with the ``ignore_*`` user options.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.common.config import IdentitySettings
from kumo.identity import models as m
from kumo.identity.errors import AuthFailed, ValidationError
from kumo.identity.service.core import Identity, utcnow


class BadPassword(AuthFailed):
    """A wrong password for an existing user: counted towards the lockout after the rollback."""

    def __init__(self, user_id: str, message: str | None = None) -> None:
        super().__init__(message) if message else super().__init__()
        self.user_id = user_id


def _option(user: m.User, name: str) -> bool:
    return (user.options or {}).get(name) is True


# -- lockout ---------------------------------------------------------------------------------
def _lock_active(settings: IdentitySettings, user: m.User, now: datetime) -> bool:
    limit = settings.lockout_failure_attempts
    if not limit or (user.failed_auth_count or 0) < limit:
        return False
    if not settings.lockout_duration or user.failed_auth_at is None:
        return True
    return user.failed_auth_at + timedelta(seconds=settings.lockout_duration) > now


def check_not_locked(settings: IdentitySettings, user: m.User, now: datetime | None = None) -> None:
    """401 as Keystone's AccountLocked while the user is locked (checked before the password)."""
    if _option(user, "ignore_lockout_failure_attempts"):
        return
    if _lock_active(settings, user, now or utcnow()):
        raise AuthFailed(f"The account is locked for user: {user.id}.")


def record_failure(ident: Identity, user_id: str) -> None:
    """Count one failed password login (own transaction: the failed request's one rolled back)."""
    settings = ident.settings
    if not settings.lockout_failure_attempts:
        return  # lockout disabled: no write per failed login
    now = utcnow()
    with ident.db.session() as s:
        user = s.get(m.User, user_id)
        if user is None or _option(user, "ignore_lockout_failure_attempts"):
            return
        count = user.failed_auth_count or 0
        if count >= settings.lockout_failure_attempts and not _lock_active(settings, user, now):
            count = 0  # an expired lock starts the count again
        user.failed_auth_count = count + 1
        user.failed_auth_at = now


def clear_failures(user: m.User) -> None:
    """A successful login resets the count (only writes when there is something to reset)."""
    if user.failed_auth_count or user.failed_auth_at is not None:
        user.failed_auth_count = 0
        user.failed_auth_at = None


# -- password rules --------------------------------------------------------------------------
def check_password_rules(settings: IdentitySettings, password: str) -> None:
    """``password_regex``: 400 with ``password_regex_description``, as Keystone."""
    pattern = settings.password_regex
    if pattern and not re.match(pattern, password):
        detail = settings.password_regex_description or f"it must match {pattern}"
        raise ValidationError(f"The password does not match the requirements: {detail}.")


def password_expired(user: m.User, now: datetime | None = None) -> bool:
    if user.password_expires_at is None or _option(user, "ignore_password_expiry"):
        return False
    return (now or utcnow()) >= user.password_expires_at


def check_minimum_age(settings: IdentitySettings, user: m.User, now: datetime | None = None) -> None:
    """Only a password the user chose themselves must be kept ``minimum_password_age`` days."""
    days = settings.minimum_password_age
    if not days or not user.password_self_service or user.password_created_at is None:
        return
    now = now or utcnow()
    min_age = user.password_created_at + timedelta(days=days)
    if now < min_age:
        raise ValidationError(
            "You cannot change your password at this time due to the minimum password age. "
            f"Once you change your password, it must be used for {days} day(s) before it can be "
            f"changed. Please try again in {(min_age - now).days} day(s) or contact your "
            "administrator to reset your password."
        )


def check_history(ident: Identity, s: Session, user: m.User, password: str) -> None:
    """The new password must differ from the last ``unique_last_password_count`` (current included)."""
    count = ident.settings.unique_last_password_count
    if count <= 0:
        return
    hashes = [user.password_hash] if user.password_hash else []
    if count > 1:
        q = (
            select(m.PasswordHistory.password_hash)
            .where(m.PasswordHistory.user_id == user.id)
            .order_by(m.PasswordHistory.id.desc())
            .limit(count - 1)
        )
        hashes += list(s.scalars(q))
    for hashed in hashes[:count]:
        if ident.hasher.verify(password, hashed):
            raise ValidationError(
                "The new password cannot be identical to a previous password. The total number "
                f"which includes the new password must be unique is {count}."
            )


def set_password(
    ident: Identity, s: Session, user: m.User, hashed: str | None, *, self_service: bool = False
) -> None:
    """Store a new password hash: history, created/expiry times, first-use expiry."""
    settings = ident.settings
    now = utcnow()
    keep = settings.unique_last_password_count
    if user.password_hash and keep > 0:
        s.add(m.PasswordHistory(user_id=user.id, password_hash=user.password_hash, created_at=now))
        s.flush()
        _trim_history(s, user.id, keep)
    user.password_hash = hashed
    user.password_created_at = now if hashed else None
    user.password_self_service = self_service
    expires = None
    if hashed and settings.password_expires_days and not _option(user, "ignore_password_expiry"):
        expires = (now + timedelta(days=settings.password_expires_days)).replace(microsecond=0)
    if (
        hashed
        and not self_service
        and settings.change_password_upon_first_use
        and not _option(user, "ignore_change_password_upon_first_use")
    ):
        expires = now  # an admin-set password must be changed by its user before use
    user.password_expires_at = expires


def _trim_history(s: Session, user_id: str, keep: int) -> None:
    H = m.PasswordHistory
    newest = select(H.id).where(H.user_id == user_id).order_by(H.id.desc()).limit(keep)
    s.execute(delete(H).where(H.user_id == user_id, H.id.not_in(newest)))


def forget(s: Session, user_id: str) -> None:
    """Drop a deleted user's history."""
    s.execute(delete(m.PasswordHistory).where(m.PasswordHistory.user_id == user_id))
