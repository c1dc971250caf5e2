"""Compute 2.93: rebuilding a volume-backed server re-images its root volume through block storage
(os-reimage with reimage_reserved); below 2.93 a different image is refused as before."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support import KumoCloud, unique


def _mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}", "X-OpenStack-Nova-API-Version": version}


@pytest.fixture(scope="module")
def nova(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def cinder(cloud: KumoCloud):
    catalog = cloud.admin().get("/auth/catalog").json()["catalog"]
    url = next(ep["url"] for e in catalog if e["type"] == "block-storage" for ep in e["endpoints"]
               if ep["interface"] == "public")  # fmt: skip
    with httpx.Client(base_url=url, headers={"X-Auth-Token": cloud.admin_token,
                                             "OpenStack-API-Version": "volume 3.68"}, timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def images(cloud: KumoCloud):
    made = []
    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as glance:  # fmt: skip
        for marker in (b"FIRST", b"SECOND"):
            r = glance.post("/images", json={"name": unique("img"), "disk_format": "raw", "container_format": "bare",
                                             "visibility": "public"})  # fmt: skip
            iid = r.json()["id"]
            up = glance.put(f"/images/{iid}/file", content=marker + b"\0" * (65536 - len(marker)),
                            headers={"Content-Type": "application/octet-stream"})  # fmt: skip
            assert up.status_code == 204, up.text
            made.append(iid)
        yield made
        for iid in made:
            glance.delete(f"/images/{iid}")


def _until(what: str, fn, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _server(nova: httpx.Client, sid: str, version: str = "2.96") -> dict:
    return nova.get(f"/servers/{sid}", headers=_mv(version)).json()["server"]


def _status(nova: httpx.Client, sid: str, want: str) -> dict:
    def ready():  # type: ignore[no-untyped-def]
        s = _server(nova, sid)
        assert s["status"] != "ERROR" or want == "ERROR", s.get("fault")
        return s if s["status"] == want else None

    return _until(f"server {sid} {want}", ready)


def test_rebuild_volume_backed_server_reimages_its_root_volume(
    nova: httpx.Client, cinder: httpx.Client, images: list[str]
) -> None:
    first, second = images
    bdm = [{"boot_index": 0, "uuid": first, "source_type": "image", "destination_type": "volume",
            "volume_size": 1, "delete_on_termination": True}]  # fmt: skip
    r = nova.post("/servers", json={"server": {"name": unique("bfv"), "flavorRef": "1", "networks": "none",
                                               "block_device_mapping_v2": bdm}}, headers=_mv("2.93"))  # fmt: skip
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    server = _status(nova, sid, "ACTIVE")
    (root,) = server["os-extended-volumes:volumes_attached"]
    vid = root["id"]
    before = cinder.get(f"/volumes/{vid}").json()["volume"]
    assert before["volume_image_metadata"]["image_id"] == first and before["status"] == "in-use"
    old_attachment = before["attachments"][0]["attachment_id"]

    # below 2.93 a different image is still refused, and nothing changes
    r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": second}}, headers=_mv("2.92"))
    assert r.status_code == 400 and "volume-backed" in r.text, r.text
    assert _server(nova, sid)["status"] == "ACTIVE"

    # 2.93: the root volume is re-imaged, the server keeps its volume and an empty image
    r = nova.post(f"/servers/{sid}/action", headers=_mv("2.93"),
                  json={"rebuild": {"imageRef": second, "name": "rebuilt", "metadata": {"rebuild": "server"}}})
    assert r.status_code == 202, r.text
    body = r.json()["server"]
    assert body["image"] == "" and body["id"] == sid and body["status"] == "REBUILD"
    server = _status(nova, sid, "ACTIVE")
    assert server["name"] == "rebuilt" and server["image"] == "" and server["metadata"] == {"rebuild": "server"}
    assert [v["id"] for v in server["os-extended-volumes:volumes_attached"]] == [vid]
    after = cinder.get(f"/volumes/{vid}").json()["volume"]
    assert after["volume_image_metadata"]["image_id"] == second and after["status"] == "in-use"
    (att,) = after["attachments"]
    assert att["server_id"] == sid and att["attachment_id"] != old_attachment  # Nova's attachment swap
    actions = nova.get(f"/servers/{sid}/os-instance-actions", headers=_mv("2.93")).json()["instanceActions"]
    assert actions[0]["action"] == "rebuild"

    # a stopped server is re-imaged too and stays stopped
    assert nova.post(f"/servers/{sid}/action", json={"os-stop": None}, headers=_mv("2.93")).status_code == 202
    _status(nova, sid, "SHUTOFF")
    r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": first}}, headers=_mv("2.93"))
    assert r.status_code == 202, r.text
    _status(nova, sid, "SHUTOFF")
    _until("the first image back", lambda: cinder.get(f"/volumes/{vid}").json()["volume"]["volume_image_metadata"][
        "image_id"] == first)  # fmt: skip

    assert nova.delete(f"/servers/{sid}").status_code == 204
    _until("the root volume deleted", lambda: cinder.get(f"/volumes/{vid}").status_code == 404)


def test_rebuild_volume_backed_with_an_image_too_big_for_the_volume_fails_the_server(
    cloud: KumoCloud, nova: httpx.Client, cinder: httpx.Client, images: list[str]
) -> None:
    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as glance:  # fmt: skip
        r = glance.post("/images", json={"name": unique("big"), "disk_format": "raw", "container_format": "bare",
                                         "min_disk": 3})  # fmt: skip
        big = r.json()["id"]
        assert glance.put(f"/images/{big}/file", content=b"B" * 4096,
                          headers={"Content-Type": "application/octet-stream"}).status_code == 204  # fmt: skip
        bdm = [{"boot_index": 0, "uuid": images[0], "source_type": "image", "destination_type": "volume",
                "volume_size": 1, "delete_on_termination": True}]  # fmt: skip
        r = nova.post("/servers", json={"server": {"name": unique("bfv"), "flavorRef": "1", "networks": "none",
                                                   "block_device_mapping_v2": bdm}}, headers=_mv("2.93"))  # fmt: skip
        sid = r.json()["server"]["id"]
        _status(nova, sid, "ACTIVE")
        r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": big}}, headers=_mv("2.93"))
        assert r.status_code == 202, r.text
        server = _status(nova, sid, "ERROR")
        assert "3GB" in server["fault"]["message"], server["fault"]
        # rebuilding again from ERROR with an image that fits re-images the volume and recovers the server
        r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": images[1]}}, headers=_mv("2.93"))
        assert r.status_code == 202, r.text
        # (as Nova, an ERROR server shows ERROR while it is rebuilt: wait for the task to end)
        server = _until("rebuilt from ERROR", lambda: (lambda s: s if s["OS-EXT-STS:task_state"] is None and
                        s["status"] == "ACTIVE" else None)(_server(nova, sid)), timeout=60)  # fmt: skip
        vid = server["os-extended-volumes:volumes_attached"][0]["id"]
        vol = cinder.get(f"/volumes/{vid}").json()["volume"]
        assert vol["volume_image_metadata"]["image_id"] == images[1] and vol["status"] == "in-use"
        assert len(vol["attachments"]) == 1
        nova.delete(f"/servers/{sid}")
        glance.delete(f"/images/{big}")


def test_2_94_hostname_may_be_an_fqdn(nova: httpx.Client, images: list[str]) -> None:
    fqdn = "x" * 52 + "-guest-test.domaintest.com"
    body = {"name": unique("fq"), "imageRef": images[0], "flavorRef": "1", "networks": "none", "hostname": fqdn}
    r = nova.post("/servers", json={"server": body}, headers=_mv("2.93"))
    assert r.status_code == 400, r.text  # 2.90..2.93: one DNS label of at most 63 characters
    r = nova.post("/servers", json={"server": body}, headers=_mv("2.94"))
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    server = _status(nova, sid, "ACTIVE")
    assert server["OS-EXT-SRV-ATTR:hostname"] == fqdn
    for bad in ("", "a" * 256, "bad host", "under/score", "ümlaut.example"):
        r = nova.put(f"/servers/{sid}", json={"server": {"hostname": bad}}, headers=_mv("2.94"))
        assert r.status_code == 400, (bad, r.text)
    for good in ("a", "web_1.example.org", "x." * 100 + "com"):
        r = nova.put(f"/servers/{sid}", json={"server": {"hostname": good}}, headers=_mv("2.94"))
        assert r.status_code == 200 and r.json()["server"]["OS-EXT-SRV-ATTR:hostname"] == good, r.text
    r = nova.put(f"/servers/{sid}", json={"server": {"hostname": "a.b"}}, headers=_mv("2.93"))
    assert r.status_code == 400, r.text
    r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": images[1], "hostname": "new.example.net"}},
                  headers=_mv("2.94"))  # fmt: skip
    assert r.status_code == 202, r.text
    assert _status(nova, sid, "ACTIVE")["OS-EXT-SRV-ATTR:hostname"] == "new.example.net"
    r = nova.post("/servers", json={"server": {**body, "min_count": 2}}, headers=_mv("2.94"))
    assert r.status_code == 400, r.text  # one hostname for several servers is still refused
    assert nova.delete(f"/servers/{sid}").status_code == 204


def test_2_96_pinned_availability_zone(nova: httpx.Client, images: list[str]) -> None:
    made = {}
    for pinned in (None, "nova"):
        body = {"name": unique("az"), "imageRef": images[0], "flavorRef": "1", "networks": "none"}
        if pinned:
            body["availability_zone"] = pinned
        r = nova.post("/servers", json={"server": body}, headers=_mv("2.96"))
        assert r.status_code == 202, r.text
        made[pinned] = r.json()["server"]["id"]
    for pinned, sid in made.items():
        server = _status(nova, sid, "ACTIVE")
        assert server["pinned_availability_zone"] == pinned and server["OS-EXT-AZ:availability_zone"] == "nova"
        assert "pinned_availability_zone" not in _server(nova, sid, "2.95")
        listed = {s["id"]: s for s in nova.get("/servers/detail", headers=_mv("2.96")).json()["servers"]}
        assert listed[sid]["pinned_availability_zone"] == pinned
        r = nova.put(f"/servers/{sid}", json={"server": {"name": "renamed"}}, headers=_mv("2.96"))
        assert r.status_code == 200 and r.json()["server"]["pinned_availability_zone"] == pinned
        r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": images[1]}}, headers=_mv("2.96"))
        assert r.status_code == 202 and r.json()["server"]["pinned_availability_zone"] == pinned
        _status(nova, sid, "ACTIVE")
        assert nova.delete(f"/servers/{sid}").status_code == 204


def test_2_95_evacuate_leaves_the_server_stopped(kumo_cloud, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kumo.agents.compute.driver import PowerState
    from kumo.agents.compute.fake import FakeDriver
    from tests.functional.test_compute_evacuate import HOST_B, AgentThread

    cloud: KumoCloud = kumo_cloud()
    driver_b = FakeDriver(tmp_path / "host-b")
    agent_b = AgentThread(cloud, driver_b)
    img_file = tmp_path / "tiny.raw"
    img_file.write_bytes(b"\0" * 65536)
    img = cloud.cli_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                         "--file", str(img_file), unique("evac"))  # fmt: skip
    nova = httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token},
                        timeout=60)  # fmt: skip
    agent_b.start()
    try:
        services = _until("host B up", lambda: [
            s for s in nova.get("/os-services", params={"binary": "nova-compute"}, headers=_mv("2.53"))
            .json()["services"] if s["host"] == HOST_B and s["state"] == "up"])  # fmt: skip
        sids = []
        for _ in range(2):
            r = nova.post("/servers", headers=_mv("2.37"), json={"server": {
                "name": unique("evac"), "imageRef": img["id"], "flavorRef": "1", "networks": "none",
                "availability_zone": f"nova:{HOST_B}"}})  # fmt: skip
            assert r.status_code == 202, r.text
            sids.append(r.json()["server"]["id"])
        for sid in sids:
            _status(nova, sid, "ACTIVE")
        agent_b.stop()
        r = nova.put(f"/os-services/{services[0]['id']}", json={"forced_down": True}, headers=_mv("2.53"))
        assert r.status_code == 200, r.text
        old, new = sids
        # before 2.95 an ACTIVE server is rebuilt ACTIVE; from 2.95 it is rebuilt and left stopped
        assert nova.post(f"/servers/{old}/action", json={"evacuate": {}}, headers=_mv("2.94")).status_code == 200
        assert nova.post(f"/servers/{new}/action", json={"evacuate": {}}, headers=_mv("2.95")).status_code == 200
        for sid, want, power in ((old, "ACTIVE", 1), (new, "SHUTOFF", 4)):
            server = _until(f"{sid} {want}", lambda sid=sid, want=want: (lambda s: s if s["status"] == want and
                            s["OS-EXT-STS:task_state"] is None else None)(_server(nova, sid)))  # fmt: skip
            assert server["OS-EXT-SRV-ATTR:host"] != HOST_B and server["OS-EXT-STS:power_state"] == power
        assert driver_b.observe(new) == PowerState.RUNNING  # the dead host's stale copy is untouched
        assert nova.post(f"/servers/{new}/action", json={"os-start": None}).status_code == 202
        _status(nova, new, "ACTIVE")
    finally:
        agent_b.stop()
        nova.close()
