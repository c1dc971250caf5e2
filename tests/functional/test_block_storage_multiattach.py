"""Multiattach volumes end to end (fake compute driver): a volume type with ``multiattach='<is> True'``
made with the openstack CLI, one volume attached to two servers (CLI and openstacksdk), Nova's
2.60 gate, boot from a multiattach volume, and Cinder's retype and attachment rules."""

from __future__ import annotations

import httpx
import pytest

from tests.functional.test_block_storage_attach import (
    _attachments,
    _new_server,
    _new_volume,
    _until,
    _wait_server,
    _wait_volume,
)
from tests.support import KumoCloud, unique

pytestmark = pytest.mark.cli

NEW = {"OpenStack-API-Version": "compute 2.60"}
OLD = {"OpenStack-API-Version": "compute 2.59"}
NOVA_MESSAGE = "Multiattach volumes are only supported starting with compute API version 2.60."


@pytest.fixture(scope="module")
def nova(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token, **NEW},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def cinder(cloud: KumoCloud):
    catalog = cloud.admin().get("/auth/catalog").json()["catalog"]
    url = next(ep["url"] for e in catalog if e["type"] == "block-storage" for ep in e["endpoints"]
               if ep["interface"] == "public")  # fmt: skip
    with httpx.Client(base_url=url, headers={"X-Auth-Token": cloud.admin_token, "OpenStack-API-Version": "volume 3.60"},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def image_id(cloud: KumoCloud) -> str:
    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as glance:  # fmt: skip
        r = glance.post("/images", json={"name": unique("tiny"), "disk_format": "raw", "container_format": "bare",
                                         "visibility": "public"})  # fmt: skip
        iid = r.json()["id"]
        up = glance.put(f"/images/{iid}/file", content=b"\1" * 1048576,
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert up.status_code == 204, up.text
    return iid


@pytest.fixture(scope="module")
def shared_type(cloud: KumoCloud) -> str:
    """A multiattach volume type, made with the CLI as an operator would."""
    name = unique("multiattach")
    made = cloud.cli_json("volume", "type", "create", "--property", "multiattach=<is> True", name)
    assert made["properties"] == {"multiattach": "<is> True"} or "multiattach" in str(made["properties"])
    return name


@pytest.fixture(scope="module")
def plain_type(cloud: KumoCloud) -> str:
    name = unique("plain")
    cloud.cli_json("volume", "type", "create", name)
    return name


def _cli_volume(cloud: KumoCloud, cinder: httpx.Client, vtype: str) -> dict:
    made = cloud.cli_json("volume", "create", "--type", vtype, "--size", "1", unique("shared"))
    return _wait_volume(cinder, made["id"], "available")


def _attach(nova: httpx.Client, sid: str, vid: str, headers: dict | None = None) -> httpx.Response:
    return nova.post(f"/servers/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vid}},
                     headers=headers or {})  # fmt: skip


def _wait_attachments(cinder: httpx.Client, vid: str, count: int) -> dict:
    def check() -> dict | None:
        v = cinder.get(f"/volumes/{vid}").json()["volume"]
        return v if len(v["attachments"]) == count and v["status"] == ("available" if count == 0 else "in-use") \
            else None

    return _until(f"volume {vid} with {count} attachments", check)


def test_one_volume_on_two_servers(cloud: KumoCloud, nova: httpx.Client, cinder: httpx.Client, image_id: str,
                                   shared_type: str) -> None:  # fmt: skip
    vol = _cli_volume(cloud, cinder, shared_type)
    assert vol["multiattach"] is True and vol["volume_type"] == shared_type
    one, two = _new_server(nova, image_id), _new_server(nova, image_id)
    try:
        _wait_server(nova, one, "ACTIVE")
        _wait_server(nova, two, "ACTIVE")
        # below 2.60 even the first attachment of a multiattach volume is refused, as Nova does
        r = _attach(nova, one, vol["id"], OLD)
        assert r.status_code == 400 and r.json()["badRequest"]["message"] == NOVA_MESSAGE, r.text
        assert cinder.get(f"/volumes/{vol['id']}").json()["volume"]["status"] == "available"
        # the CLI (it negotiates a microversion >= 2.60) and openstacksdk attach it to both
        res = cloud.cli("server", "add", "volume", one, vol["id"])
        assert res.returncode == 0, res.stderr
        _wait_attachments(cinder, vol["id"], 1)
        conn = cloud.sdk()
        conn.compute.create_volume_attachment(two, volume_id=vol["id"])
        shown = _wait_attachments(cinder, vol["id"], 2)
        assert sorted(a["server_id"] for a in shown["attachments"]) == sorted([one, two])
        assert len({a["attachment_id"] for a in shown["attachments"]}) == 2
        sdk_vol = conn.block_storage.get_volume(vol["id"])
        assert sdk_vol.is_multiattach is True and len(sdk_vol.attachments) == 2
        for sid in (one, two):
            (att,) = _attachments(nova, sid)
            assert att["volumeId"] == vol["id"] and att["serverId"] == sid
        # never twice on the same server
        again = _attach(nova, one, vol["id"])
        assert again.status_code == 400 and "already attached" in again.text, again.text
        # each server's connection to the volume is marked shared for its hypervisor
        atts = cinder.get("/attachments/detail", params={"volume_id": vol["id"]},
                          headers={"OpenStack-API-Version": "volume 3.27"}).json()["attachments"]  # fmt: skip
        assert len(atts) == 2 and all(a["connection_info"]["multiattach"] is True for a in atts), atts
        # detaching one leaves the volume in-use on the other
        res = cloud.cli("server", "remove", "volume", one, vol["id"])
        assert res.returncode == 0, res.stderr
        left = _wait_attachments(cinder, vol["id"], 1)
        assert left["attachments"][0]["server_id"] == two
        _until("server one has no attachment", lambda: _attachments(nova, one) == [])
        assert len(_attachments(nova, two)) == 1
        assert nova.delete(f"/servers/{two}/os-volume_attachments/{vol['id']}").status_code == 202
        _wait_attachments(cinder, vol["id"], 0)
    finally:
        nova.delete(f"/servers/{one}")
        nova.delete(f"/servers/{two}")
    _wait_volume(cinder, vol["id"], "available")
    assert cinder.delete(f"/volumes/{vol['id']}").status_code == 202


def test_a_plain_volume_still_takes_one_server(nova: httpx.Client, cinder: httpx.Client, image_id: str,
                                               plain_type: str) -> None:  # fmt: skip
    vol = _new_volume(cinder, volume_type=plain_type)
    assert vol["multiattach"] is False
    one, two = _new_server(nova, image_id), _new_server(nova, image_id)
    try:
        _wait_server(nova, one, "ACTIVE")
        _wait_server(nova, two, "ACTIVE")
        assert _attach(nova, one, vol["id"], OLD).status_code == 200  # no gate for a plain volume
        _wait_volume(cinder, vol["id"], "in-use")
        r = _attach(nova, two, vol["id"])
        assert r.status_code == 400, r.text
        atts = cinder.get("/attachments/detail", params={"volume_id": vol["id"]},
                          headers={"OpenStack-API-Version": "volume 3.27"}).json()["attachments"]  # fmt: skip
        assert [a["connection_info"]["multiattach"] for a in atts] == [False]
    finally:
        nova.delete(f"/servers/{one}")
        nova.delete(f"/servers/{two}")
    _wait_volume(cinder, vol["id"], "available")
    assert cinder.delete(f"/volumes/{vol['id']}").status_code == 202


def test_boot_two_servers_from_one_multiattach_volume(nova: httpx.Client, cinder: httpx.Client, image_id: str,
                                                      shared_type: str) -> None:  # fmt: skip
    vol = _new_volume(cinder, volume_type=shared_type, imageRef=image_id)
    assert vol["multiattach"] is True and vol["bootable"] == "true"
    bdm = [{"boot_index": 0, "uuid": vol["id"], "source_type": "volume", "destination_type": "volume",
            "delete_on_termination": False}]  # fmt: skip
    body = {"server": {"name": unique("bfv"), "flavorRef": "1", "networks": "none", "block_device_mapping_v2": bdm}}
    r = nova.post("/servers", json=body, headers=OLD)
    assert r.status_code == 400 and r.json()["badRequest"]["message"] == NOVA_MESSAGE, r.text
    first = _new_server(nova, None, block_device_mapping_v2=bdm)
    second = None
    try:
        _wait_server(nova, first, "ACTIVE")
        _wait_volume(cinder, vol["id"], "in-use")
        second = _new_server(nova, None, block_device_mapping_v2=bdm)  # the volume is in-use: allowed
        _wait_server(nova, second, "ACTIVE")
        shown = _wait_attachments(cinder, vol["id"], 2)
        assert sorted(a["server_id"] for a in shown["attachments"]) == sorted([first, second])
        for sid in (first, second):
            assert [a["volumeId"] for a in _attachments(nova, sid)] == [vol["id"]]
    finally:
        nova.delete(f"/servers/{first}")
        if second:
            nova.delete(f"/servers/{second}")
    _wait_attachments(cinder, vol["id"], 0)  # delete_on_termination false: the volume stays
    assert cinder.delete(f"/volumes/{vol['id']}").status_code == 202


def test_retype_follows_cinders_multiattach_rules(cloud: KumoCloud, nova: httpx.Client, cinder: httpx.Client,
                                                  image_id: str, shared_type: str, plain_type: str) -> None:  # fmt: skip
    vol = _cli_volume(cloud, cinder, plain_type)
    assert vol["multiattach"] is False
    res = cloud.cli("volume", "set", "--type", shared_type, "--migration-policy", "never", vol["id"])
    assert res.returncode == 0, res.stderr
    v = cinder.get(f"/volumes/{vol['id']}").json()["volume"]
    assert v["multiattach"] is True and v["volume_type"] == shared_type
    sid = _new_server(nova, image_id)
    try:
        _wait_server(nova, sid, "ACTIVE")
        assert _attach(nova, sid, vol["id"]).status_code == 200
        _wait_volume(cinder, vol["id"], "in-use")
        # an in-use volume cannot stop (or start) being multiattach
        r = cinder.post(f"/volumes/{vol['id']}/action", json={"os-retype": {"new_type": plain_type}})
        assert r.status_code == 400, r.text
        assert "only allowed on available volumes" in r.json()["badRequest"]["message"]
        res = cloud.cli("volume", "set", "--type", plain_type, vol["id"])
        assert res.returncode != 0 and "available" in res.stderr
        # another multiattach type is fine while in use
        other = unique("multiattach2")
        cloud.cli_json("volume", "type", "create", "--property", "multiattach=<is> True", other)
        r = cinder.post(f"/volumes/{vol['id']}/action", json={"os-retype": {"new_type": other}})
        assert r.status_code == 202, r.text
        v = cinder.get(f"/volumes/{vol['id']}").json()["volume"]
        assert v["volume_type"] == other and v["multiattach"] is True and v["status"] == "in-use"
    finally:
        nova.delete(f"/servers/{sid}")
    _wait_volume(cinder, vol["id"], "available")
    r = cinder.post(f"/volumes/{vol['id']}/action", json={"os-retype": {"new_type": plain_type}})
    assert r.status_code == 202, r.text
    assert cinder.get(f"/volumes/{vol['id']}").json()["volume"]["multiattach"] is False
    assert cinder.delete(f"/volumes/{vol['id']}").status_code == 202


def test_cinder_attachments_of_a_multiattach_volume(cinder: httpx.Client) -> None:
    """The block storage API on its own: the deprecated create flag, several attachments, and the
    legacy detach that must name one of them."""
    legacy = cinder.post("/volumes", json={"volume": {"size": 1, "multiattach": True}},
                         headers={"OpenStack-API-Version": "volume 3.0"})  # fmt: skip
    assert legacy.status_code == 202, legacy.text
    vid = legacy.json()["volume"]["id"]
    vol = _wait_volume(cinder, vid, "available")
    assert vol["multiattach"] is True
    mv = {"OpenStack-API-Version": "volume 3.44"}
    servers = ["11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-000000000000"]
    ids = []
    for sid in servers:
        r = cinder.post("/attachments", headers=mv, json={"attachment": {
            "volume_uuid": vid, "instance_uuid": sid, "connector": {"host": "h", "mountpoint": "/dev/vdb"}}})
        assert r.status_code == 200, r.text
        assert r.json()["attachment"]["connection_info"]["multiattach"] is True
        ids.append(r.json()["attachment"]["id"])
        assert cinder.post(f"/attachments/{ids[-1]}/action", headers=mv,
                           json={"os-complete": None}).status_code == 204  # fmt: skip
    v = cinder.get(f"/volumes/{vid}").json()["volume"]
    assert v["status"] == "in-use" and sorted(a["server_id"] for a in v["attachments"]) == sorted(servers)
    r = cinder.post(f"/volumes/{vid}/action", json={"os-detach": {}})
    assert r.status_code == 400 and "attachment_id" in r.text, r.text
    assert cinder.post(f"/volumes/{vid}/action", json={"os-detach": {"attachment_id": ids[0]}}).status_code == 202
    v = cinder.get(f"/volumes/{vid}").json()["volume"]
    assert v["status"] == "in-use" and [a["server_id"] for a in v["attachments"]] == [servers[1]]
    assert cinder.delete(f"/volumes/{vid}").status_code == 400  # still attached
    assert cinder.delete(f"/attachments/{ids[1]}", headers=mv).status_code == 200
    assert cinder.get(f"/volumes/{vid}").json()["volume"]["status"] == "available"
    assert cinder.delete(f"/volumes/{vid}").status_code == 202


def test_no_multiattach_volume_for_a_shelved_offloaded_server(nova: httpx.Client, cinder: httpx.Client,
                                                               image_id: str, shared_type: str) -> None:  # fmt: skip
    shared = _new_volume(cinder, volume_type=shared_type)
    sid = _new_server(nova, image_id)
    try:
        _wait_server(nova, sid, "ACTIVE")
        assert nova.post(f"/servers/{sid}/action", json={"shelve": None}).status_code == 202
        _wait_server(nova, sid, "SHELVED_OFFLOADED")
        r = _attach(nova, sid, shared["id"])
        assert r.status_code == 400, r.text
        assert r.json()["badRequest"]["message"] == (
            "Attaching multiattach volumes is not supported for shelved-offloaded instances.")
        assert cinder.get(f"/volumes/{shared['id']}").json()["volume"]["status"] == "available"
    finally:
        nova.delete(f"/servers/{sid}")
    assert cinder.delete(f"/volumes/{shared['id']}").status_code == 202
