"""Personality files (before 2.57) on the shared cloud (fake driver): create, rebuild, the
quotas, and the files in the metadata service and the config drive."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from kumo.agents.compute.configdrive import read_config_drive
from tests import compute_helpers as helpers
from tests.functional.test_compute_metadata import _md, upload_image
from tests.support import KumoCloud, unique

pytestmark = pytest.mark.cli
_hdr, _until, _settled = helpers.hdr, helpers.until, helpers.settled


@pytest.fixture(scope="module")
def nova(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def image(cloud: KumoCloud) -> dict:
    return upload_image(cloud, unique("persona"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _create(nova: httpx.Client, image: dict, personality, version: str = "2.56", **extra) -> httpx.Response:  # type: ignore[no-untyped-def]
    body = {"name": unique("pers"), "flavorRef": "1", "imageRef": image["id"], "networks": "none",
            "personality": personality, **extra}  # fmt: skip
    return nova.post("/servers", json={"server": body}, headers=_hdr(version))


def _iso_files(cloud: KumoCloud, sid: str, want: str) -> dict[str, bytes]:
    iso = cloud.data_dir / "compute" / "config-drives" / f"{sid}.iso"

    def read() -> dict[str, bytes] | None:
        try:
            files = read_config_drive(iso)
        except (OSError, ValueError):
            return None
        return files if want in json.loads(files["openstack/latest/meta_data.json"]).get("files", [{}])[0].get(
            "path", "") else None

    return _until(f"config drive of {sid} with {want}", read, timeout=30)


def test_create_with_files_reaches_metadata_and_config_drive(cloud: KumoCloud, nova: httpx.Client, image: dict):
    # (the CLI's ``server create --file`` fails in the client itself, so the API is called directly)
    r = _create(nova, image, [{"path": "/etc/motd", "contents": _b64(b"hello from personality\n")}],
                config_drive=True)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    try:
        server = _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        meta = _md(cloud, server, "/openstack/latest/meta_data.json").json()
        assert meta["files"] == [{"path": "/etc/motd", "content_path": "/content/0000"}]
        r = _md(cloud, server, "/openstack/content/0000")
        assert r.status_code == 200 and r.content == b"hello from personality\n"
        assert _md(cloud, server, "/openstack/content/0001").status_code == 404
        assert _md(cloud, server, "/openstack/content").status_code == 404  # no listing, as Nova
        files = _iso_files(cloud, sid, "/etc/motd")
        assert files["openstack/content/0000"] == b"hello from personality\n"
        assert json.loads(files["openstack/2012-08-10/meta_data.json"])["files"][0]["content_path"] == "/content/0000"

        # rebuild replaces the files (2.56); at 2.57 personality is refused
        r = nova.post(f"/servers/{sid}/action", headers=_hdr("2.57"),
                      json={"rebuild": {"imageRef": image["id"], "personality": [{"path": "/x", "contents": ""}]}})
        assert r.status_code == 400 and "'personality' was unexpected" in r.text, r.text
        new = [{"path": "/etc/one", "contents": _b64(b"1")}, {"path": "/etc/two", "contents": _b64(b"22")}]
        r = nova.post(f"/servers/{sid}/action", headers=_hdr("2.56"),
                      json={"rebuild": {"imageRef": image["id"], "personality": new}})
        assert r.status_code == 202, r.text
        server = _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        meta = _md(cloud, server, "/openstack/latest/meta_data.json").json()
        assert [f["path"] for f in meta["files"]] == ["/etc/one", "/etc/two"]
        assert _md(cloud, server, "/openstack/content/0001").content == b"22"
        files = _iso_files(cloud, sid, "/etc/one")
        assert files["openstack/content/0000"] == b"1" and files["openstack/content/0001"] == b"22"
        # a rebuild naming none leaves none
        r = nova.post(f"/servers/{sid}/action", headers=_hdr("2.56"), json={"rebuild": {"imageRef": image["id"]}})
        assert r.status_code == 202, r.text
        server = _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        assert "files" not in _md(cloud, server, "/openstack/latest/meta_data.json").json()
        assert _md(cloud, server, "/openstack/content/0000").status_code == 404
    finally:
        nova.delete(f"/servers/{sid}")


def test_personality_rules_and_quotas(cloud: KumoCloud, nova: httpx.Client, image: dict):
    limits = nova.get("/limits", headers=_hdr("2.56")).json()["limits"]["absolute"]
    assert limits["maxPersonality"] == 5 and limits["maxPersonalitySize"] == 10240
    token_info = httpx.get(cloud.url + "/identity/v3/auth/tokens", timeout=30,
                           headers={"X-Auth-Token": cloud.admin_token, "X-Subject-Token": cloud.admin_token}).json()
    pid = token_info["token"]["project"]["id"]
    qs = nova.get(f"/os-quota-sets/{pid}", headers=_hdr("2.56")).json()["quota_set"]
    assert (qs["injected_files"], qs["injected_file_path_bytes"], qs["injected_file_content_bytes"]) == (5, 255, 10240)

    def refused(personality, status: int, message: str, version: str = "2.56") -> None:  # type: ignore[no-untyped-def]
        r = _create(nova, image, personality, version)
        assert r.status_code == status, r.text
        body = r.json()
        assert message in (body.get("badRequest") or body.get("forbidden"))["message"], body

    ok = {"path": "/a", "contents": _b64(b"a")}
    refused([ok], 400, "'personality' was unexpected", version="2.57")
    refused([{"path": "/a", "contents": "not base64!"}], 400, "is not a 'base64'")
    refused([{"path": "/a", "contents": "a", "mode": "0644"}], 400, "'mode' was unexpected")
    refused("/a", 400, "is not of type 'array'")
    refused([{"contents": _b64(b"a")}], 400, "path")
    refused([ok] * 6, 403, "Personality file limit exceeded")
    refused([{"path": "/" + "p" * 255, "contents": ""}], 403, "Personality file path exceeds maximum 255")
    refused([{"path": "/big", "contents": _b64(b"x" * 7681)}], 403, "Personality file content exceeds maximum 10240")

    # the project's quota set decides
    r = nova.put(f"/os-quota-sets/{pid}", json={"quota_set": {"injected_files": 1}}, headers=_hdr("2.56"))
    assert r.status_code == 200, r.text
    try:
        refused([ok, ok], 403, "Personality file limit exceeded")
    finally:
        nova.put(f"/os-quota-sets/{pid}", json={"quota_set": {"injected_files": 5}}, headers=_hdr("2.56"))

    # at the limits exactly: accepted (5 files, a 255-byte path, 10240 bytes of base64)
    r = _create(nova, image, [{"path": "/" + "p" * 254, "contents": _b64(b"x" * 7680)}] + [ok] * 4)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    try:
        server = _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        meta = _md(cloud, server, "/openstack/latest/meta_data.json").json()
        assert len(meta["files"]) == 5 and meta["files"][4] == {"path": "/a", "content_path": "/content/0004"}
        assert len(_md(cloud, server, "/openstack/content/0000").content) == 7680
    finally:
        nova.delete(f"/servers/{sid}")
