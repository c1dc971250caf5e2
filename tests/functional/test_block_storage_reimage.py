"""Cinder's os-reimage (3.68) over raw HTTP (neither the openstack CLI nor openstacksdk has it):
the rules of the action, the volume's statuses, its new image metadata and its new bytes."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.support import KumoCloud, unique

V368 = {"OpenStack-API-Version": "volume 3.68"}


@pytest.fixture(scope="module")
def cinder(cloud: KumoCloud):
    catalog = cloud.admin().get("/auth/catalog").json()["catalog"]
    url = next(ep["url"] for e in catalog if e["type"] == "block-storage" for ep in e["endpoints"]
               if ep["interface"] == "public")  # fmt: skip
    with httpx.Client(base_url=url, headers={"X-Auth-Token": cloud.admin_token, **V368}, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def glance(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as client:  # fmt: skip
        yield client


def _image(glance: httpx.Client, data: bytes, **extra) -> str:  # type: ignore[no-untyped-def]
    r = glance.post("/images", json={"name": unique("reimg"), "disk_format": "raw", "container_format": "bare",
                                     **extra})  # fmt: skip
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    up = glance.put(f"/images/{iid}/file", content=data, headers={"Content-Type": "application/octet-stream"})
    assert up.status_code == 204, up.text
    return iid


def _wait(cinder: httpx.Client, vid: str, want: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        v = cinder.get(f"/volumes/{vid}").json()["volume"]
        if v["status"] == want:
            return v
        assert v["status"] not in ("error", "error_deleting"), v
        assert time.monotonic() < deadline, f"volume {vid} stayed {v['status']} (wanted {want})"
        time.sleep(0.1)


def _reimage(cinder: httpx.Client, vid: str, body, headers=None) -> httpx.Response:  # type: ignore[no-untyped-def]
    return cinder.post(f"/volumes/{vid}/action", json={"os-reimage": body}, headers=headers or {})


def test_reimage_rules_statuses_metadata_and_bytes(cinder: httpx.Client, glance: httpx.Client) -> None:
    first = _image(glance, b"\1" * 1048576)
    second = _image(glance, b"REIMAGED" + b"\2" * 65528, hw_disk_bus="virtio")
    vid = cinder.post("/volumes", json={"volume": {"size": 1, "imageRef": first, "name": unique("rv")}}).json()[
        "volume"]["id"]
    v = _wait(cinder, vid, "available")
    assert v["volume_image_metadata"]["image_id"] == first

    # the rules of the request
    old = _reimage(cinder, vid, {"image_id": second}, {"OpenStack-API-Version": "volume 3.67"})
    assert old.status_code == 404, old.text
    for bad in ({}, {"image_id": "not-a-uuid"}, {"image_id": second, "reimage_reserved": "maybe"},
                {"image_id": second, "other": 1}, {"image_id": str(uuid.uuid4())}):  # fmt: skip
        r = _reimage(cinder, vid, bad)
        assert r.status_code == 400, (bad, r.text)
        assert "badRequest" in r.json()
    too_big = _image(glance, b"\3" * 4096, min_disk=5)
    r = _reimage(cinder, vid, {"image_id": too_big})
    assert r.status_code == 400 and "5GB" in r.text, r.text
    assert cinder.get(f"/volumes/{vid}").json()["volume"]["status"] == "available"  # refused calls change nothing
    assert _reimage(cinder, str(uuid.uuid4()), {"image_id": second}).status_code == 404

    # the re-image itself
    r = _reimage(cinder, vid, {"image_id": second, "reimage_reserved": False})
    assert r.status_code == 202, r.text
    assert cinder.get(f"/volumes/{vid}").json()["volume"]["status"] in ("downloading", "available")
    v = _wait(cinder, vid, "available")
    meta = v["volume_image_metadata"]
    assert meta["image_id"] == second and meta["hw_disk_bus"] == "virtio" and v["bootable"] == "true"
    assert v["size"] == 1 and v["id"] == vid

    # the volume's bytes are the new image's: upload it to an image and read that back
    up = cinder.post(f"/volumes/{vid}/action", json={"os-volume_upload_image": {"image_name": unique("back")}})
    assert up.status_code == 202, up.text
    back = up.json()["os-volume_upload_image"]["image_id"]
    _wait(cinder, vid, "available")
    deadline = time.monotonic() + 60
    while glance.get(f"/images/{back}").json()["status"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with glance.stream("GET", f"/images/{back}/file") as data:
        head = next(data.iter_bytes(16))
    assert head[:8] == b"REIMAGED" and head[8:16] == b"\2" * 8
    for iid in (first, second, too_big, back):
        glance.delete(f"/images/{iid}")
    assert cinder.delete(f"/volumes/{vid}").status_code == 202


def test_reimage_of_a_reserved_volume_needs_reimage_reserved(cinder: httpx.Client, glance: httpx.Client) -> None:
    img = _image(glance, b"R" * 8192)
    vid = cinder.post("/volumes", json={"volume": {"size": 1, "name": unique("rr")}}).json()["volume"]["id"]
    _wait(cinder, vid, "available")
    att = cinder.post("/attachments", json={"attachment": {"volume_uuid": vid, "instance_uuid": str(uuid.uuid4())}})
    assert att.status_code == 200, att.text
    assert cinder.get(f"/volumes/{vid}").json()["volume"]["status"] == "reserved"
    r = _reimage(cinder, vid, {"image_id": img})
    assert r.status_code == 400 and "reserved" in r.text, r.text
    r = _reimage(cinder, vid, {"image_id": img, "reimage_reserved": True})
    assert r.status_code == 202, r.text
    v = _wait(cinder, vid, "reserved")
    assert v["volume_image_metadata"]["image_id"] == img and v["bootable"] == "true"
    assert cinder.delete(f"/attachments/{att.json()['attachment']['id']}").status_code == 200
    _wait(cinder, vid, "available")
    glance.delete(f"/images/{img}")
    assert cinder.delete(f"/volumes/{vid}").status_code == 202
