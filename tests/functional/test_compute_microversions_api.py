"""Compute microversions 2.82–2.90 on the shared cloud (fake driver): each version's switch,
through the openstack CLI where it speaks the version, else raw HTTP with the version header."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.support import KumoCloud, unique

pytestmark = pytest.mark.cli


def _mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest.fixture(scope="module")
def nova(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def demo(cloud: KumoCloud):
    token, _ = cloud.issue("demo")
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": token},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def image_id(cloud: KumoCloud, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("img") / "tiny.raw"
    path.write_bytes(b"\2" * 1048576)
    img = cloud.cli_json("image", "create", "--public", "--disk-format", "raw", "--container-format", "bare",
                         "--file", str(path), unique("mv28x"))  # fmt: skip
    return img["id"]


def _until(what: str, fn, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _wait(client: httpx.Client, sid: str, status: str) -> dict:
    def ready():  # type: ignore[no-untyped-def]
        s = client.get(f"/servers/{sid}", headers=_mv("2.90")).json()["server"]
        assert s["status"] != "ERROR", s.get("fault")
        return s if s["status"] == status and s["OS-EXT-STS:task_state"] is None else None

    return _until(f"server {sid} {status}", ready)


def _boot(client: httpx.Client, image_id: str | None, version: str = "2.37", **extra) -> str:  # type: ignore[no-untyped-def]
    body = {"name": unique("mv"), "flavorRef": "1", "networks": "none", **extra}
    if image_id:
        body["imageRef"] = image_id
    r = client.post("/servers", json={"server": body}, headers=_mv(version))
    assert r.status_code == 202, r.text
    return r.json()["server"]["id"]


def test_version_document_advertises_the_new_maximum(cloud: KumoCloud, nova: httpx.Client):
    doc = httpx.get(cloud.url + "/compute/v2.1", timeout=10).json()["version"]
    assert doc["version"] == "2.100"
    r = nova.get("/flavors", headers=_mv("2.100"))
    assert r.status_code == 200 and r.headers["OpenStack-API-Version"] == "compute 2.100"
    assert nova.get("/flavors", headers=_mv("2.101")).status_code == 406


def test_282_accelerator_request_bound_event(nova: httpx.Client, image_id: str):
    sid = _boot(nova, image_id)
    _wait(nova, sid, "ACTIVE")
    event = {"name": "accelerator-request-bound", "server_uuid": sid, "tag": str(uuid.uuid4()),
             "status": "completed"}  # fmt: skip
    r = nova.post("/os-server-external-events", json={"events": [event]}, headers=_mv("2.81"))
    assert r.status_code == 400, r.text
    r = nova.post("/os-server-external-events", json={"events": [event]}, headers=_mv("2.82"))
    assert r.status_code == 200, r.text
    assert r.json()["events"][0]["code"] == 200 and r.json()["events"][0]["name"] == "accelerator-request-bound"
    nova.delete(f"/servers/{sid}")


def test_283_non_admin_state_filters(cloud: KumoCloud, demo: httpx.Client, image_id: str):
    running = _boot(demo, image_id)
    stopped = _boot(demo, image_id)
    _wait(demo, running, "ACTIVE")
    _wait(demo, stopped, "ACTIVE")
    assert demo.post(f"/servers/{stopped}/action", json={"os-stop": None}).status_code == 202
    _wait(demo, stopped, "SHUTOFF")
    try:
        def ids(version: str, **params: str) -> set[str]:
            r = demo.get("/servers", params=params, headers=_mv(version))
            assert r.status_code == 200, r.text
            return {s["id"] for s in r.json()["servers"]} & {running, stopped}

        # before 2.83 a non-admin's state filters are dropped (as in Nova): both servers listed
        assert ids("2.82", vm_state="stopped") == {running, stopped}
        assert ids("2.83", vm_state="stopped") == {stopped}
        assert ids("2.83", power_state="1") == {running}
        assert ids("2.83", vm_state="active", task_state="None") == {running}
        assert ids("2.83", config_drive="true") == set()
        assert ids("2.83", progress="100") == {running}
        created = demo.get(f"/servers/{running}", headers=_mv("2.83")).json()["server"]["created"]
        assert running in ids("2.83", created_at=created[:10])
        assert ids("2.83", availability_zone="^nova$") == {running, stopped}
        assert ids("2.83", user_id="not-a-user") == set()
        # the openstack CLI at 2.83 (its --user filter is one of the new ones for non-admins)
        listed = cloud.cli_json("--os-compute-api-version", "2.83", "server", "list", "--user",
                                "not-a-user", cloud="kumo")  # fmt: skip
        assert not {s["ID"] for s in listed} & {running, stopped}
    finally:
        for sid in (running, stopped):
            demo.delete(f"/servers/{sid}")


def test_284_instance_action_event_details(cloud: KumoCloud, nova: httpx.Client, demo: httpx.Client,
                                           image_id: str):  # fmt: skip
    sid = _boot(demo, image_id)
    _wait(demo, sid, "ACTIVE")
    (action,) = [a for a in demo.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
                 if a["action"] == "create"]  # fmt: skip
    rid = action["request_id"]
    old = demo.get(f"/servers/{sid}/os-instance-actions/{rid}", headers=_mv("2.83")).json()["instanceAction"]
    assert old["events"] and all("details" not in e for e in old["events"])
    new = demo.get(f"/servers/{sid}/os-instance-actions/{rid}", headers=_mv("2.84")).json()["instanceAction"]
    assert new["events"] and all(e["details"] is None for e in new["events"])  # succeeded: no details
    shown = cloud.cli_json("--os-compute-api-version", "2.84", "server", "event", "show", sid, rid)
    assert shown["events"][0]["details"] is None
    demo.delete(f"/servers/{sid}")


@pytest.fixture(scope="module")
def cinder(cloud: KumoCloud):
    catalog = cloud.admin().get("/auth/catalog").json()["catalog"]
    url = next(ep["url"] for e in catalog if e["type"] == "block-storage" for ep in e["endpoints"]
               if ep["interface"] == "public")  # fmt: skip
    with httpx.Client(base_url=url, headers={"X-Auth-Token": cloud.admin_token}, timeout=60) as client:
        yield client


def _volume(cinder: httpx.Client) -> str:
    r = cinder.post("/volumes", json={"volume": {"size": 1, "name": unique("mvvol")}})
    assert r.status_code == 202, r.text
    vid = r.json()["volume"]["id"]
    _until("volume available", lambda: cinder.get(f"/volumes/{vid}").json()["volume"]["status"] == "available")
    return vid


def test_285_and_289_volume_attachments(cloud: KumoCloud, nova: httpx.Client, cinder: httpx.Client,
                                        image_id: str):  # fmt: skip
    sid = _boot(nova, image_id)
    vid = _volume(cinder)
    _wait(nova, sid, "ACTIVE")
    try:
        r = nova.post(f"/servers/{sid}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vid}},
                      headers=_mv("2.89"))  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["volumeAttachment"]["id"] == vid  # the POST response keeps its 2.79 shape
        _until("in-use", lambda: cinder.get(f"/volumes/{vid}").json()["volume"]["status"] == "in-use")
        cinder_att = cinder.get(f"/volumes/{vid}").json()["volume"]["attachments"][0]["attachment_id"]
        # 2.89: id gone, attachment_id (block storage's) and bdm_uuid there
        (old,) = nova.get(f"/servers/{sid}/os-volume_attachments", headers=_mv("2.88")).json()["volumeAttachments"]
        assert old["id"] == vid and "attachment_id" not in old and "bdm_uuid" not in old
        (new,) = nova.get(f"/servers/{sid}/os-volume_attachments", headers=_mv("2.89")).json()["volumeAttachments"]
        assert "id" not in new and new["attachment_id"] == cinder_att and uuid.UUID(new["bdm_uuid"])
        one = nova.get(f"/servers/{sid}/os-volume_attachments/{vid}", headers=_mv("2.89")).json()
        assert one["volumeAttachment"]["bdm_uuid"] == new["bdm_uuid"]
        listed = cloud.cli_json("--os-compute-api-version", "2.89", "server", "volume", "list", sid)
        assert listed[0]["BlockDeviceMapping UUID"] == new["bdm_uuid"]
        assert listed[0]["Attachment ID"] == cinder_att
        # 2.85: delete_on_termination is updatable; other fields may only repeat their value
        body = {"volumeAttachment": {"volumeId": vid, "delete_on_termination": True}}
        assert nova.put(f"/servers/{sid}/os-volume_attachments/{vid}", json=body,
                        headers=_mv("2.84")).status_code == 400  # fmt: skip
        r = nova.put(f"/servers/{sid}/os-volume_attachments/{vid}", json=body, headers=_mv("2.85"))
        assert r.status_code == 202, r.text
        shown = nova.get(f"/servers/{sid}/os-volume_attachments/{vid}", headers=_mv("2.85")).json()
        assert shown["volumeAttachment"]["delete_on_termination"] is True
        res = cloud.cli("--os-compute-api-version", "2.85", "server", "volume", "update",
                        "--preserve-on-termination", sid, vid)  # fmt: skip
        assert res.returncode == 0, res.stderr
        shown = nova.get(f"/servers/{sid}/os-volume_attachments/{vid}", headers=_mv("2.85")).json()
        assert shown["volumeAttachment"]["delete_on_termination"] is False
        bad = {"volumeAttachment": {"volumeId": vid, "device": "/dev/vdz"}}
        r = nova.put(f"/servers/{sid}/os-volume_attachments/{vid}", json=bad, headers=_mv("2.85"))
        assert r.status_code == 400 and "not mutable" in r.text
        missing = str(uuid.uuid4())
        r = nova.put(f"/servers/{sid}/os-volume_attachments/{missing}",
                     json={"volumeAttachment": {"volumeId": missing}}, headers=_mv("2.85"))  # fmt: skip
        assert r.status_code == 404, r.text
    finally:
        nova.delete(f"/servers/{sid}")
        _until("server gone", lambda: nova.get(f"/servers/{sid}").status_code == 404)
        _until("volume free or gone", lambda: cinder.get(f"/volumes/{vid}").status_code == 404
               or cinder.get(f"/volumes/{vid}").json()["volume"]["status"] == "available")  # fmt: skip
        cinder.delete(f"/volumes/{vid}")


def test_286_flavor_extra_spec_validation(cloud: KumoCloud, nova: httpx.Client):
    flavor = cloud.cli_json("flavor", "create", "--ram", "64", "--disk", "1", "--vcpus", "1", unique("mvflv"))
    fid = flavor["id"]
    try:
        def put(version: str, specs: dict) -> httpx.Response:
            return nova.post(f"/flavors/{fid}/os-extra_specs", json={"extra_specs": specs}, headers=_mv(version))

        assert put("2.85", {"hw:cpu_policy": "bogus", "hw:nonsense": "1"}).status_code == 200
        r = put("2.86", {"hw:cpu_policy": "bogus"})
        assert r.status_code == 400 and "hw:cpu_policy" in r.text
        assert put("2.86", {"hw:nonsense": "1"}).status_code == 400
        assert put("2.86", {"hw:numa_nodes": "0"}).status_code == 400
        assert put("2.86", {"trait:HW_CPU_X86_AVX2": "maybe"}).status_code == 400
        assert put("2.86", {"resources:VCPU": "x"}).status_code == 400
        ok = put("2.86", {"hw:cpu_policy": "shared", "foo:bar": "baz", "plain": "x", "trait:HW_CPU_X86_AVX2":
                          "required", "resources1:CUSTOM_GOLD": "1", "quota:disk_read_bytes_sec": "10240"})  # fmt: skip
        assert ok.status_code == 200, ok.text
        r = nova.put(f"/flavors/{fid}/os-extra_specs/hw:mem_page_size", json={"hw:mem_page_size": "huge"},
                     headers=_mv("2.86"))  # fmt: skip
        assert r.status_code == 400, r.text
        res = cloud.cli("--os-compute-api-version", "2.86", "flavor", "set", "--property", "hw:cpu_policy=wrong", fid)
        assert res.returncode != 0 and "hw:cpu_policy" in res.stderr
        res = cloud.cli("--os-compute-api-version", "2.86", "flavor", "set", "--property", "hw:cpu_policy=dedicated",
                        fid)  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert nova.get(f"/flavors/{fid}/os-extra_specs").json()["extra_specs"]["hw:cpu_policy"] == "dedicated"
    finally:
        nova.delete(f"/flavors/{fid}")


def test_287_rescue_and_rebuild_of_a_volume_backed_server(cloud: KumoCloud, nova: httpx.Client, image_id: str,
                                                          tmp_path):  # fmt: skip
    bdm = [{"boot_index": 0, "source_type": "image", "uuid": image_id, "destination_type": "volume",
            "volume_size": 1, "delete_on_termination": True}]  # fmt: skip
    sid = _boot(nova, None, block_device_mapping_v2=bdm)
    _wait(nova, sid, "ACTIVE")
    try:
        rescue = {"rescue": {"rescue_image_ref": image_id}}
        r = nova.post(f"/servers/{sid}/action", json=rescue, headers=_mv("2.86"))
        assert r.status_code == 400 and "Cannot rescue a volume-backed instance" in r.text
        # 2.87 allows it only as a stable device rescue: this image has no hw_rescue_device/_bus
        # (tests/functional/test_compute_rescue.py rescues one with an image that has them)
        r = nova.post(f"/servers/{sid}/action", json=rescue, headers=_mv("2.87"))
        assert r.status_code == 400 and "Cannot rescue a volume-backed instance" in r.text
        assert _wait(nova, sid, "ACTIVE")["status"] == "ACTIVE"
        # rebuild (before 2.93): only with the root volume's own image, and the volume is not reimaged
        other_file = tmp_path / "other.raw"
        other_file.write_bytes(b"\5" * 1048576)
        other = cloud.cli_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                               "--file", str(other_file), unique("other"))  # fmt: skip
        r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": other["id"]}}, headers=_mv("2.92"))
        assert r.status_code == 400 and "volume-backed" in r.text
        r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": image_id}}, headers=_mv("2.92"))
        assert r.status_code == 202, r.text
        assert _wait(nova, sid, "ACTIVE")["image"] == ""  # still volume-backed
        cloud.cli("image", "delete", other["id"])
    finally:
        nova.delete(f"/servers/{sid}")


def test_288_hypervisors(cloud: KumoCloud, nova: httpx.Client):
    (hyp, *_) = nova.get("/os-hypervisors/detail", headers=_mv("2.87")).json()["hypervisors"]
    assert "vcpus" in hyp and "cpu_info" in hyp and "uptime" not in hyp
    (new, *_) = nova.get("/os-hypervisors/detail", headers=_mv("2.88")).json()["hypervisors"]
    for gone in ("vcpus", "cpu_info", "free_disk_gb", "local_gb", "memory_mb", "running_vms", "current_workload"):
        assert gone not in new
    assert " up " in new["uptime"] and "load average" in new["uptime"]  # the host's own, from its agent
    assert new["hypervisor_hostname"] == hyp["hypervisor_hostname"]
    before = nova.get(f"/os-hypervisors/{new['id']}/uptime", headers=_mv("2.87")).json()["hypervisor"]
    assert " up " in before["uptime"]
    shown = nova.get(f"/os-hypervisors/{new['id']}", headers=_mv("2.88")).json()["hypervisor"]
    assert "uptime" in shown and "vcpus" not in shown
    assert nova.get("/os-hypervisors/statistics", headers=_mv("2.87")).status_code == 200
    assert nova.get("/os-hypervisors/statistics", headers=_mv("2.88")).status_code == 404
    assert nova.get(f"/os-hypervisors/{new['id']}/uptime", headers=_mv("2.88")).status_code == 404
    listed = cloud.cli_json("--os-compute-api-version", "2.88", "hypervisor", "show", new["id"])
    assert listed["hypervisor_hostname"] == new["hypervisor_hostname"]


def test_290_hostname(cloud: KumoCloud, demo: httpx.Client, image_id: str):
    r = demo.post("/servers", json={"server": {"name": unique("mv"), "flavorRef": "1", "imageRef": image_id,
                                               "networks": "none", "hostname": "web-1"}}, headers=_mv("2.89"))  # fmt: skip
    assert r.status_code == 400, r.text
    for bad in ("web_1", "-web", "x", "a.b", "w" * 64):
        r = demo.post("/servers", json={"server": {"name": unique("mv"), "flavorRef": "1", "imageRef": image_id,
                                                   "networks": "none", "hostname": bad}}, headers=_mv("2.90"))  # fmt: skip
        assert r.status_code == 400, (bad, r.text)
    r = demo.post("/servers", json={"server": {"name": unique("mv"), "flavorRef": "1", "imageRef": image_id,
                                               "networks": "none", "hostname": "web-1", "max_count": 2}},
                  headers=_mv("2.90"))  # fmt: skip
    assert r.status_code == 400 and "multiple instances" in r.text
    sid = _boot(demo, image_id, version="2.90", hostname="web-1")
    try:
        server = _wait(demo, sid, "ACTIVE")
        assert server["OS-EXT-SRV-ATTR:hostname"] == "web-1"  # a non-admin sees it from 2.90
        old = demo.get(f"/servers/{sid}", headers=_mv("2.89")).json()["server"]
        assert "OS-EXT-SRV-ATTR:hostname" not in old
        r = demo.put(f"/servers/{sid}", json={"server": {"hostname": "web-2"}}, headers=_mv("2.90"))
        assert r.status_code == 200 and r.json()["server"]["OS-EXT-SRV-ATTR:hostname"] == "web-2"
        assert demo.put(f"/servers/{sid}", json={"server": {"hostname": "web-3"}},
                        headers=_mv("2.89")).status_code == 400  # fmt: skip
        r = demo.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": image_id, "hostname": "web-4"}},
                      headers=_mv("2.90"))  # fmt: skip
        assert r.status_code == 202, r.text
        assert _wait(demo, sid, "ACTIVE")["OS-EXT-SRV-ATTR:hostname"] == "web-4"
        # the openstack CLI sets it too
        res = cloud.cli("--os-compute-api-version", "2.90", "server", "set", "--hostname", "web-5", sid, cloud="kumo")
        assert res.returncode == 0, res.stderr
        shown = cloud.cli_json("--os-compute-api-version", "2.90", "server", "show", sid, cloud="kumo")
        assert shown["OS-EXT-SRV-ATTR:hostname"] == "web-5"
    finally:
        demo.delete(f"/servers/{sid}")


def test_292_keypairs_are_imported_and_may_have_dots_and_ats(cloud: KumoCloud, demo: httpx.Client, tmp_path):
    generated = demo.post("/os-keypairs", json={"keypair": {"name": unique("gen")}}, headers=_mv("2.91"))
    assert generated.status_code == 201 and generated.json()["keypair"]["private_key"]
    public = generated.json()["keypair"]["public_key"]
    demo.delete(f"/os-keypairs/{generated.json()['keypair']['name']}")
    r = demo.post("/os-keypairs", json={"keypair": {"name": unique("gen")}}, headers=_mv("2.92"))
    assert r.status_code == 400 and "public_key" in r.text  # no server-side generation from 2.92
    dotted = unique("me") + "@example.org"
    assert demo.post("/os-keypairs", json={"keypair": {"name": dotted, "public_key": public}},
                     headers=_mv("2.91")).status_code == 400  # fmt: skip
    assert demo.post("/os-keypairs", json={"keypair": {"name": "a.b", "public_key": public}},
                     headers=_mv("2.91")).status_code == 400  # fmt: skip
    r = demo.post("/os-keypairs", json={"keypair": {"name": dotted, "public_key": public}}, headers=_mv("2.92"))
    assert r.status_code == 201 and "private_key" not in r.json()["keypair"], r.text
    assert demo.get(f"/os-keypairs/{dotted}", headers=_mv("2.92")).json()["keypair"]["public_key"] == public
    assert demo.delete(f"/os-keypairs/{dotted}", headers=_mv("2.92")).status_code == 204
    # the openstack CLI at 2.92 generates the key itself and imports its public half
    name = unique("cli") + ".key"
    key_file = tmp_path / "id"
    made = cloud.cli_json("--os-compute-api-version", "2.92", "keypair", "create", "--private-key", str(key_file),
                          name, cloud="kumo")  # fmt: skip
    assert made["name"] == name and key_file.read_text().startswith("-----BEGIN")
    assert cloud.cli("keypair", "delete", name, cloud="kumo").returncode == 0
