"""The first-user journey with the real openstack CLI, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support import KumoCloud, unique

pytestmark = pytest.mark.cli


def test_user_journey(any_cloud: KumoCloud, ensure_cli):
    c = any_cloud

    # 1. a token for the admin
    tok = c.cli_json("token", "issue")
    assert tok["id"] and tok["user_id"] and tok["project_id"]

    # 2. the catalog lists identity on all three interfaces
    catalog = c.cli_json("catalog", "list")
    (identity,) = [s for s in catalog if s["Type"] == "identity"]
    interfaces = {e["interface"]: e["url"] for e in identity["Endpoints"]}
    assert set(interfaces) == {"public", "internal", "admin"}
    assert all(url.rstrip("/") == c.auth_url for url in interfaces.values())

    # 3. a project, a user with a password, and the member role for that user there
    pname, uname, password = unique("journey-proj"), unique("journey-user"), "Journey-pw-1"
    project = c.cli_json("project", "create", pname, "--description", "journey")
    assert project["name"] == pname and project["domain_id"] == "default" and project["enabled"] is True
    user = c.cli_json("user", "create", uname, "--password", password, "--project", pname)
    assert user["name"] == uname and user["domain_id"] == "default"
    res = c.cli("role", "add", "--project", pname, "--user", uname, "member")
    assert res.returncode == 0, res.stderr

    # 4. the assignment shows by names
    rows = c.cli_json("role", "assignment", "list", "--names", "--project", pname)
    assert {"Role": "member", "User": f"{uname}@Default", "Project": f"{pname}@Default"}.items() <= rows[
        0
    ].items(), rows
    assert [(r["Role"], r["User"]) for r in rows] == [("member", f"{uname}@Default")]

    # 5. the new user makes an application credential for their project...
    user_env = {
        "OS_AUTH_URL": c.auth_url,
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": uname,
        "OS_PASSWORD": password,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_NAME": pname,
        "OS_PROJECT_DOMAIN_NAME": "Default",
    }
    cred = c.cli_json("application", "credential", "create", unique("journey-ac"), cloud=None, env=user_env)
    assert cred["ID"] and cred["Secret"]  # python-openstackclient 10 names the columns so
    assert cred["Project ID"] == project["id"]
    assert {r["name"] for r in cred["Roles"]} == {"member", "reader"}  # the token's roles, implied ones too

    # 6. ... and authenticates with it
    ac_env = {
        "OS_AUTH_TYPE": "v3applicationcredential",
        "OS_AUTH_URL": c.auth_url,
        "OS_IDENTITY_API_VERSION": "3",
        "OS_APPLICATION_CREDENTIAL_ID": cred["ID"],
        "OS_APPLICATION_CREDENTIAL_SECRET": cred["Secret"],
    }
    ac_tok = c.cli_json("token", "issue", cloud=None, env=ac_env)
    assert ac_tok["user_id"] == user["id"]
    assert ac_tok["project_id"] == project["id"]

    # the token is a real one: identity validates it, with the member role
    with c.admin() as http:
        r = http.get("/auth/tokens", headers={"X-Subject-Token": ac_tok["id"]})
    assert r.status_code == 200, r.text
    body = r.json()["token"]
    assert body["methods"] == ["application_credential"]
    assert body["application_credential"]["id"] == cred["ID"]
    assert "member" in {x["name"] for x in body["roles"]}


def test_sdk_basics(any_cloud: KumoCloud):
    """openstacksdk against kumo: list, create, find, delete."""
    conn = any_cloud.sdk()
    try:
        assert conn.identity.find_project("admin")["name"] == "admin"
        name = unique("sdk-proj")
        project = conn.identity.create_project(name=name, domain_id="default", description="sdk")
        assert project.id and project.name == name
        assert name in {p.name for p in conn.identity.projects()}
        assert conn.identity.get_project(project.id).description == "sdk"
        conn.identity.update_project(project, description="changed")
        assert conn.identity.get_project(project.id).description == "changed"
        conn.identity.delete_project(project)
        assert conn.identity.find_project(project.id) is None
        assert {"admin", "member", "reader"} <= {r.name for r in conn.identity.roles()}
    finally:
        conn.close()
