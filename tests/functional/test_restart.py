"""State survives ``kumo up`` restarts; Fernet key rotation keeps issued tokens valid."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import KumoCloud, assert_keystone_error, clean_env


def _keys(cloud: KumoCloud) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (cloud.data_dir / "fernet-keys").iterdir() if p.name.isdigit()}


def _self_check(cloud: KumoCloud, token: str) -> int:
    with cloud.client(token) as c:
        return c.get("/auth/tokens", headers={"X-Subject-Token": token}).status_code


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_everything_survives_restart(kumo_cloud, backend):
    c: KumoCloud = kumo_cloud(postgres=backend == "postgres")
    keys, admin_pw, demo_pw = _keys(c), c.admin_password, c.demo_password
    assert sorted(keys) == ["0", "1"]
    project = c.new_project(description="persisted")
    user = c.new_user(email="u@example.org")
    c.grant("member", user["id"], project_id=project["id"])
    token, _ = c.issue(user_id=user["id"], password=user["password"], project_id=project["id"])
    admin_token = c.admin_token

    c.stop()
    assert not c.running
    c.start()

    assert _keys(c) == keys, "the Fernet keys changed across a restart"
    assert c.admin_password == admin_pw and c.demo_password == demo_pw
    # tokens issued before the restart are still good, as X-Auth-Token and as subject
    assert _self_check(c, token) == 200
    with c.client(admin_token) as http:
        assert http.get("/auth/tokens", headers={"X-Subject-Token": token}).status_code == 200
        r = http.get(f"/projects/{project['id']}")
        assert r.status_code == 200 and r.json()["project"]["description"] == "persisted"
        r = http.get(f"/users/{user['id']}")
        assert r.status_code == 200 and r.json()["user"]["email"] == "u@example.org"
        r = http.get(
            "/role_assignments",
            params={"user.id": user["id"], "scope.project.id": project["id"], "include_names": "true"},
        )
        assert r.status_code == 200, r.text
        assert [a["role"]["name"] for a in r.json()["role_assignments"]] == ["member"]
    # passwords (the user's, the bootstrap admin's) still work; bootstrap did not reset anything
    c.issue(user_id=user["id"], password=user["password"], project_id=project["id"])
    c.issue()  # admin with the unchanged password from the data dir
    c.issue("demo")


def test_revocation_survives_restart(kumo_cloud):
    c: KumoCloud = kumo_cloud()
    victim, _ = c.issue()
    with c.admin() as http:
        assert http.delete("/auth/tokens", headers={"X-Subject-Token": victim}).status_code == 204
    c.restart()
    with c.admin() as http:
        assert_keystone_error(http.get("/auth/tokens", headers={"X-Subject-Token": victim}), 404)


def _rotate(cloud: KumoCloud) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "kumo", "identity", "rotate-keys", "--data-dir", str(cloud.data_dir)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    return res


def test_rotate_keys_keeps_tokens_valid(kumo_cloud):
    c: KumoCloud = kumo_cloud()
    before, _ = c.issue()
    staged = _keys(c)["0"]

    _rotate(c)
    keys = _keys(c)
    assert sorted(keys, key=int) == ["0", "1", "2"]
    assert keys["2"] == staged  # the staged key was promoted

    # the running server still accepts the old token and issues new ones that validate
    assert _self_check(c, before) == 200
    after, _ = c.issue()
    assert _self_check(c, after) == 200
    # and so does a restarted one
    c.restart()
    assert _self_check(c, before) == 200
    assert _self_check(c, after) == 200
    fresh, _ = c.issue()
    assert _self_check(c, fresh) == 200

    # a second rotation (max_active_keys = 3) drops key 1: tokens made with it are no longer valid
    _rotate(c)
    assert sorted(_keys(c), key=int) == ["0", "2", "3"]
    c.restart()
    assert _self_check(c, before) == 401
    assert _self_check(c, fresh) == 200
