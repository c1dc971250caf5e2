"""Keystone's [security_compliance] in kumo: lockout, password history, age, expiry, rules.

One kumo with the features on (environment overrides, as the conformance harness does),
and the shared default cloud to check that they are off by default.
"""

from __future__ import annotations

import time

import pytest

from tests.support import KumoCloud, assert_keystone_error

REGEX = "^(?=.*[0-9])(?=.*[a-zA-Z]).{8,}$"
REGEX_DESC = "at least 8 characters with a letter and a digit"


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory):
    env = {
        "KUMO_IDENTITY__LOCKOUT_FAILURE_ATTEMPTS": "2",
        "KUMO_IDENTITY__LOCKOUT_DURATION": "2",
        "KUMO_IDENTITY__UNIQUE_LAST_PASSWORD_COUNT": "2",
        "KUMO_IDENTITY__PASSWORD_REGEX": REGEX,
        "KUMO_IDENTITY__PASSWORD_REGEX_DESCRIPTION": REGEX_DESC,
    }
    cloud = KumoCloud(tmp_path_factory.mktemp("kumo-sc") / "data", env=env)
    try:
        yield cloud.start()
    finally:
        cloud.stop()


def _login(cloud: KumoCloud, user_id: str, password: str) -> int:
    body = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": password}}}
        }
    }
    with cloud.client() as c:
        return c.post("/auth/tokens", json=body).status_code


def _change(cloud: KumoCloud, user_id: str, old: str, new: str):
    with cloud.client() as c:
        return c.post(
            f"/users/{user_id}/password", json={"user": {"original_password": old, "password": new}}
        )


def test_lockout_after_failures_and_unlock_after_duration(strict: KumoCloud):
    user = strict.new_user(password="right-pw-1")
    assert _login(strict, user["id"], "right-pw-1") == 201
    assert _login(strict, user["id"], "wrong-pw-1") == 401
    assert _login(strict, user["id"], "wrong-pw-1") == 401
    # locked: even the right password is refused, with Keystone's message
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"id": user["id"], "password": "right-pw-1"}},
            }
        }
    }
    with strict.client() as c:
        err = assert_keystone_error(c.post("/auth/tokens", json=body), 401)
    assert err["message"] == f"The account is locked for user: {user['id']}."
    # so is a self-service password change
    assert _change(strict, user["id"], "right-pw-1", "other-pw-2").status_code == 401
    time.sleep(2.5)
    assert _login(strict, user["id"], "right-pw-1") == 201
    # one failure after the lock expired does not lock again (the count started over)
    assert _login(strict, user["id"], "wrong-pw-1") == 401
    assert _login(strict, user["id"], "right-pw-1") == 201


def test_success_resets_the_failure_count(strict: KumoCloud):
    user = strict.new_user(password="right-pw-1")
    for _ in range(3):
        assert _login(strict, user["id"], "wrong-pw-1") == 401
        assert _login(strict, user["id"], "right-pw-1") == 201


def test_ignore_lockout_option_exempts(strict: KumoCloud):
    user = strict.new_user(password="right-pw-1", options={"ignore_lockout_failure_attempts": True})
    for _ in range(3):
        assert _login(strict, user["id"], "wrong-pw-1") == 401
    assert _login(strict, user["id"], "right-pw-1") == 201


def test_password_history(strict: KumoCloud):
    user = strict.new_user(password="first-pw-1")
    r = _change(strict, user["id"], "first-pw-1", "first-pw-1")
    err = assert_keystone_error(r, 400)
    assert err["message"] == (
        "The new password cannot be identical to a previous password. "
        "The total number which includes the new password must be unique is 2."
    )
    assert _change(strict, user["id"], "first-pw-1", "second-pw-2").status_code == 204
    # the current and the one before are both refused
    assert_keystone_error(_change(strict, user["id"], "second-pw-2", "second-pw-2"), 400)
    assert_keystone_error(_change(strict, user["id"], "second-pw-2", "first-pw-1"), 400)
    assert _change(strict, user["id"], "second-pw-2", "third-pw-3").status_code == 204
    # two changes later the first one is allowed again
    assert _change(strict, user["id"], "third-pw-3", "first-pw-1").status_code == 204
    assert _login(strict, user["id"], "first-pw-1") == 201


def test_admin_reset_ignores_history(strict: KumoCloud):
    user = strict.new_user(password="first-pw-1")
    with strict.admin() as c:
        for _ in range(2):
            r = c.patch(f"/users/{user['id']}", json={"user": {"password": "first-pw-1"}})
            assert r.status_code == 200, r.text
    assert _login(strict, user["id"], "first-pw-1") == 201


def test_password_regex(strict: KumoCloud):
    with strict.admin() as c:
        r = c.post("/users", json={"user": {"name": "weak-user", "password": "short"}})
        err = assert_keystone_error(r, 400)
        assert err["message"] == f"The password does not match the requirements: {REGEX_DESC}."
        user = strict.new_user(password="good-pw-1")
        assert_keystone_error(c.patch(f"/users/{user['id']}", json={"user": {"password": "nodigits"}}), 400)
        r = c.get("/domains/default/config/security_compliance")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "config": {
                "security_compliance": {"password_regex": REGEX, "password_regex_description": REGEX_DESC}
            }
        }
        r = c.get("/domains/default/config/security_compliance/password_regex")
        assert r.json() == {"config": {"password_regex": REGEX}}
    assert_keystone_error(_change(strict, user["id"], "good-pw-1", "nodigits"), 400)
    assert _change(strict, user["id"], "good-pw-1", "better-pw-2").status_code == 204


def test_minimum_age_and_first_use(kumo_cloud):
    cloud = kumo_cloud(
        env={
            "KUMO_IDENTITY__MINIMUM_PASSWORD_AGE": "1",
            "KUMO_IDENTITY__CHANGE_PASSWORD_UPON_FIRST_USE": "true",
            "KUMO_IDENTITY__PASSWORD_EXPIRES_DAYS": "90",
        }
    )
    user = cloud.new_user(password="first-pw-1")
    # set by an admin: expired at once, the user must change it first
    assert user["password_expires_at"] is not None
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"id": user["id"], "password": "first-pw-1"}},
            }
        }
    }
    with cloud.client() as c:
        err = assert_keystone_error(c.post("/auth/tokens", json=body), 401)
    assert "password is expired" in err["message"]
    # an admin-set password may be changed at once, despite the minimum age
    assert _change(cloud, user["id"], "first-pw-1", "second-pw-2").status_code == 204
    assert _login(cloud, user["id"], "second-pw-2") == 201
    with cloud.admin() as c:
        shown = c.get(f"/users/{user['id']}").json()["user"]
    assert shown["password_expires_at"] is not None  # password_expires_days
    # a password the user chose must be kept a day
    err = assert_keystone_error(_change(cloud, user["id"], "second-pw-2", "third-pw-3"), 400)
    assert "minimum password age" in err["message"]
    # exempt users
    exempt = cloud.new_user(password="first-pw-1", options={"ignore_change_password_upon_first_use": True})
    assert _login(cloud, exempt["id"], "first-pw-1") == 201
    never = cloud.new_user(password="first-pw-1", options={"ignore_password_expiry": True})
    assert _login(cloud, never["id"], "first-pw-1") == 201


def test_defaults_are_off(cloud: KumoCloud):
    user = cloud.new_user(password="pw")
    for _ in range(4):
        assert _login(cloud, user["id"], "wrong") == 401
    assert _login(cloud, user["id"], "pw") == 201
    assert _change(cloud, user["id"], "pw", "pw").status_code == 204
    with cloud.admin() as c:
        r = c.get("/domains/default/config/security_compliance")
    assert r.json() == {
        "config": {"security_compliance": {"password_regex": None, "password_regex_description": None}}
    }
