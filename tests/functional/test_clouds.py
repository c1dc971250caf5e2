"""The client configuration kumo writes (clouds.yaml, openrc) and application credentials."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support import OPENSTACK, KumoCloud, assert_keystone_error, clean_env, unique


def _validate(cloud: KumoCloud, token: str) -> httpx.Response:
    with cloud.admin() as c:
        return c.get("/auth/tokens", headers={"X-Subject-Token": token})


@pytest.mark.cli
@pytest.mark.parametrize(
    ("name", "user", "scope"),
    [
        ("kumo", "demo", ("project", "demo")),
        ("kumo-admin", "admin", ("project", "admin")),
        ("kumo-system-admin", "admin", ("system", None)),
    ],
)
def test_clouds_yaml_clouds(cloud: KumoCloud, ensure_cli, name, user, scope):
    tok = cloud.cli_json("token", "issue", cloud=name)
    r = _validate(cloud, tok["id"])
    assert r.status_code == 200, r.text
    body = r.json()["token"]
    assert body["user"]["name"] == user
    kind, value = scope
    if kind == "project":
        assert body["project"]["name"] == value
        assert tok["project_id"] == body["project"]["id"]
        assert "system" not in body and "domain" not in body
    else:
        assert body["system"] == {"all": True}
        assert "project" not in body and "domain" not in body
    roles = {r["name"] for r in body["roles"]}
    assert ("admin" in roles) == (user == "admin")
    assert "member" in roles


@pytest.mark.cli
@pytest.mark.parametrize(
    ("rc", "user", "project"), [("openrc", "admin", "admin"), ("openrc-demo", "demo", "demo")]
)
def test_openrc(cloud: KumoCloud, ensure_cli, rc, user, project):
    script = f'source "{cloud.data_dir / rc}" && exec "{OPENSTACK}" token issue -f json'
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    tok = json.loads(res.stdout)
    body = _validate(cloud, tok["id"]).json()["token"]
    assert body["user"]["name"] == user and body["project"]["name"] == project


def test_client_files_are_private(cloud: KumoCloud):
    for name in ("clouds.yaml", "openrc", "openrc-demo", "admin-password", "demo-password"):
        mode = (cloud.data_dir / name).stat().st_mode & 0o777
        assert mode == 0o600, f"{name} is {oct(mode)}"


def _ac_auth(cloud: KumoCloud, cred_id: str, secret: str) -> httpx.Response:
    body = {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": cred_id, "secret": secret},
            }
        }
    }
    return httpx.post(f"{cloud.auth_url}/auth/tokens", json=body, timeout=30)


@pytest.mark.cli
def test_application_credential_expiration_option(cloud: KumoCloud, ensure_cli):
    expires = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    stamp = expires.strftime("%Y-%m-%dT%H:%M:%S")
    cred = cloud.cli_json("application", "credential", "create", unique("ac-exp"), "--expiration", stamp)
    assert cred["Expires At"].startswith(stamp)
    assert _ac_auth(cloud, cred["ID"], cred["Secret"]).status_code == 201


def test_application_credential_expires(cloud: KumoCloud):
    """Works until its expiry, is refused after; its tokens never outlive it."""
    me = cloud.issue()[1]["token"]["user"]["id"]
    expires = datetime.now(UTC) + timedelta(seconds=3)
    body = {"name": unique("expiring"), "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    cred = cloud.create(f"users/{me}/application_credentials", "application_credential", body)
    r = _ac_auth(cloud, cred["id"], cred["secret"])
    assert r.status_code == 201, r.text
    token = r.headers["X-Subject-Token"]
    token_expiry = datetime.fromisoformat(r.json()["token"]["expires_at"].replace("Z", "+00:00"))
    assert token_expiry <= expires + timedelta(seconds=1)
    assert _validate(cloud, token).status_code == 200
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.5)
    assert_keystone_error(_ac_auth(cloud, cred["id"], cred["secret"]), 401)
    assert_keystone_error(_validate(cloud, token), 404)


def test_application_credential_wrong_secret_and_scope(cloud: KumoCloud):
    with cloud.admin() as c:
        me = c.get("/auth/tokens", headers={"X-Subject-Token": cloud.admin_token}).json()["token"]["user"][
            "id"
        ]
        r = c.post(
            f"/users/{me}/application_credentials", json={"application_credential": {"name": unique("ac")}}
        )
    assert r.status_code == 201, r.text
    cred = r.json()["application_credential"]
    assert cred["secret"] and cred["project_id"] and cred["unrestricted"] is False
    assert_keystone_error(_ac_auth(cloud, cred["id"], "wrong-secret"), 401)
    ok = _ac_auth(cloud, cred["id"], cred["secret"])
    assert ok.status_code == 201, ok.text
    # a restricted application credential cannot make another one
    with cloud.client(ok.headers["X-Subject-Token"]) as c:
        r = c.post(
            f"/users/{me}/application_credentials", json={"application_credential": {"name": unique("ac")}}
        )
    assert_keystone_error(r, 403)
    # deleting the credential invalidates its tokens
    with cloud.admin() as c:
        assert c.delete(f"/users/{me}/application_credentials/{cred['id']}").status_code == 204
    assert_keystone_error(_validate(cloud, ok.headers["X-Subject-Token"]), 404)
    assert_keystone_error(_ac_auth(cloud, cred["id"], cred["secret"]), 401)
