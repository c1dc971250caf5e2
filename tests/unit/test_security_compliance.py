"""Security compliance settings and rules, without a server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError as PydanticError

from kumo.common.config import IdentitySettings
from kumo.identity import models as m
from kumo.identity.errors import AuthFailed, ValidationError
from kumo.identity.service import compliance
from kumo.identity.service.core import utcnow


def test_defaults_are_keystones():
    s = IdentitySettings()
    assert s.lockout_failure_attempts is None
    assert s.lockout_duration == 1800
    assert s.unique_last_password_count == 0
    assert s.minimum_password_age == 0
    assert s.password_expires_days is None
    assert s.change_password_upon_first_use is False
    assert s.password_regex is None and s.password_regex_description is None


def test_bad_regex_fails_at_start():
    with pytest.raises(PydanticError):
        IdentitySettings(password_regex="([a-z")


def _user(**kw) -> m.User:
    return m.User(id="u1", options=kw.pop("options", {}), **kw)


def test_lock_window():
    s = IdentitySettings(lockout_failure_attempts=2, lockout_duration=5)
    now = utcnow()
    compliance.check_not_locked(s, _user(failed_auth_count=1, failed_auth_at=now), now)
    with pytest.raises(AuthFailed, match="The account is locked for user: u1."):
        compliance.check_not_locked(s, _user(failed_auth_count=2, failed_auth_at=now), now)
    later = now + timedelta(seconds=6)
    compliance.check_not_locked(s, _user(failed_auth_count=2, failed_auth_at=now), later)
    exempt = _user(failed_auth_count=9, failed_auth_at=now, options={"ignore_lockout_failure_attempts": True})
    compliance.check_not_locked(s, exempt, now)
    # lockout disabled
    compliance.check_not_locked(IdentitySettings(), _user(failed_auth_count=99, failed_auth_at=now), now)


def test_regex_rule():
    s = IdentitySettings(password_regex="^.{8,}$", password_regex_description="8 characters at least")
    compliance.check_password_rules(s, "long-enough")
    with pytest.raises(ValidationError, match="does not match the requirements: 8 characters at least."):
        compliance.check_password_rules(s, "short")
    compliance.check_password_rules(IdentitySettings(), "x")


def test_minimum_age_only_for_self_service():
    s = IdentitySettings(minimum_password_age=2)
    now = utcnow()
    compliance.check_minimum_age(s, _user(password_self_service=False, password_created_at=now), now)
    with pytest.raises(ValidationError, match="minimum password age.*2 day"):
        compliance.check_minimum_age(s, _user(password_self_service=True, password_created_at=now), now)
    compliance.check_minimum_age(
        s, _user(password_self_service=True, password_created_at=now - timedelta(days=3)), now
    )


def test_expiry_and_exemption():
    now = utcnow()
    assert compliance.password_expired(_user(password_expires_at=now), now)
    assert not compliance.password_expired(_user(password_expires_at=now + timedelta(seconds=1)), now)
    exempt = _user(password_expires_at=now, options={"ignore_password_expiry": True})
    assert not compliance.password_expired(exempt, now)
