"""createImage through the compute agent (fake driver): the API queues the image and a
``snapshot`` operation; the agent writes the fake disk and uploads it with the host's credentials."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support import KumoCloud, unique

FAKE_DISK = b"\0" * 65536  # kumo.agents.compute.fake: the fake driver's root disk


@pytest.fixture(scope="module")
def demo(cloud: KumoCloud):
    token, body = cloud.issue("demo")
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.45"}
    with (
        httpx.Client(base_url=cloud.url + "/compute/v2.1", headers=headers, timeout=60) as nova,
        httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": token}, timeout=60) as glance,
    ):
        yield nova, glance, body["token"]["project"]["id"]


@pytest.fixture(scope="module")
def server_id(cloud: KumoCloud, demo) -> str:
    nova, _glance, _project = demo
    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as admin:  # fmt: skip
        img = admin.post("/images", json={"name": unique("base"), "disk_format": "raw",
                                          "container_format": "bare", "visibility": "public"}).json()  # fmt: skip
        assert admin.put(f"/images/{img['id']}/file", content=b"\1" * 4096,
                         headers={"Content-Type": "application/octet-stream"}).status_code == 204  # fmt: skip
    r = nova.post("/servers", json={"server": {"name": unique("snap"), "imageRef": img["id"], "flavorRef": "42",
                                               "networks": "none"}})  # fmt: skip
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    _idle(nova, sid, "ACTIVE")
    yield sid
    nova.delete(f"/servers/{sid}")


def _idle(nova: httpx.Client, sid: str, status: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = nova.get(f"/servers/{sid}").json()["server"]
        if body["status"] == status and body["OS-EXT-STS:task_state"] is None:
            return body
        assert time.monotonic() < deadline, f"stuck in {body['status']}/{body['OS-EXT-STS:task_state']}"
        time.sleep(0.1)


def _image_settles(glance: httpx.Client, iid: str, timeout: float = 20) -> dict | None:
    deadline = time.monotonic() + timeout
    while True:
        r = glance.get(f"/images/{iid}")
        if r.status_code == 404:
            return None
        if r.json()["status"] not in ("queued", "saving"):
            return r.json()
        assert time.monotonic() < deadline, f"image {iid} stuck in {r.json()['status']}"
        time.sleep(0.1)


def _last_action(nova: httpx.Client, sid: str, name: str) -> dict:
    acts = nova.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    req = next(a["request_id"] for a in acts if a["action"] == name)
    return nova.get(f"/servers/{sid}/os-instance-actions/{req}",
                    headers={"OpenStack-API-Version": "compute 2.51"}).json()["instanceAction"]  # fmt: skip


def test_create_image_uploads_the_drivers_disk(demo, server_id: str):
    nova, glance, project = demo
    r = nova.post(f"/servers/{server_id}/action", json={"createImage": {"name": unique("img"), "metadata": {"k": "v"}}})
    assert r.status_code == 202, r.text
    iid = r.json()["image_id"]
    assert nova.get(f"/servers/{server_id}").json()["server"]["OS-EXT-STS:task_state"] in ("image_snapshot", None)
    again = nova.post(f"/servers/{server_id}/action", json={"createImage": {"name": unique("img")}})
    assert again.status_code in (409, 202)  # 409 while the first runs (202 only if it already finished)
    if again.status_code == 202:
        _image_settles(glance, again.json()["image_id"])
        glance.delete(f"/images/{again.json()['image_id']}")
    image = _image_settles(glance, iid)
    assert image is not None and image["status"] == "active", image
    assert image["size"] == len(FAKE_DISK)
    assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
    assert image["owner"] == project and image["k"] == "v" and image["instance_uuid"] == server_id
    assert glance.get(f"/images/{iid}/file").content == FAKE_DISK
    _idle(nova, server_id, "ACTIVE")
    act = _last_action(nova, server_id, "createImage")
    assert [(e["event"], e["result"]) for e in act["events"]] == [("compute_snapshot_instance", "Success")]
    assert glance.delete(f"/images/{iid}").status_code == 204


def test_snapshot_of_a_stopped_server_and_a_deleted_image(demo, server_id: str):
    nova, glance, _project = demo
    assert nova.post(f"/servers/{server_id}/action", json={"os-stop": None}).status_code == 202
    _idle(nova, server_id, "SHUTOFF")
    r = nova.post(f"/servers/{server_id}/action", json={"createImage": {"name": unique("gone")}})
    assert r.status_code == 202, r.text
    iid = r.json()["image_id"]
    glance.delete(f"/images/{iid}")  # deleted meanwhile (or just after the upload)
    _idle(nova, server_id, "SHUTOFF")  # never stranded in image_snapshot; stays stopped
    assert glance.get(f"/images/{iid}").status_code == 404
    act = _last_action(nova, server_id, "createImage")
    assert len(act["events"]) == 1 and act["events"][0]["event"] == "compute_snapshot_instance"
    assert nova.post(f"/servers/{server_id}/action", json={"os-start": None}).status_code == 202
    _idle(nova, server_id, "ACTIVE")


def test_shelve_uploads_the_disk_then_unshelve_brings_the_server_back(demo, server_id: str):
    nova, glance, project = demo
    name = nova.get(f"/servers/{server_id}").json()["server"]["name"]
    assert nova.post(f"/servers/{server_id}/action", json={"shelve": None}).status_code == 202
    _idle(nova, server_id, "SHELVED_OFFLOADED")
    shelved = glance.get("/images", params={"name": f"{name}-shelved"}).json()["images"]
    assert len(shelved) == 1
    image = _image_settles(glance, shelved[0]["id"])
    assert image is not None and image["status"] == "active" and image["owner"] == project
    assert image["size"] == len(FAKE_DISK) and image["disk_format"] == "raw"
    assert glance.get(f"/images/{image['id']}/file").content == FAKE_DISK  # the driver's disk, via the agent
    base = nova.get(f"/servers/{server_id}").json()["server"]["image"]["id"]
    assert nova.post(f"/servers/{server_id}/action", json={"unshelve": None}).status_code == 202
    body = _idle(nova, server_id, "ACTIVE")
    # the new disk was made from the snapshot (the disk as it was), which then goes, as in Nova
    console = nova.post(f"/servers/{server_id}/action", json={"os-getConsoleOutput": {}}).json()["output"]
    assert f"fake: image {image['id']}" in console, console
    assert glance.get(f"/images/{image['id']}").status_code == 404
    assert body["image"]["id"] == base  # the server still names its own image


def test_deleting_a_shelved_server_deletes_its_snapshot(demo, server_id: str):
    nova, glance, _project = demo
    image_ref = nova.get(f"/servers/{server_id}").json()["server"]["image"]["id"]
    name = unique("shelf")
    r = nova.post("/servers", json={"server": {"name": name, "imageRef": image_ref, "flavorRef": "42",
                                               "networks": "none"}})  # fmt: skip
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    _idle(nova, sid, "ACTIVE")
    assert nova.post(f"/servers/{sid}/action", json={"shelve": None}).status_code == 202
    _idle(nova, sid, "SHELVED_OFFLOADED")
    shelved = glance.get("/images", params={"name": f"{name}-shelved"}).json()["images"]
    assert len(shelved) == 1
    assert nova.delete(f"/servers/{sid}").status_code == 204
    assert glance.get(f"/images/{shelved[0]['id']}").status_code == 404
