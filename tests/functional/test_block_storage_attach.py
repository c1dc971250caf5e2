"""Volumes on servers with the fake compute driver, driven by the openstack CLI and raw HTTP:
attach / detach (os-volume_attachments), boot from volume, delete_on_termination."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.support import KumoCloud, unique

pytestmark = pytest.mark.cli

MV = {"OpenStack-API-Version": "compute 2.79"}


@pytest.fixture(scope="module")
def nova(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token, **MV},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def cinder(cloud: KumoCloud):
    catalog = cloud.admin().get("/auth/catalog").json()["catalog"]
    url = next(ep["url"] for e in catalog if e["type"] == "block-storage" for ep in e["endpoints"]
               if ep["interface"] == "public")  # fmt: skip
    with httpx.Client(base_url=url, headers={"X-Auth-Token": cloud.admin_token, "OpenStack-API-Version": "volume 3.44"},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def image_id(cloud: KumoCloud, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("img") / "tiny.raw"
    path.write_bytes(b"\1" * 1048576)
    glance = httpx.Client(
        base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": cloud.admin_token}, timeout=60
    )
    with glance:
        r = glance.post("/images", json={"name": unique("tiny"), "disk_format": "raw", "container_format": "bare",
                                         "visibility": "public"})  # fmt: skip
        iid = r.json()["id"]
        up = glance.put(f"/images/{iid}/file", content=path.read_bytes(),
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert up.status_code == 204, up.text
    return iid


def _until(what: str, fn, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _new_volume(cinder: httpx.Client, **extra) -> dict:  # type: ignore[no-untyped-def]
    r = cinder.post("/volumes", json={"volume": {"size": 1, "name": unique("vol"), **extra}})
    assert r.status_code == 202, r.text
    return _wait_volume(cinder, r.json()["volume"]["id"], "available")


def _wait_volume(cinder: httpx.Client, vid: str, status: str) -> dict:
    def check():  # type: ignore[no-untyped-def]
        r = cinder.get(f"/volumes/{vid}")
        if r.status_code == 404:
            return {"status": "deleted"} if status == "deleted" else None
        v = r.json()["volume"]
        assert v["status"] != "error", v
        return v if v["status"] == status else None

    return _until(f"volume {vid} {status}", check)


def _server(nova: httpx.Client, sid: str) -> dict:
    return nova.get(f"/servers/{sid}").json()["server"]


def _wait_server(nova: httpx.Client, sid: str, status: str) -> dict:
    def ready():  # type: ignore[no-untyped-def]
        r = nova.get(f"/servers/{sid}")
        if r.status_code == 404:
            return {"status": "DELETED"} if status == "DELETED" else None
        s = r.json()["server"]
        assert s["status"] != "ERROR", s.get("fault")
        return s if s["status"] == status and s["OS-EXT-STS:task_state"] is None else None

    return _until(f"server {sid} {status}", ready)


def _new_server(nova: httpx.Client, image_id: str | None, **extra) -> str:  # type: ignore[no-untyped-def]
    body = {"name": unique("vm"), "flavorRef": "1", "networks": "none", **extra}
    if image_id:
        body["imageRef"] = image_id
    r = nova.post("/servers", json={"server": body})
    assert r.status_code == 202, r.text
    return r.json()["server"]["id"]


def _console(nova: httpx.Client, sid: str) -> str:
    return nova.post(f"/servers/{sid}/action", json={"os-getConsoleOutput": {}}).json()["output"]


def _attachments(nova: httpx.Client, sid: str) -> list:
    return nova.get(f"/servers/{sid}/os-volume_attachments").json()["volumeAttachments"]


def test_add_and_remove_volume_with_the_cli(cloud: KumoCloud, nova: httpx.Client, cinder: httpx.Client,
                                            image_id: str):  # fmt: skip
    vol = _new_volume(cinder)
    sid = _new_server(nova, image_id)
    _wait_server(nova, sid, "ACTIVE")
    try:
        res = cloud.cli("server", "add", "volume", sid, vol["id"])
        assert res.returncode == 0, res.stderr
        v = _wait_volume(cinder, vol["id"], "in-use")
        assert v["attachments"][0]["server_id"] == sid
        show = cloud.cli_json("server", "show", sid)
        assert vol["id"] in str(show["volumes_attached"])
        assert _attachments(nova, sid) == [{"id": vol["id"], "serverId": sid, "volumeId": vol["id"],
                                            "device": "/dev/vdb", "tag": None, "delete_on_termination": False}]  # fmt: skip
        one = nova.get(f"/servers/{sid}/os-volume_attachments/{vol['id']}").json()["volumeAttachment"]
        assert one["device"] == "/dev/vdb"
        assert f"volume {vol['id']} attached" in _console(nova, sid)  # the fake driver hot-plugged it
        # attaching it again is refused; so is deleting an attached volume
        again = nova.post(
            f"/servers/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vol["id"]}}
        )
        assert again.status_code == 400, again.text
        assert cinder.delete(f"/volumes/{vol['id']}").status_code == 400
        res = cloud.cli("server", "remove", "volume", sid, vol["id"])
        assert res.returncode == 0, res.stderr
        _wait_volume(cinder, vol["id"], "available")
        _until("attachment gone", lambda: _attachments(nova, sid) == [])
        assert f"volume {vol['id']} detached" in _console(nova, sid)
        assert nova.delete(f"/servers/{sid}/os-volume_attachments/{vol['id']}").status_code == 404
        # a stopped server: recorded now, attached by the driver at the next start
        assert nova.post(f"/servers/{sid}/action", json={"os-stop": None}).status_code == 202
        _wait_server(nova, sid, "SHUTOFF")
        r = nova.post(f"/servers/{sid}/os-volume_attachments",
                      json={"volumeAttachment": {"volumeId": vol["id"], "tag": "db", "delete_on_termination": True}})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["volumeAttachment"]["tag"] == "db"
        _wait_volume(cinder, vol["id"], "in-use")
        assert nova.post(f"/servers/{sid}/action", json={"os-start": None}).status_code == 202
        _wait_server(nova, sid, "ACTIVE")
        assert _server(nova, sid)["os-extended-volumes:volumes_attached"] == [
            {"id": vol["id"], "delete_on_termination": True}
        ]
        assert _console(nova, sid).count(f"volume {vol['id']} attached") == 2
    finally:
        nova.delete(f"/servers/{sid}")
    # delete_on_termination: the volume goes with the server
    _wait_volume(cinder, vol["id"], "deleted")


def test_attach_errors(nova: httpx.Client, cinder: httpx.Client, image_id: str):
    sid = _new_server(nova, image_id)
    _wait_server(nova, sid, "ACTIVE")
    url = f"/servers/{sid}/os-volume_attachments"
    missing = "00000000-0000-4000-8000-000000000000"
    try:
        assert nova.post(url, json={"volumeAttachment": {"volumeId": missing}}).status_code == 404
        assert nova.post(url, json={"volumeAttachment": {"volumeId": "x"}}).status_code == 400
        assert nova.post(url, json={"volumeAttachment": {}}).status_code == 400
        assert nova.post(url, json={"nope": 1}).status_code == 400
        old = {"X-OpenStack-Nova-API-Version": "2.48", "OpenStack-API-Version": "compute 2.48"}
        vol = _new_volume(cinder)
        r = nova.post(url, json={"volumeAttachment": {"volumeId": vol["id"], "tag": "t"}}, headers=old)
        assert r.status_code == 400 and "tag" in r.text
        assert nova.get(f"{url}/{missing}").status_code == 404
        assert nova.delete(f"{url}/{missing}").status_code == 404
        assert nova.get(f"/servers/{missing}/os-volume_attachments").status_code == 404
        # another server cannot take an in-use volume
        assert nova.post(url, json={"volumeAttachment": {"volumeId": vol["id"]}}).status_code == 200
        _wait_volume(cinder, vol["id"], "in-use")
        other = _new_server(nova, image_id)
        _wait_server(nova, other, "ACTIVE")
        r = nova.post(
            f"/servers/{other}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vol["id"]}}
        )
        assert r.status_code == 400, r.text
        nova.delete(f"/servers/{other}")
    finally:
        nova.delete(f"/servers/{sid}")
    _wait_volume(cinder, vol["id"], "available")  # released when its server went away
    assert cinder.delete(f"/volumes/{vol['id']}").status_code == 202


def test_boot_from_volume_with_the_cli(
    cloud: KumoCloud, nova: httpx.Client, cinder: httpx.Client, image_id: str
):
    name = unique("bfv")
    res = cloud.cli("server", "create", "--image", image_id, "--boot-from-volume", "1", "--flavor", "m1.tiny",
                    "--nic", "none", "--wait", "-f", "json", name)  # fmt: skip
    assert res.returncode == 0, res.stderr
    sid = _wait_server(nova, json.loads(res.stdout)["id"], "ACTIVE")["id"]
    server = _server(nova, sid)
    assert server["image"] == ""
    (root,) = server["os-extended-volumes:volumes_attached"]
    vol = _wait_volume(cinder, root["id"], "in-use")
    assert vol["bootable"] == "true" and vol["size"] == 1
    assert _attachments(nova, sid)[0]["device"] == "/dev/vda"
    r = nova.delete(f"/servers/{sid}/os-volume_attachments/{root['id']}")
    assert r.status_code == 400 and "root device" in r.text
    assert f"volume {root['id']} attached" in _console(nova, sid)
    # boot from an existing volume (source_type=volume): kept when the server is deleted
    data = _new_volume(cinder, imageRef=image_id)
    bdm = [{"boot_index": 0, "uuid": data["id"], "source_type": "volume", "destination_type": "volume"}]
    sid2 = _new_server(nova, None, block_device_mapping_v2=bdm)
    _wait_server(nova, sid2, "ACTIVE")
    _wait_volume(cinder, data["id"], "in-use")
    nova.delete(f"/servers/{sid2}")
    nova.delete(f"/servers/{sid}")
    _wait_volume(cinder, data["id"], "available")
    _wait_volume(cinder, root["id"], "available")  # --boot-from-volume without --delete-on-termination
    for vid in (root["id"], data["id"]):
        assert cinder.delete(f"/volumes/{vid}").status_code == 202


def test_boot_from_volume_errors(nova: httpx.Client, image_id: str):
    def create(bdm: dict) -> httpx.Response:
        return nova.post("/servers", json={"server": {"name": unique("bad"), "flavorRef": "1", "networks": "none",
                                                      "block_device_mapping_v2": [bdm]}})  # fmt: skip

    missing = "00000000-0000-4000-8000-000000000000"
    r = create({"boot_index": 0, "uuid": missing, "source_type": "volume", "destination_type": "volume"})
    assert r.status_code == 400 and "failed to get volume" in r.text
    r = create({"boot_index": 0, "uuid": image_id, "source_type": "image", "destination_type": "volume"})
    assert r.status_code == 400 and "non-zero size" in r.text
    r = create({"boot_index": 0, "uuid": "nope", "source_type": "volume", "destination_type": "volume"})
    assert r.status_code == 400


def test_os_volumes_proxy(nova: httpx.Client, cinder: httpx.Client):
    old = {"X-OpenStack-Nova-API-Version": "2.35", "OpenStack-API-Version": "compute 2.35"}
    r = nova.post(
        "/os-volumes", json={"volume": {"size": 1, "display_name": "px", "metadata": {"a": "b"}}}, headers=old
    )
    assert r.status_code == 200, r.text
    vol = r.json()["volume"]
    assert vol["displayName"] == "px" and vol["attachments"] == [{}] and vol["metadata"] == {"a": "b"}
    _wait_volume(cinder, vol["id"], "available")
    assert nova.get(f"/os-volumes/{vol['id']}", headers=old).json()["volume"]["status"] == "available"
    assert vol["id"] in [v["id"] for v in nova.get("/os-volumes/detail", headers=old).json()["volumes"]]
    assert len(nova.get("/os-volumes", params={"limit": 1}, headers=old).json()["volumes"]) == 1
    for bad in ("#$%", "", "0", 0):
        assert nova.post("/os-volumes", json={"volume": {"size": bad}}, headers=old).status_code == 400
    assert nova.get("/os-volumes/", headers=old).status_code == 404
    assert nova.get("/os-volumes/00000000-0000-4000-8000-000000000000", headers=old).status_code == 404
    assert nova.get(f"/os-volumes/{vol['id']}").status_code == 404  # gone after 2.35
    assert nova.delete(f"/os-volumes/{vol['id']}", headers=old).status_code == 202
    _wait_volume(cinder, vol["id"], "deleted")


def test_deleted_server_has_released_its_volumes(nova: httpx.Client, cinder: httpx.Client, image_id: str):
    """As in Nova, a server disappears only after its volumes are detached: the moment the API
    answers 404, the volume is available and can be deleted (Tempest deletes it right then),
    also when a detach was still in flight."""
    for detach_first in (False, True):
        sid = _new_server(nova, image_id)
        _wait_server(nova, sid, "ACTIVE")
        vid = _new_volume(cinder)["id"]
        r = nova.post(f"/servers/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vid}})
        assert r.status_code == 200, r.text
        _wait_volume(cinder, vid, "in-use")
        if detach_first:
            assert nova.delete(f"/servers/{sid}/os-volume_attachments/{vid}").status_code == 202
        assert nova.delete(f"/servers/{sid}").status_code == 204
        deadline = time.monotonic() + 60
        while nova.get(f"/servers/{sid}").status_code != 404:  # no sleep: look at the first instant
            assert time.monotonic() < deadline, "the server was never deleted"
        volume = cinder.get(f"/volumes/{vid}").json()["volume"]
        assert volume["status"] == "available" and not volume["attachments"], volume
        r = cinder.delete(f"/volumes/{vid}")
        assert r.status_code == 202, r.text
