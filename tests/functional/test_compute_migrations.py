"""os-migrations per microversion (2.23 type, 2.59 uuid/paging, 2.66 changes-before, 2.80 user/project)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support import KumoCloud, unique


def _hdr(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest.fixture(scope="module")
def nova(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as client:  # fmt: skip
        yield client


def _wait(nova: httpx.Client, sid: str, status: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = nova.get(f"/servers/{sid}").json()["server"]
        if body["status"] == status and body["OS-EXT-STS:task_state"] is None:
            return body
        assert time.monotonic() < deadline, f"server {sid} stuck in {body['status']}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def resized(cloud: KumoCloud, nova: httpx.Client, tmp_path_factory: pytest.TempPathFactory):
    """Two servers resized (two 'resize' migrations), deleted afterwards."""
    path = tmp_path_factory.mktemp("img") / "tiny.raw"
    path.write_bytes(b"\0" * 1048576)
    img = cloud.cli_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                         "--file", str(path), unique("mig"))  # fmt: skip
    sids = []
    try:
        for _ in range(2):
            r = nova.post("/servers", json={"server": {"name": unique("mig"), "imageRef": img["id"],
                                                       "flavorRef": "1", "networks": "none"}},
                          headers=_hdr("2.37"))  # fmt: skip
            assert r.status_code == 202, r.text
            sids.append(r.json()["server"]["id"])
        for sid in sids:
            _wait(nova, sid, "ACTIVE")
            r = nova.post(f"/servers/{sid}/action", json={"resize": {"flavorRef": "2"}})
            assert r.status_code == 202, r.text
            _wait(nova, sid, "VERIFY_RESIZE")
        yield sids
    finally:
        for sid in sids:
            nova.delete(f"/servers/{sid}")
        cloud.cli("image", "delete", img["id"])


def _mine(nova: httpx.Client, sids: list[str], version: str, **params: str) -> list[dict]:
    r = nova.get("/os-migrations", params=params, headers=_hdr(version))
    assert r.status_code == 200, r.text
    assert r.headers["OpenStack-API-Version"] == f"compute {version}"
    return [m for m in r.json()["migrations"] if m["instance_uuid"] in sids]


def test_fields_switch_per_microversion(nova: httpx.Client, resized: list[str]):
    old = _mine(nova, resized, "2.22")
    assert len(old) == 2 and all("migration_type" not in m and "uuid" not in m for m in old)
    v23 = _mine(nova, resized, "2.23")
    assert {m["migration_type"] for m in v23} == {"resize"} and all("links" not in m for m in v23)
    assert all("uuid" not in m for m in v23)
    v79 = _mine(nova, resized, "2.79")
    assert all("uuid" in m and "user_id" not in m and "project_id" not in m for m in v79)
    v80 = _mine(nova, resized, "2.80")
    server = nova.get(f"/servers/{resized[0]}").json()["server"]
    assert {m["user_id"] for m in v80} == {server["user_id"]}
    assert {m["project_id"] for m in v80} == {server["tenant_id"]}


def test_filters_and_validation(nova: httpx.Client, resized: list[str]):
    one = _mine(nova, resized, "2.80", instance_uuid=resized[0])
    assert [m["instance_uuid"] for m in one] == [resized[0]]
    assert _mine(nova, resized, "2.80", migration_type="live-migration") == []
    server = nova.get(f"/servers/{resized[0]}").json()["server"]
    assert len(_mine(nova, resized, "2.80", user_id=server["user_id"])) == 2
    assert _mine(nova, resized, "2.80", project_id="no-such-project") == []
    # user_id/project_id are unknown query parameters between 2.59 and 2.79 → 400; ignored before 2.59.
    r = nova.get("/os-migrations", params={"user_id": "x"}, headers=_hdr("2.79"))
    assert r.status_code == 400 and "badRequest" in r.json()
    assert len(_mine(nova, resized, "2.58", user_id="x")) == 2
    r = nova.get("/os-migrations", params={"changes-before": "2000-01-01T00:00:00Z"}, headers=_hdr("2.65"))
    assert r.status_code == 400
    assert _mine(nova, resized, "2.66", **{"changes-before": "2000-01-01T00:00:00Z"}) == []
    r = nova.get("/os-migrations", params={"changes-since": "not-a-time"}, headers=_hdr("2.80"))
    assert r.status_code == 400 and "badRequest" in r.json()
    r = nova.get("/os-migrations", params={"changes-since": "2030-01-01T00:00:00Z",
                                           "changes-before": "2020-01-01T00:00:00Z"}, headers=_hdr("2.80"))  # fmt: skip
    assert r.status_code == 400
    r = nova.get("/os-migrations", params={"marker": "0" * 36}, headers=_hdr("2.80"))
    assert r.status_code == 400 and "Marker" in r.json()["badRequest"]["message"]
    r = nova.get("/os-migrations", params={"limit": "-1"}, headers=_hdr("2.80"))
    assert r.status_code == 400


def test_paging(nova: httpx.Client, resized: list[str]):
    mine = _mine(nova, resized, "2.80", host="")  # empty host filter is no filter
    assert len(mine) == 2
    r = nova.get("/os-migrations", params={"limit": "1"}, headers=_hdr("2.80"))
    body = r.json()
    assert len(body["migrations"]) == 1 and "migrations_links" in body
    nxt = httpx.URL(body["migrations_links"][0]["href"]).params["marker"]
    assert nxt == body["migrations"][0]["uuid"]
    r2 = nova.get("/os-migrations", params={"limit": "1", "marker": nxt}, headers=_hdr("2.80")).json()
    assert r2["migrations"] and r2["migrations"][0]["uuid"] != nxt


def test_non_admin_forbidden(cloud: KumoCloud):
    conn = cloud.sdk("kumo")
    token = conn.auth_token
    r = httpx.get(cloud.url + "/compute/v2.1/os-migrations", headers={"X-Auth-Token": token, **_hdr("2.80")},
                  timeout=30)  # fmt: skip
    assert r.status_code == 403
