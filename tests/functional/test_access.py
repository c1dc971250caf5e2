"""Who may do what: readers, domain admins, revoked and invalidated tokens."""

from __future__ import annotations

import pytest

from tests.support import KumoCloud, assert_keystone_error, unique


@pytest.fixture(scope="module")
def reader(cloud: KumoCloud) -> dict:
    """A user with only the reader role on a project of their own."""
    project = cloud.new_project()
    user = cloud.new_user()
    cloud.grant("reader", user["id"], project_id=project["id"])
    return {**user, "project_id": project["id"]}


@pytest.fixture(scope="module")
def domain_setup(cloud: KumoCloud) -> dict:
    """Domain D with an admin (admin role on D) and a user; and a user in another domain."""
    d = cloud.new_domain()
    d_admin = cloud.new_user(domain_id=d["id"])
    cloud.grant("admin", d_admin["id"], domain_id=d["id"])
    d_user = cloud.new_user(domain_id=d["id"])
    other = cloud.new_user(domain_id="default")
    token, body = cloud.issue(user_id=d_admin["id"], password=d_admin["password"], domain_scope=d["id"])
    assert body["token"]["domain"]["id"] == d["id"]
    return {"domain": d, "admin": d_admin, "user": d_user, "other": other, "token": token}


def test_reader_token_has_only_reader(cloud: KumoCloud, reader):
    _, body = cloud.issue(user_id=reader["id"], password=reader["password"], project_id=reader["project_id"])
    assert {r["name"] for r in body["token"]["roles"]} == {"reader"}


def test_reader_cannot_create_project_sdk(cloud: KumoCloud, reader):
    import openstack.exceptions

    conn = cloud.sdk_as(user_id=reader["id"], password=reader["password"], project_id=reader["project_id"])
    try:
        with pytest.raises(openstack.exceptions.ForbiddenException) as exc:
            conn.identity.create_project(name=unique("nope"), domain_id="default")
        assert exc.value.status_code == 403
        # reading their own project is fine
        assert conn.identity.get_project(reader["project_id"]).id == reader["project_id"]
    finally:
        conn.close()


@pytest.mark.cli
def test_reader_cannot_create_project_cli(cloud: KumoCloud, reader, ensure_cli):
    res = cloud.cli_as(reader, "project", "create", unique("nope"), project_id=reader["project_id"])
    assert res.returncode != 0
    assert "403" in res.stderr or "not authorized" in res.stderr.lower(), res.stderr


def test_reader_cannot_create_user_or_grant(cloud: KumoCloud, reader):
    token, _ = cloud.issue(user_id=reader["id"], password=reader["password"], project_id=reader["project_id"])
    with cloud.client(token) as c:
        r = c.post("/users", json={"user": {"name": unique("x"), "domain_id": "default"}})
        assert_keystone_error(r, 403)
        member = cloud.role_id("member")
        r = c.put(f"/projects/{reader['project_id']}/users/{reader['id']}/roles/{member}")
        assert_keystone_error(r, 403)
        r = c.post("/domains", json={"domain": {"name": unique("x")}})
        assert_keystone_error(r, 403)


@pytest.mark.cli
def test_domain_admin_lists_only_its_users(cloud: KumoCloud, domain_setup, ensure_cli):
    d = domain_setup
    users = cloud.cli_json(
        "user",
        "list",
        cloud=None,
        env={"OS_AUTH_URL": cloud.auth_url, **cloud.user_env(d["admin"], domain_id=d["domain"]["id"])},
    )
    ids = {u["ID"] for u in users}
    assert ids == {d["admin"]["id"], d["user"]["id"]}, users


def test_domain_admin_http(cloud: KumoCloud, domain_setup):
    d = domain_setup
    dom = d["domain"]["id"]
    with cloud.client(d["token"]) as c:
        r = c.get("/users")
        assert r.status_code == 200, r.text
        assert {u["domain_id"] for u in r.json()["users"]} == {dom}
        assert c.get(f"/users/{d['user']['id']}").status_code == 200
        # a user of another domain is not theirs to see
        assert_keystone_error(c.get(f"/users/{d['other']['id']}"), 403)
        # asking for another domain's users shows none of them (Keystone: 403 or filtered)
        r = c.get("/users", params={"domain_id": "default"})
        if r.status_code == 200:
            assert {u["domain_id"] for u in r.json()["users"]} <= {dom}, r.text
        else:
            assert_keystone_error(r, 403)
        # they manage their own domain...
        r = c.post("/projects", json={"project": {"name": unique("dp"), "domain_id": dom}})
        assert r.status_code == 201, r.text
        r = c.post("/users", json={"user": {"name": unique("du"), "domain_id": dom}})
        assert r.status_code == 201, r.text
        # ...and nothing beyond it
        r = c.post("/projects", json={"project": {"name": unique("dp"), "domain_id": "default"}})
        assert_keystone_error(r, 403)
        r = c.post("/users", json={"user": {"name": unique("du"), "domain_id": "default"}})
        assert_keystone_error(r, 403)
        assert_keystone_error(c.patch(f"/users/{d['other']['id']}", json={"user": {"description": "x"}}), 403)
        assert_keystone_error(c.post("/domains", json={"domain": {"name": unique("dd")}}), 403)


def test_revoked_token_rejected(cloud: KumoCloud):
    victim, _ = cloud.issue()
    with cloud.client(victim) as c:
        assert c.get("/projects").status_code == 200
    with cloud.admin() as c:
        r = c.delete("/auth/tokens", headers={"X-Subject-Token": victim})
        assert r.status_code == 204, r.text
        assert_keystone_error(c.get("/auth/tokens", headers={"X-Subject-Token": victim}), 404)
        assert c.head("/auth/tokens", headers={"X-Subject-Token": victim}).status_code == 404
        # revoking it again: it is already invalid
        assert_keystone_error(c.delete("/auth/tokens", headers={"X-Subject-Token": victim}), 404)
    with cloud.client(victim) as c:
        assert_keystone_error(c.get("/projects"), 401)
        assert_keystone_error(c.get("/auth/tokens", headers={"X-Subject-Token": cloud.admin_token}), 401)
    # the admin's own token is unaffected
    with cloud.admin() as c:
        assert c.get("/projects").status_code == 200


def test_user_revokes_own_token(cloud: KumoCloud):
    project = cloud.new_project()
    user = cloud.new_user()
    cloud.grant("member", user["id"], project_id=project["id"])
    token, _ = cloud.issue(user_id=user["id"], password=user["password"], project_id=project["id"])
    with cloud.client(token) as c:
        assert c.get("/auth/tokens", headers={"X-Subject-Token": token}).status_code == 200
        assert c.delete("/auth/tokens", headers={"X-Subject-Token": token}).status_code == 204
        assert_keystone_error(c.get(f"/users/{user['id']}"), 401)


def test_member_cannot_revoke_others_token(cloud: KumoCloud):
    project = cloud.new_project()
    user = cloud.new_user()
    cloud.grant("member", user["id"], project_id=project["id"])
    token, _ = cloud.issue(user_id=user["id"], password=user["password"], project_id=project["id"])
    other, _ = cloud.issue()
    with cloud.client(token) as c:
        assert_keystone_error(c.delete("/auth/tokens", headers={"X-Subject-Token": other}), 403)
    with cloud.client(other) as c:
        assert c.get("/projects").status_code == 200


def _member(cloud: KumoCloud) -> tuple[dict, str, str]:
    project = cloud.new_project()
    user = cloud.new_user(password="Old-pass-1")
    cloud.grant("member", user["id"], project_id=project["id"])
    token, _ = cloud.issue(user_id=user["id"], password="Old-pass-1", project_id=project["id"])
    return user, project["id"], token


def _usable(cloud: KumoCloud, token: str) -> int:
    with cloud.client(token) as c:
        return c.get("/auth/tokens", headers={"X-Subject-Token": token}).status_code


def test_changing_own_password_invalidates_tokens(cloud: KumoCloud):
    user, project_id, token = _member(cloud)
    assert _usable(cloud, token) == 200
    with cloud.client(token) as c:
        r = c.post(
            f"/users/{user['id']}/password",
            json={"user": {"password": "New-pass-2", "original_password": "Old-pass-1"}},
        )
    assert r.status_code == 204, r.text
    assert _usable(cloud, token) == 401
    cloud.issue(user_id=user["id"], password="Old-pass-1", project_id=project_id, expect=401)
    new, _ = cloud.issue(user_id=user["id"], password="New-pass-2", project_id=project_id)
    assert _usable(cloud, new) == 200


def test_wrong_original_password_rejected(cloud: KumoCloud):
    user, _, token = _member(cloud)
    with cloud.client(token) as c:
        r = c.post(
            f"/users/{user['id']}/password",
            json={"user": {"password": "New-pass-2", "original_password": "wrong"}},
        )
    assert_keystone_error(r, 401)
    assert _usable(cloud, token) == 200


def test_admin_setting_password_invalidates_tokens(cloud: KumoCloud):
    user, _, token = _member(cloud)
    with cloud.admin() as c:
        r = c.patch(f"/users/{user['id']}", json={"user": {"password": "Reset-pass-3"}})
    assert r.status_code == 200, r.text
    assert _usable(cloud, token) == 401


def test_disabling_user_invalidates_tokens(cloud: KumoCloud):
    user, project_id, token = _member(cloud)
    with cloud.admin() as c:
        r = c.patch(f"/users/{user['id']}", json={"user": {"enabled": False}})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["enabled"] is False
    assert _usable(cloud, token) == 401
    cloud.issue(user_id=user["id"], password="Old-pass-1", project_id=project_id, expect=401)
    with cloud.admin() as c:
        assert c.patch(f"/users/{user['id']}", json={"user": {"enabled": True}}).status_code == 200
    assert _usable(cloud, token) == 401  # re-enabling does not resurrect old tokens
    cloud.issue(user_id=user["id"], password="Old-pass-1", project_id=project_id)


def test_removing_role_invalidates_project_token(cloud: KumoCloud):
    user, project_id, token = _member(cloud)
    member = cloud.role_id("member")
    with cloud.admin() as c:
        r = c.delete(f"/projects/{project_id}/users/{user['id']}/roles/{member}")
    assert r.status_code == 204, r.text
    assert _usable(cloud, token) == 401


def test_deleting_user_invalidates_tokens(cloud: KumoCloud):
    user, _, token = _member(cloud)
    with cloud.admin() as c:
        assert c.delete(f"/users/{user['id']}").status_code == 204
    assert _usable(cloud, token) == 401
