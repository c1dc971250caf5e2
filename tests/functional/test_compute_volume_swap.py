"""``PUT /servers/{id}/os-volume_attachments/{old}`` with another volume: as Nova since its 2025
fix, only Cinder's migration callback may swap, so a swap of a volume that is not migrating is a
409 that changes nothing (driven with openstacksdk and raw HTTP, fake compute driver)."""

from __future__ import annotations

import uuid

import httpx
import openstack.exceptions
import pytest

from tests.functional.test_block_storage_attach import (
    _attachments,
    _new_server,
    _new_volume,
    _wait_server,
    _wait_volume,
)
from tests.functional.test_block_storage_multiattach import cinder, image_id, nova  # noqa: F401 (fixtures)
from tests.support import KumoCloud

pytestmark = pytest.mark.cli


def _swap(client: httpx.Client, sid: str, old: str, new: str, version: str = "2.60") -> httpx.Response:
    return client.put(f"/servers/{sid}/os-volume_attachments/{old}", json={"volumeAttachment": {"volumeId": new}},
                    headers={"OpenStack-API-Version": f"compute {version}"})  # fmt: skip


def test_swap_is_refused_unless_the_volume_is_migrating(cloud: KumoCloud, nova: httpx.Client,  # noqa: F811
                                                        cinder: httpx.Client, image_id: str) -> None:  # noqa: F811
    old, new = _new_volume(cinder), _new_volume(cinder)
    sid = _new_server(nova, image_id)
    try:
        _wait_server(nova, sid, "ACTIVE")
        assert nova.post(f"/servers/{sid}/os-volume_attachments",
                         json={"volumeAttachment": {"volumeId": old["id"]}}).status_code == 200  # fmt: skip
        _wait_volume(cinder, old["id"], "in-use")
        # openstacksdk's update_volume_attachment with another volume id is a swap: 409, nothing moves
        conn = cloud.sdk()
        with pytest.raises(openstack.exceptions.ConflictException) as err:
            conn.compute.update_volume_attachment(sid, old["id"], volume_id=new["id"])
        assert f"volume {old['id']} is not migrating; this API should only be called by Cinder" in str(err.value)
        r = _swap(nova, sid, old["id"], new["id"])
        assert r.status_code == 409, r.text
        assert r.json()["conflictingRequest"]["message"] == (
            f"volume {old['id']} is not migrating; this API should only be called by Cinder")
        # before 2.85 every PUT is a swap, even to the same volume
        assert _swap(nova, sid, old["id"], old["id"], "2.84").status_code == 409
        assert [a["volumeId"] for a in _attachments(nova, sid)] == [old["id"]]
        assert cinder.get(f"/volumes/{old['id']}").json()["volume"]["status"] == "in-use"
        assert cinder.get(f"/volumes/{new['id']}").json()["volume"]["status"] == "available"
        # an unknown old volume is 404; unknown server 404; a non-admin is refused first
        assert _swap(nova, sid, str(uuid.uuid4()), new["id"]).status_code == 404
        assert _swap(nova, str(uuid.uuid4()), old["id"], new["id"]).status_code == 404
        demo, _ = cloud.issue("demo")
        r = nova.put(f"/servers/{sid}/os-volume_attachments/{old['id']}",
                     json={"volumeAttachment": {"volumeId": new["id"]}},
                     headers={"X-Auth-Token": demo, "OpenStack-API-Version": "compute 2.60"})  # fmt: skip
        assert r.status_code == 403, r.text
        # a volume an operator marked migrating by hand: the new volume must exist (400, it is in
        # the body), and kumo's block storage never migrates attached volumes, so the swap is a 501
        r = cinder.post(f"/volumes/{old['id']}/action",
                        json={"os-reset_status": {"migration_status": "migrating"}})  # fmt: skip
        assert r.status_code == 202, r.text
        assert _swap(nova, sid, old["id"], str(uuid.uuid4())).status_code == 400
        r = _swap(nova, sid, old["id"], new["id"])
        assert r.status_code == 501 and "does not migrate attached volumes" in r.text, r.text
        assert [a["volumeId"] for a in _attachments(nova, sid)] == [old["id"]]
        cinder.post(f"/volumes/{old['id']}/action", json={"os-reset_status": {"migration_status": "none"}})
    finally:
        nova.delete(f"/servers/{sid}")
    _wait_volume(cinder, old["id"], "available")
    for v in (old, new):
        assert cinder.delete(f"/volumes/{v['id']}").status_code == 202
