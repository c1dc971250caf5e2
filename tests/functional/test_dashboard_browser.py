"""The dashboard in a real browser: Playwright driving Debian's Chromium (never a downloaded one).

Screenshots of the main pages go to ``$KUMO_DASHBOARD_SCREENSHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.functional.dashboard_helpers import CHROMIUM_ARGS, chromium_or_skip
from tests.support import unique

TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    path = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(path), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("KUMO_DASHBOARD_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("dashboard-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _page(browser, cloud, username: str, password: str, width: int = 1280, height: int = 800):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(cloud.url + "/dashboard/")
    page.fill("#f-username", username)
    page.fill("#f-password", password)
    page.click("form[action$='/login'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/(\?.*)?$"))
    page.js_errors = errors  # type: ignore[attr-defined]
    return page


@pytest.fixture
def admin_page(browser, cloud):  # type: ignore[no-untyped-def]
    page = _page(browser, cloud, "admin", cloud.admin_password)
    yield page
    assert page.js_errors == []
    page.context.close()


def test_login_upload_image_launch_instance_active(admin_page, cloud, shots: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = admin_page
    page.screenshot(path=shots / "overview.png")
    assert page.locator("figure.gauge").count() >= 3
    # upload an image through the dashboard, with the progress bar
    img = tmp_path / "tiny.raw"
    img.write_bytes(b"\0" * (1 << 20))
    image_name = unique("img")
    page.goto(cloud.url + "/dashboard/images")
    page.fill("#f-name", image_name)
    page.set_input_files("#f-file", str(img))
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/images\?notice=.*"))
    assert page.locator("progress").count() == 1
    row = page.locator("tr", has_text=image_name)
    assert row.locator(".status").inner_text() == "active"
    # launch an instance from it and watch the list refresh itself to ACTIVE
    name = unique("vm")
    page.goto(cloud.url + "/dashboard/compute/instances/launch")
    page.fill("#f-name", name)
    page.select_option("#f-image", label=image_name)
    page.select_option("#f-flavor", index=1)
    page.screenshot(path=shots / "launch.png")
    page.click("form[action$='/launch'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/compute/instances\?notice=.*"))
    status = page.locator("tr", has_text=name).locator(".status")
    status.filter(has_text="ACTIVE").wait_for()  # no reload: htmx polling swapped the rows
    page.screenshot(path=shots / "instances.png")
    page.locator("tr", has_text=name).locator("a").first.click()
    page.locator("pre.console, p.muted").first.wait_for()
    page.screenshot(path=shots / "instance.png")


def test_create_network_shows_in_topology(admin_page, cloud, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page = admin_page
    name = unique("net")
    page.goto(cloud.url + "/dashboard/network/networks")
    page.fill("#f-name", name)
    page.fill("#f-cidr", "198.51.100.0/24")
    page.click("form[action$='/network/networks'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/network/networks/[0-9a-f-]{36}\?notice=.*"))
    assert page.locator("td", has_text="198.51.100.0/24").count() == 1
    page.goto(cloud.url + "/dashboard/network/topology")
    page.wait_for_selector("#topology[data-nodes]")
    assert page.locator("#topology-list li", has_text=f"network {name}").count() == 1
    assert page.locator("#topology canvas").count() >= 1
    page.screenshot(path=shots / "topology.png")
    # a bad CIDR is reported next to the field
    page.goto(cloud.url + "/dashboard/network/networks")
    page.fill("#f-name", unique("net"))
    page.fill("#f-cidr", "300.1.2.0/24")
    page.click("form[action$='/network/networks'] button[type=submit]")
    assert page.locator("#e-cidr").is_visible()


def test_container_upload_and_download(admin_page, cloud, shots: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = admin_page
    name = unique("cont")
    page.goto(cloud.url + "/dashboard/storage/containers")
    page.fill("#f-name", name)
    page.click("form[action$='/storage/containers'] button[type=submit]")
    page.wait_for_url(re.compile(rf".*/storage/containers/{name}\?notice=.*"))
    src = tmp_path / "hello.bin"
    src.write_bytes(os.urandom(300_000))
    page.set_input_files("#f-file", str(src))
    page.click("form[data-upload] button[type=submit]")
    page.wait_for_url(re.compile(r".*notice=Uploaded.*"))
    link = page.locator("a", has_text="hello.bin")
    with page.expect_download() as info:
        link.click()
    out = tmp_path / "back.bin"
    info.value.save_as(out)
    assert out.read_bytes() == src.read_bytes()
    page.screenshot(path=shots / "container.png")


def test_admin_creates_project_and_user(admin_page, cloud, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page = admin_page
    pname, uname = unique("proj"), unique("user")
    page.goto(cloud.url + "/dashboard/identity/projects")
    page.fill("#f-name", pname)
    page.click("form[action$='/identity/projects'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/identity/projects/[0-9a-f]+\?notice=.*"))
    page.goto(cloud.url + "/dashboard/identity/users")
    page.fill("#f-name", uname)
    page.fill("#f-password", "pw-secret-2")
    page.select_option("#f-default_project_id", label=pname)
    page.click("form[action$='/identity/users'] button[type=submit]")
    page.wait_for_url(re.compile(r".*/identity/users/[0-9a-f]+\?notice=.*"))
    page.goto(cloud.url + "/dashboard/identity/projects")
    page.locator("a", has_text=pname).click()
    page.select_option("#f-actor", label=f"user {uname}")
    page.select_option("#f-role", label="member")
    page.click("form:has(input[value=grant]) button[type=submit]")
    page.wait_for_url(re.compile(r".*notice=Saved.*"))
    assert page.locator("td", has_text=f"user {uname}").count() == 1
    page.screenshot(path=shots / "project.png")


def test_member_gets_403_on_admin_pages_and_phone_layout(browser, cloud, shots: Path) -> None:  # type: ignore[no-untyped-def]
    project = cloud.new_project()
    user = cloud.new_user()
    cloud.grant("member", user["id"], project_id=project["id"])
    page = _page(browser, cloud, user["name"], user["password"], width=390, height=844)
    try:
        assert page.locator("nav.side a", has_text="Users").count() == 0
        response = page.goto(cloud.url + "/dashboard/identity/users")
        assert response.status == 403
        assert "administrators only" in page.locator("main").inner_text()
        page.goto(cloud.url + "/dashboard/compute/instances")
        # phone width: no horizontal scrolling of the page itself
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.screenshot(path=shots / "phone-instances.png")
    finally:
        page.context.close()


def test_csrf_missing_is_rejected_and_logout_revokes(browser, cloud) -> None:  # type: ignore[no-untyped-def]
    with sqlite3.connect(cloud.data_dir / "dashboard.db") as db:
        before = {r[0] for r in db.execute("SELECT token FROM dashboard_sessions")}
    page = _page(browser, cloud, "admin", cloud.admin_password)
    try:
        with sqlite3.connect(cloud.data_dir / "dashboard.db") as db:
            (token,) = {r[0] for r in db.execute("SELECT token FROM dashboard_sessions")} - before
        name = unique("net")
        r = page.request.post(cloud.url + "/dashboard/network/networks", form={"name": name})
        assert r.status == 403 and "CSRF" in r.text()
        page.goto(cloud.url + "/dashboard/network/networks")
        assert page.locator("td", has_text=name).count() == 0
        page.click("header form[action$='/logout'] button")
        page.wait_for_url(re.compile(r".*/dashboard/login\?notice=Logged.*"))
        r = httpx.get(cloud.auth_url + "/auth/tokens", headers={"X-Auth-Token": cloud.admin_token, "X-Subject-Token": token})
        assert r.status_code == 404
    finally:
        page.context.close()


def _server(cloud) -> str:  # type: ignore[no-untyped-def]
    """An ACTIVE instance (fake driver) made through the API, for the attach test."""
    h = {"X-Auth-Token": cloud.admin_token, "OpenStack-API-Version": "compute 2.79"}
    with httpx.Client(base_url=cloud.url, headers=h, timeout=30) as c:
        img = c.post("/image/v2/images", json={"name": unique("img"), "disk_format": "raw",
                                               "container_format": "bare"}).json()
        c.put(f"/image/v2/images/{img['id']}/file", content=b"\0" * 4096,
              headers={"Content-Type": "application/octet-stream"}).raise_for_status()
        name = unique("vm")
        r = c.post("/compute/v2.1/servers", json={"server": {"name": name, "imageRef": img["id"], "flavorRef": "42",
                                                             "networks": "none"}})
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
        for _ in range(300):
            status = c.get(f"/compute/v2.1/servers/{sid}").json()["server"]["status"]
            if status in ("ACTIVE", "ERROR"):
                break
            time.sleep(0.1)
        assert status == "ACTIVE"
    return name


def test_volume_create_and_attach(admin_page, cloud, shots: Path) -> None:  # type: ignore[no-untyped-def]
    page = admin_page
    if page.locator("nav.side a", has_text="Volumes").count() == 0:
        pytest.skip("no block-storage service in this cloud's catalog")
    server_name = _server(cloud)
    vname = unique("vol")
    page.goto(cloud.url + "/dashboard/volumes")
    page.fill("#f-name", vname)
    page.fill("#f-size", "1")
    page.click("form:has(input[value=create]) button[type=submit]")
    page.wait_for_url(re.compile(r".*/volumes\?notice=.*"))
    row = page.locator("tr", has_text=vname)
    row.locator(".status", has_text="available").wait_for()
    row.locator("select").select_option(label=server_name)
    row.locator("button", has_text="Attach").click()
    page.wait_for_url(re.compile(r".*/volumes\?notice=.*"))
    page.locator("tr", has_text=vname).locator(".status", has_text="in-use").wait_for()
    page.screenshot(path=shots / "volumes.png")
