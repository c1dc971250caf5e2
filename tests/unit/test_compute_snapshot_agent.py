"""kumo.agents.compute.snapshot: the agent's side of createImage against a scripted image API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kumo.agents.compute import snapshot
from kumo.agents.compute.errors import PermanentError
from kumo.agents.compute.fake import FakeDriver

URL = "http://image.test/v2/images/img-1"
PENDING = {"op": "snapshot", "seq": 3, "image_id": "img-1", "image_url": URL}


class Creds:
    def __init__(self) -> None:
        self.fresh = 0

    def token(self, fresh: bool = False) -> str:
        self.fresh += fresh
        return "tok-fresh" if fresh else "tok"


class ImageAPI:
    """Answers GET/PUT/DELETE on one image; records what it got."""

    def __init__(self, status: str | None = "queued", put_status: int = 204, expire_first: bool = False) -> None:
        self.status, self.put_status, self.expire_first = status, put_status, expire_first
        self.uploaded = b""
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, method: str, url: str, *, headers, content=None, timeout=None) -> httpx.Response:  # type: ignore[no-untyped-def]
        self.calls.append((method, url, headers["X-Auth-Token"]))
        if self.expire_first and headers["X-Auth-Token"] == "tok":
            return httpx.Response(401)
        if method == "GET":
            return httpx.Response(404) if self.status is None else httpx.Response(200, json={"status": self.status})
        if method == "DELETE":
            self.status = None
            return httpx.Response(204)
        assert method == "PUT" and url == URL + "/file"
        self.uploaded = b"".join(content)
        if self.put_status < 300:
            self.status = "active"
        return httpx.Response(self.put_status, text="refused")


@pytest.fixture
def driver(tmp_path: Path) -> FakeDriver:
    return FakeDriver(tmp_path / "compute")


def run(monkeypatch: pytest.MonkeyPatch, api: ImageAPI, driver: FakeDriver, tmp_path: Path) -> None:
    monkeypatch.setattr(snapshot.httpx, "request", api)
    snapshot.run(driver, Creds(), "vm-1", PENDING, tmp_path)


def test_uploads_the_drivers_disk_in_chunks(monkeypatch, driver, tmp_path):  # type: ignore[no-untyped-def]
    api = ImageAPI()
    run(monkeypatch, api, driver, tmp_path)
    assert api.uploaded == driver.snapshot("vm-1") and api.status == "active"
    assert not list(tmp_path.glob("kumo-snap-*"))  # the temporary disk is gone


def test_retries_once_with_a_fresh_token(monkeypatch, driver, tmp_path):  # type: ignore[no-untyped-def]
    api = ImageAPI(expire_first=True)
    run(monkeypatch, api, driver, tmp_path)
    assert api.status == "active" and [c[2] for c in api.calls] == ["tok", "tok-fresh", "tok", "tok-fresh"]


def test_an_image_deleted_meanwhile_fails_the_operation(monkeypatch, driver, tmp_path):  # type: ignore[no-untyped-def]
    api = ImageAPI(status=None)
    with pytest.raises(PermanentError, match="deleted"):
        run(monkeypatch, api, driver, tmp_path)
    assert [c[0] for c in api.calls] == ["GET"]


def test_an_already_active_image_counts_as_done(monkeypatch, driver, tmp_path):  # type: ignore[no-untyped-def]
    api = ImageAPI(status="active")
    run(monkeypatch, api, driver, tmp_path)
    assert [c[0] for c in api.calls] == ["GET"] and api.uploaded == b""


def test_a_refused_upload_deletes_the_image(monkeypatch, driver, tmp_path):  # type: ignore[no-untyped-def]
    api = ImageAPI(put_status=413)
    with pytest.raises(PermanentError, match="413"):
        run(monkeypatch, api, driver, tmp_path)
    assert [c[0] for c in api.calls] == ["GET", "PUT", "DELETE"] and api.status is None


def test_no_credentials_is_a_clear_error(driver, tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(PermanentError, match="credentials"):
        snapshot.run(driver, None, "vm-1", PENDING, tmp_path)


def test_host_credentials_prefer_admin_then_node(tmp_path):  # type: ignore[no-untyped-def]
    assert snapshot.host_credentials(tmp_path) is None
    (tmp_path / "clouds.yaml").write_text("clouds:\n  kumo-node:\n    auth: {username: n, password: p, auth_url: x}\n")
    creds = snapshot.host_credentials(tmp_path)
    assert creds is not None and creds.auth["username"] == "n"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("status", "deleted"), [("queued", True), ("saving", True), ("active", False)])
def test_a_deleted_server_drops_only_an_unfinished_snapshot(monkeypatch, status, deleted):  # type: ignore[no-untyped-def]
    api = ImageAPI(status=status)
    monkeypatch.setattr(snapshot.httpx, "request", api)
    snapshot.discard_unfinished(Creds(), URL)
    assert (api.status is None) is deleted
    snapshot.discard_unfinished(None, URL)  # no credentials: nothing to do, no error
