"""Changes to attached volumes with the fake compute driver: extending an in-use volume
(block storage 3.42 → ``volume-extended`` → the guest's disk grows) and Nova's assisted volume
snapshots (``os-assisted-volume-snapshots``: the host's overlay chain, then
``os-update_snapshot_status`` back to the block storage). The fake driver writes what it did
to the guest's console, which the tests read through the API."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.compute_helpers import until
from tests.support import KumoCloud, unique

GiB = 1024**3
MV = {"OpenStack-API-Version": "compute 2.79"}


@pytest.fixture(scope="module")
def nova(cloud: KumoCloud) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token, **MV},
                      timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def cinder(cloud: KumoCloud) -> Iterator[httpx.Client]:
    catalog = cloud.admin().get("/auth/catalog").json()["catalog"]
    url = next(ep["url"] for e in catalog if e["type"] == "block-storage" for ep in e["endpoints"]
               if ep["interface"] == "public")
    with httpx.Client(base_url=url, headers={"X-Auth-Token": cloud.admin_token, "OpenStack-API-Version": "volume 3.44"},
                      timeout=60) as client:
        yield client


def _volume(cinder: httpx.Client, vid: str, status: str) -> dict:
    def check():  # type: ignore[no-untyped-def]
        v = cinder.get(f"/volumes/{vid}").json()["volume"]
        assert not v["status"].startswith("error"), v
        return v if v["status"] == status else None

    return until(f"volume {vid} {status}", check)


def _console(nova: httpx.Client, sid: str) -> str:
    return nova.post(f"/servers/{sid}/action", json={"os-getConsoleOutput": {}}).json()["output"]


@pytest.fixture(scope="module")
def image_id(cloud: KumoCloud) -> str:
    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as glance:
        r = glance.post("/images", json={"name": unique("tiny"), "disk_format": "raw", "container_format": "bare",
                                         "visibility": "public"})
        iid = r.json()["id"]
        up = glance.put(f"/images/{iid}/file", content=b"\1" * 65536,
                        headers={"Content-Type": "application/octet-stream"})
        assert up.status_code == 204, up.text
    return iid


@pytest.fixture(scope="module")
def attached(nova: httpx.Client, cinder: httpx.Client, image_id: str) -> Iterator[tuple[str, str]]:
    """(server id, volume id): a 1 GiB volume attached to an ACTIVE fake server."""
    r = cinder.post("/volumes", json={"volume": {"size": 1, "name": unique("vol")}})
    assert r.status_code == 202, r.text
    vid = r.json()["volume"]["id"]
    _volume(cinder, vid, "available")
    r = nova.post("/servers", json={"server": {"name": unique("vm"), "flavorRef": "1", "networks": "none",
                                                  "imageRef": image_id}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    until("server ACTIVE", lambda: nova.get(f"/servers/{sid}").json()["server"]["status"] == "ACTIVE")
    r = nova.post(f"/servers/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vid}})
    assert r.status_code == 200, r.text
    _volume(cinder, vid, "in-use")
    yield sid, vid
    r = nova.delete(f"/servers/{sid}/os-volume_attachments/{vid}")  # waits for volume work still in flight
    assert r.status_code == 202, r.text
    _volume(cinder, vid, "available")
    nova.delete(f"/servers/{sid}")
    cinder.delete(f"/volumes/{vid}")


def _idle(nova: httpx.Client, sid: str) -> None:
    until("no task", lambda: nova.get(f"/servers/{sid}").json()["server"]["OS-EXT-STS:task_state"] is None)


def test_extending_an_attached_volume_grows_the_guest_disk(nova: httpx.Client, cinder: httpx.Client,
                                                           attached: tuple[str, str]) -> None:
    sid, vid = attached
    # below 3.42 an in-use volume cannot be extended
    old = cinder.post(f"/volumes/{vid}/action", json={"os-extend": {"new_size": 2}},
                      headers={"OpenStack-API-Version": "volume 3.41"})
    assert old.status_code == 400, old.text
    assert "badRequest" in old.json()
    r = cinder.post(f"/volumes/{vid}/action", json={"os-extend": {"new_size": 2}},
                    headers={"OpenStack-API-Version": "volume 3.42"})
    assert r.status_code == 202, r.text
    v = _volume(cinder, vid, "in-use")
    assert v["size"] == 2
    # compute got volume-extended: an extend_volume action whose compute event succeeded ...
    def finished():  # type: ignore[no-untyped-def]
        acts = nova.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
        act = next((a for a in acts if a["action"] == "extend_volume"), None)
        if act is None:
            return None
        events = nova.get(f"/servers/{sid}/os-instance-actions/{act['request_id']}").json()["instanceAction"]["events"]
        return next((e for e in events if e["event"] == "compute_extend_volume" and e["finish_time"]), None)

    event = until("compute_extend_volume", finished)
    assert event["result"] == "Success", event
    # ... and the guest's disk follows (the fake driver says so on the console)
    assert f"fake: volume {vid} grown to {2 * GiB} bytes" in _console(nova, sid)
    # the attachment stays as it was
    assert [a["volumeId"] for a in nova.get(f"/servers/{sid}/os-volume_attachments").json()["volumeAttachments"]] \
        == [vid]
    # the event for an unknown server is a 404 for that event; not a volume grown
    r = nova.post("/os-server-external-events", headers={"OpenStack-API-Version": "compute 2.51"},
                  json={"events": [{"name": "volume-extended", "server_uuid": sid, "tag": vid},
                                   {"name": "volume-extended", "server_uuid": "00000000-0000-0000-0000-000000000000",
                                    "tag": vid}]})
    assert r.status_code == 207, r.text
    assert [e["code"] for e in r.json()["events"]] == [200, 404]
    _idle(nova, sid)


def test_assisted_snapshots_build_and_merge_the_overlay_chain(nova: httpx.Client, cinder: httpx.Client,
                                                              attached: tuple[str, str]) -> None:
    sid, vid = attached
    _idle(nova, sid)
    r = cinder.post("/snapshots", json={"snapshot": {"volume_id": vid, "name": unique("snap"), "force": True}})
    assert r.status_code == 202, r.text
    snap = r.json()["snapshot"]["id"]
    until("snapshot available", lambda: cinder.get(f"/snapshots/{snap}").json()["snapshot"]["status"] == "available")
    base = f"volume-{vid}"
    body = {"snapshot": {"volume_id": vid, "create_info": {"snapshot_id": snap, "type": "qcow2",
                                                           "new_file": f"{base}.{snap}", "id": snap}}}
    r = nova.post("/os-assisted-volume-snapshots", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"snapshot": {"id": snap, "volumeId": vid}}

    def status() -> tuple[str, str]:
        s = cinder.get(f"/snapshots/{snap}").json()["snapshot"]
        return s["status"], s.get("os-extended-snapshot-attributes:progress")

    # the host made the overlay and compute reported it to the block storage (creating, 90%)
    # before answering: the server is free again for the caller's next request
    assert status() == ("creating", "90%")
    assert f"fake: volume {vid} now writes to {base}.{snap}" in _console(nova, sid)
    _idle(nova, sid)
    r = cinder.post(f"/snapshots/{snap}/action", json={"os-reset_status": {"status": "available"}})
    assert r.status_code == 202, r.text
    # delete: pull the base into the active overlay (merge_target_file null, nothing below it)
    info = {"volume_id": vid, "type": "qcow2", "merge_target_file": None, "file_to_merge": None}
    r = nova.delete(f"/os-assisted-volume-snapshots/{snap}", params={"delete_info": json.dumps(info)})
    assert r.status_code == 204, r.text
    assert status() == ("deleting", "90%")
    assert f"fake: volume {vid} chain {base}.{snap}" in _console(nova, sid)
    _idle(nova, sid)
    # a merge the host cannot do: accepted, then reported to the block storage as error_deleting
    cinder.post(f"/snapshots/{snap}/action", json={"os-reset_status": {"status": "available"}})
    r = nova.delete(f"/os-assisted-volume-snapshots/{snap}", params={"delete_info": json.dumps({"volume_id": vid})})
    assert r.status_code == 204, r.text
    until("snapshot reported error_deleting", lambda: status()[0] == "error_deleting")
    _idle(nova, sid)
    # back to back, as Tempest does: the second waits for the first on the host, both are accepted
    cinder.post(f"/snapshots/{snap}/action", json={"os-reset_status": {"status": "available"}})
    body["snapshot"]["create_info"]["new_file"] = f"{base}.again"
    assert nova.post("/os-assisted-volume-snapshots", json=body).status_code == 200
    info = {"volume_id": vid, "type": "qcow2", "merge_target_file": None, "file_to_merge": None}
    r = nova.delete(f"/os-assisted-volume-snapshots/{snap}", params={"delete_info": json.dumps(info)})
    assert r.status_code == 204, r.text
    until("both done", lambda: f"fake: volume {vid} chain {base}.again" in _console(nova, sid))
    _idle(nova, sid)
    cinder.post(f"/snapshots/{snap}/action", json={"os-reset_status": {"status": "available"}})
    assert cinder.delete(f"/snapshots/{snap}").status_code == 202


def test_assisted_snapshot_bad_input(cloud: KumoCloud, nova: httpx.Client, attached: tuple[str, str]) -> None:
    sid, vid = attached
    _idle(nova, sid)
    good = {"snapshot_id": "s", "type": "qcow2", "new_file": "f"}
    for body in ({}, {"snapshot": {"volume_id": vid}}, {"snapshot": {"volume_id": vid, "create_info": {}}},
                 {"snapshot": {"volume_id": vid, "create_info": {**good, "type": "raw"}}},
                 {"snapshot": {"volume_id": vid, "create_info": {**good, "new_file": "../x"}}},
                 {"snapshot": {"volume_id": vid, "create_info": {**good, "extra": 1}}},
                 {"snapshot": {"volume_id": "", "create_info": good}}):
        r = nova.post("/os-assisted-volume-snapshots", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["badRequest"]["code"] == 400
    # a volume attached nowhere: 400 as Nova (no block device mapping)
    r = nova.post("/os-assisted-volume-snapshots",
                  json={"snapshot": {"volume_id": "00000000-0000-0000-0000-000000000000", "create_info": good}})
    assert r.status_code == 400 and "Block Device Mapping" in r.text, r.text
    for params in ({}, {"delete_info": "not json"}, {"delete_info": json.dumps({"type": "qcow2"})}):
        r = nova.delete("/os-assisted-volume-snapshots/s1", params=params)
        assert r.status_code == 400, (params, r.text)
    r = nova.delete("/os-assisted-volume-snapshots/s1",
                    params={"delete_info": json.dumps({"volume_id": "00000000-0000-0000-0000-000000000000"})})
    assert r.status_code == 400, r.text
    # 2.75: no other query parameters
    r = nova.delete("/os-assisted-volume-snapshots/s1", headers={"OpenStack-API-Version": "compute 2.75"},
                    params={"delete_info": json.dumps({"volume_id": vid}), "x": "1"})
    assert r.status_code == 400, r.text
    # not for project members
    token, _ = cloud.issue("demo")
    r = nova.post("/os-assisted-volume-snapshots", headers={"X-Auth-Token": token},
                  json={"snapshot": {"volume_id": vid, "create_info": good}})
    assert r.status_code == 403, r.text
