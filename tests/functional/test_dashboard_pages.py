"""Dashboard pages over HTTP (httpx): every page answers, shows its content, and reports errors."""

from __future__ import annotations

import re
import sqlite3
import time

import httpx
import pytest

from tests.functional.dashboard_helpers import Web
from tests.support import unique


@pytest.fixture(scope="module")
def admin_web(cloud):  # type: ignore[no-untyped-def]
    web = Web(cloud.url)
    web.login("admin", cloud.admin_password)
    yield web
    web.close()


@pytest.fixture(scope="module")
def member(cloud):  # type: ignore[no-untyped-def]
    project = cloud.new_project()
    user = cloud.new_user()
    cloud.grant("member", user["id"], project_id=project["id"])
    return user, project


PAGES = {
    "/": "Compute quota usage",
    "/compute/instances": "Launch instance",
    "/compute/instances/launch": "Flavor",
    "/compute/keypairs": "Create or import a key pair",
    "/images": "Upload an image",
    "/network/networks": "Create a network",
    "/network/routers": "Create a router",
    "/network/floating-ips": "Allocate a floating IP",
    "/network/security-groups": "default",
    "/network/topology": "cytoscape",
    "/storage/containers": "Create a container",
    "/identity/application-credentials": "Create an application credential",
    "/identity/projects": "Create a project",
    "/identity/users": "Create a user",
    "/identity/groups": "Create a group",
    "/identity/domains": "Create a domain",
    "/identity/roles": "member",
}


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders(admin_web: Web, path: str) -> None:
    r = admin_web.get(path)
    assert r.status_code == 200, r.text[-1500:]
    assert PAGES[path] in r.text
    assert "text/html" in r.headers["content-type"]
    assert r.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_not_logged_in_redirects_to_login(cloud) -> None:  # type: ignore[no-untyped-def]
    r = httpx.get(cloud.url + "/dashboard/compute/instances")
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fcompute%2Finstances"
    assert httpx.get(cloud.url + "/dashboard/static/vendor/htmx-2.0.11.min.js").status_code == 200


def test_session_cookie_is_httponly_and_lax(cloud) -> None:  # type: ignore[no-untyped-def]
    web = Web(cloud.url)
    r = web.login("admin", cloud.admin_password)
    cookie = r.headers["set-cookie"]
    assert "kumo_dashboard_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    # the session id is opaque: the token is nowhere in what the browser gets
    assert len(web.http.cookies["kumo_dashboard_session"]) >= 40
    web.close()


def test_bad_password_is_shown_on_the_password_field(cloud) -> None:  # type: ignore[no-untyped-def]
    r = Web(cloud.url).login("admin", "wrong-password", expect=401)
    assert 'id="e-password"' in r.text and "Invalid domain, user name or password." in r.text


def test_login_without_csrf_token_is_rejected(cloud) -> None:  # type: ignore[no-untyped-def]
    r = httpx.post(cloud.url + "/dashboard/login",
                   data={"domain": "Default", "username": "admin", "password": cloud.admin_password})
    assert r.status_code == 403
    assert "CSRF" in r.text


def test_form_without_csrf_token_is_rejected(cloud, admin_web: Web) -> None:  # type: ignore[no-untyped-def]
    name = unique("csrfnet")
    r = admin_web.post("/network/networks", {"name": name}, csrf=False)
    assert r.status_code == 403 and "CSRF token is missing or invalid" in r.text
    r = admin_web.http.post("/network/networks", data={"name": name, "csrf_token": "forged"})
    assert r.status_code == 403
    with httpx.Client(base_url=cloud.url + "/network/v2.0", headers={"X-Auth-Token": cloud.admin_token}) as c:
        assert c.get("/networks", params={"name": name}).json()["networks"] == []


def test_create_network_and_subnet(cloud, admin_web: Web) -> None:  # type: ignore[no-untyped-def]
    name = unique("net")
    r = admin_web.post("/network/networks", {"name": name, "subnet_name": "s1", "cidr": "192.0.2.0/24",
                                             "enable_dhcp": "1"})
    assert r.status_code == 303, r.text[-1500:]
    page = admin_web.get(r.headers["location"].removeprefix("/dashboard"))
    assert name in page.text and "192.0.2.0/24" in page.text
    graph = admin_web.get("/network/topology.json").json()
    assert any(n["data"]["label"] == name and n["data"]["kind"] == "network" for n in graph["nodes"])


def test_bad_cidr_is_shown_next_to_the_cidr_field(admin_web: Web) -> None:
    name = unique("net")
    r = admin_web.post("/network/networks", {"name": name})
    nid = re.search(r"/network/networks/([0-9a-f-]{36})", r.headers["location"]).group(1)  # type: ignore[union-attr]
    r = admin_web.post(f"/network/networks/{nid}/subnets", {"cidr": "not-a-cidr"})
    assert r.status_code == 400
    assert 'id="e-cidr"' in r.text, r.text[-3000:]
    r = admin_web.post(f"/network/networks/{nid}/delete")
    assert r.status_code == 303


def test_launch_validation_and_instance_lifecycle(cloud, admin_web: Web) -> None:  # type: ignore[no-untyped-def]
    r = admin_web.post("/compute/instances/launch", {"name": "", "image": "", "flavor": ""})
    assert r.status_code == 400
    for field in ("name", "image", "flavor"):
        assert f'id="e-{field}"' in r.text
    image = upload_image(admin_web)
    form = admin_web.get("/compute/instances/launch").text
    assert f'<option value="{image}"' in form
    flavor = re.search(r'<select id="f-flavor"[^>]*>\s*<option value="">[^<]*</option>\s*<option value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    name = unique("vm")
    r = admin_web.post("/compute/instances/launch", {"name": name, "image": image, "flavor": flavor,
                                                     "user_data": "#cloud-config\n", "count": "1"})
    assert r.status_code == 303, re.findall(r'role="alert">([^<]*)<', r.text)
    rows = admin_web.get("/compute/instances/rows").text
    sid = re.search(r'id="server-([0-9a-f-]{36})">\s*<td><a [^>]*>' + re.escape(name), rows).group(1)  # type: ignore[union-attr]
    detail = admin_web.get(f"/compute/instances/{sid}")
    assert detail.status_code == 200 and name in detail.text
    log = admin_web.get(f"/compute/instances/{sid}/console-log")
    assert log.status_code == 200
    r = admin_web.post(f"/compute/instances/{sid}/action", {"action": "explode"})
    assert r.status_code == 400 and "Unknown action" in r.text
    r = admin_web.post(f"/compute/instances/{sid}/action", {"action": "delete"})
    assert r.status_code == 303


def upload_image(web: Web) -> str:
    r = web.http.put("/images/upload", params={"name": unique("img"), "disk_format": "raw"},
                     content=b"\0" * 65536, headers={"X-CSRF-Token": web.csrf})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_keypair_create_shows_private_key_once(admin_web: Web) -> None:
    name = unique("kp")
    r = admin_web.post("/compute/keypairs", {"name": name})
    assert r.status_code == 201 and "PRIVATE KEY" in r.text
    assert "PRIVATE KEY" not in admin_web.get("/compute/keypairs").text
    r = admin_web.post("/compute/keypairs", {"name": unique("kp"), "public_key": "ssh-rsa not-a-key"})
    assert r.status_code == 400 and 'id="e-public_key"' in r.text
    assert admin_web.post(f"/compute/keypairs/{name}/delete").status_code == 303


def test_container_upload_download_folders_public_and_tempurl(cloud, admin_web: Web) -> None:  # type: ignore[no-untyped-def]
    name = unique("cont")
    r = admin_web.post("/storage/containers", {"name": name})
    assert r.status_code == 303
    data = b"hello dashboard\n" * 1000
    r = admin_web.http.put(f"/storage/containers/{name}/upload", params={"prefix": "docs/", "filename": "a.txt"},
                           content=data, headers={"X-CSRF-Token": admin_web.csrf, "Content-Type": "text/plain"})
    assert r.status_code == 201, r.text
    page = admin_web.get(f"/storage/containers/{name}")
    assert "docs/" in page.text and "a.txt" not in page.text  # a pseudo-folder at the top
    page = admin_web.get(f"/storage/containers/{name}", params={"prefix": "docs/"})
    assert "a.txt" in page.text
    got = admin_web.get(f"/storage/containers/{name}/objects/docs/a.txt")
    assert got.status_code == 200 and got.content == data
    assert "attachment" in got.headers["content-disposition"]
    r = admin_web.post(f"/storage/containers/{name}", {"op": "make-public"})
    assert r.status_code == 303
    assert httpx.get(f"{cloud.url}/object-store/v1/AUTH_{_admin_project(cloud)}/{name}/docs/a.txt").content == data
    r = admin_web.post(f"/storage/containers/{name}", {"op": "make-private"})
    anon = httpx.get(f"{cloud.url}/object-store/v1/AUTH_{_admin_project(cloud)}/{name}/docs/a.txt")
    assert anon.status_code in (401, 403)
    r = admin_web.post(f"/storage/containers/{name}", {"op": "tempurl", "object": "docs/a.txt", "prefix": "docs/",
                                                       "expires": "600"})
    assert r.status_code == 200
    url = re.search(r'id="tempurl">([^<]+)<', r.text).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert httpx.get(url).content == data
    r = admin_web.http.put(f"/storage/containers/{name}/upload", params={"filename": "x"}, content=b"x")
    assert r.status_code == 403  # no CSRF header


def _admin_project(cloud) -> str:  # type: ignore[no-untyped-def]
    _token, body = cloud.issue()
    return body["token"]["project"]["id"]


def test_image_upload_streams_through_edit_and_share(cloud, admin_web: Web) -> None:  # type: ignore[no-untyped-def]
    data = bytes(range(256)) * 64
    name = unique("img")
    r = admin_web.http.put("/images/upload", params={"name": name, "disk_format": "raw", "container_format": "bare"},
                           content=data, headers={"X-CSRF-Token": admin_web.csrf})
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    page = admin_web.get(f"/images/{iid}")
    assert page.status_code == 200 and "16.0 KiB" in page.text
    r = admin_web.post(f"/images/{iid}", {"name": name + "-renamed", "visibility": "private", "min_disk": "x"})
    assert r.status_code == 400 and 'id="e-min_disk"' in r.text
    r = admin_web.post(f"/images/{iid}", {"name": name + "-renamed", "visibility": "private", "min_disk": "1",
                                          "min_ram": "0"})
    assert r.status_code == 303
    assert name + "-renamed" in admin_web.get("/images").text
    # share it with another project
    other = cloud.new_project()
    r = admin_web.post(f"/images/{iid}", {"name": name, "visibility": "shared", "min_disk": "1", "min_ram": "0"})
    assert r.status_code == 303
    r = admin_web.post(f"/images/{iid}/members", {"op": "add", "member": ""})
    assert r.status_code == 400 and 'id="e-member"' in r.text
    r = admin_web.post(f"/images/{iid}/members", {"op": "add", "member": other["id"]})
    assert r.status_code == 303
    assert other["id"] in admin_web.get(f"/images/{iid}").text
    assert admin_web.post(f"/images/{iid}/delete").status_code == 303


def test_admin_creates_project_and_user_and_grants_a_role(cloud, admin_web: Web) -> None:  # type: ignore[no-untyped-def]
    pname, uname = unique("proj"), unique("user")
    r = admin_web.post("/identity/projects", {"name": pname, "domain_id": "default"})
    assert r.status_code == 303, r.text[-1500:]
    pid = r.headers["location"].split("?")[0].rsplit("/", 1)[1]
    r = admin_web.post("/identity/users", {"name": uname, "password": "pw-secret-1", "domain_id": "default"})
    assert r.status_code == 303
    uid = r.headers["location"].split("?")[0].rsplit("/", 1)[1]
    r = admin_web.post("/identity/users", {"name": uname, "password": "pw", "domain_id": "default"})
    assert r.status_code == 400 and "error" in r.text  # duplicate name: Keystone's 409 message shown
    member_role = cloud.role_id("member")
    r = admin_web.post(f"/identity/projects/{pid}", {"op": "grant", "actor": f"user:{uid}", "role": member_role})
    assert r.status_code == 303
    page = admin_web.get(f"/identity/projects/{pid}")
    assert uname in page.text and "member" in page.text
    # the new user can log in, lands in the new project, and is not an admin
    web = Web(cloud.url)
    web.login(uname, "pw-secret-1")
    assert pname in web.get("/").text
    web.close()


def test_member_cannot_open_admin_pages(cloud, member) -> None:  # type: ignore[no-untyped-def]
    user, project = member
    web = Web(cloud.url)
    web.login(user["name"], user["password"])
    home = web.get("/").text
    assert project["name"] in home
    assert "/identity/users" not in home  # hidden from the menu
    for path in ("/identity/users", "/identity/projects", "/identity/domains"):
        r = web.get(path)
        assert r.status_code == 403 and "administrators only" in r.text
    r = web.post("/identity/projects", {"name": unique("p")})
    assert r.status_code == 403
    web.close()


def test_project_switch_rescopes(cloud, member) -> None:  # type: ignore[no-untyped-def]
    user, project = member
    other = cloud.new_project()
    cloud.grant("member", user["id"], project_id=other["id"])
    web = Web(cloud.url)
    web.login(user["name"], user["password"])
    menu = web.get("/projects").text
    assert project["name"] in menu and other["name"] in menu
    r = web.post("/switch-project", {"project_id": other["id"]})
    assert r.status_code == 303
    assert f"Overview — {other['name']}" in web.get("/").text
    web.close()


def _session_tokens(cloud) -> set[str]:  # type: ignore[no-untyped-def]
    """The tokens the dashboard holds server-side (read from its own table, for the test only)."""
    with sqlite3.connect(cloud.data_dir / "dashboard.db") as db:
        return {row[0] for row in db.execute("SELECT token FROM dashboard_sessions")}


def test_logout_revokes_the_token(cloud) -> None:  # type: ignore[no-untyped-def]
    before = _session_tokens(cloud)
    web = Web(cloud.url)
    web.login("admin", cloud.admin_password)
    (token,) = _session_tokens(cloud) - before
    with cloud.admin() as c:
        assert c.get("/auth/tokens", headers={"X-Subject-Token": token}).status_code == 200
        r = web.post("/logout")
        assert r.status_code == 303 and r.headers["location"].startswith("/dashboard/login")
        assert c.get("/auth/tokens", headers={"X-Subject-Token": token}).status_code == 404
    assert token not in _session_tokens(cloud)
    assert web.get("/").status_code == 303  # the old cookie no longer opens a session
    web.close()


def test_app_credential_downloads(cloud, admin_web: Web) -> None:  # type: ignore[no-untyped-def]
    name = unique("ac")
    r = admin_web.post("/identity/application-credentials", {"name": name, "expires_at": "yesterday"})
    assert r.status_code == 400 and 'id="e-expires_at"' in r.text
    r = admin_web.post("/identity/application-credentials", {"name": name})
    assert r.status_code == 201
    cred_id = re.search(r'id="appcred-id">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    secret = re.search(r'id="appcred-secret">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    y = admin_web.post("/identity/application-credentials/download",
                       {"id": cred_id, "secret": secret, "name": name, "format": "clouds.yaml"})
    assert y.status_code == 200 and "v3applicationcredential" in y.text and secret in y.text
    rc = admin_web.post("/identity/application-credentials/download",
                        {"id": cred_id, "secret": secret, "name": name, "format": "openrc"})
    assert f"export OS_APPLICATION_CREDENTIAL_ID={cred_id}" in rc.text
    # the credential really works: exchange it for a token
    auth = {"identity": {"methods": ["application_credential"],
                         "application_credential": {"id": cred_id, "secret": secret}}}
    assert httpx.post(cloud.auth_url + "/auth/tokens", json={"auth": auth}).status_code == 201


def test_volumes_page(admin_web: Web) -> None:
    if 'href="/dashboard/volumes"' not in admin_web.get("/").text:
        pytest.skip("no block-storage service in this cloud's catalog")
    name = unique("vol")
    r = admin_web.post("/volumes", {"op": "create", "name": name, "size": "0"})
    assert r.status_code == 400 and 'id="e-size"' in r.text
    r = admin_web.post("/volumes", {"op": "create", "name": name, "size": "1"})
    assert r.status_code == 303, r.text[-1500:]
    page = admin_web.get("/volumes")
    assert page.status_code == 200 and name in page.text
    vid = re.search(r'id="volume-([0-9a-f-]{36})"><td>' + re.escape(name), page.text).group(1)  # type: ignore[union-attr]
    r = admin_web.post("/volumes", {"op": "attach", "id": vid, "server_id": ""})
    assert r.status_code == 400 and f'id="e-attach-{vid}"' in r.text
    for _ in range(100):
        if re.search(rf'id="volume-{vid}">.*?data-status="available"', admin_web.get("/volumes/rows").text, re.S):
            break
        time.sleep(0.2)
    r = admin_web.post("/volumes", {"op": "snapshot", "id": vid, "snapshot_name": "s-" + name})
    assert r.status_code == 303
    assert "s-" + name in admin_web.get("/volumes").text
    r = admin_web.post("/volumes", {"op": "explode", "id": vid})
    assert r.status_code == 400 and "Unknown operation" in r.text
