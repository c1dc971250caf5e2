"""Block storage driven by the real clients (the openstack CLI, openstacksdk, raw HTTP) against a
real kumo whose volume agent runs the file back end (qcow2 files made with qemu-img)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support import KumoCloud, unique

pytestmark = [
    pytest.mark.cli,
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (apt qemu-utils) is not installed"),
]


def _until(what: str, fn, timeout: float = 180.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _wait(cloud: KumoCloud, kind: str, item_id: str, status: str, *_cmd: str) -> dict:
    """Poll the API directly (cheaper than the CLI) until ``kind`` reaches ``status``."""
    collection = {"volume": "volumes", "snapshot": "snapshots", "backup": "backups"}[kind]
    headers = {"X-Auth-Token": cloud.admin_token, "OpenStack-API-Version": "volume 3.60"}

    def check() -> dict | None:
        r = httpx.get(f"{cloud.url}/volume/v3/{collection}/{item_id}", headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        doc = r.json()[kind]
        assert doc["status"] not in ("error", "error_restoring", "error_extending"), doc
        return doc if doc["status"] == status else None

    return _until(f"{kind} {item_id} {status}", check)


def _gone(cloud: KumoCloud, kind: str, item_id: str) -> None:
    collection = {"volume": "volumes", "snapshot": "snapshots", "backup": "backups"}[kind]
    headers = {"X-Auth-Token": cloud.admin_token}
    _until(f"{kind} {item_id} gone", lambda: httpx.get(f"{cloud.url}/volume/v3/{collection}/{item_id}",
                                                       headers=headers, timeout=30).status_code == 404)


def _image_active(cloud: KumoCloud, name: str) -> dict:
    headers = {"X-Auth-Token": cloud.admin_token}

    def check() -> dict | None:
        images = httpx.get(f"{cloud.url}/image/v2/images", params={"name": name}, headers=headers,
                           timeout=30).json()["images"]
        assert not images or images[0]["status"] not in ("killed", "deleted"), images
        return images[0] if images and images[0]["status"] == "active" else None

    return _until(f"image {name} active", check)


@pytest.fixture(scope="module")
def cinder(cloud: KumoCloud):
    token = cloud.admin_token
    with httpx.Client(base_url=cloud.url + "/volume", headers={"X-Auth-Token": token}, timeout=60) as c:
        yield c


def test_version_document_and_microversion_echo(cloud: KumoCloud, cinder: httpx.Client) -> None:
    root = httpx.get(cloud.url + "/volume/")
    assert root.status_code == 300
    (v3,) = root.json()["versions"]
    assert v3["id"] == "v3.0" and v3["min_version"] == "3.0" and v3["version"].startswith("3.")
    r = cinder.get("/v3/volumes", headers={"OpenStack-API-Version": "volume 3.27"})
    assert r.status_code == 200 and r.headers["OpenStack-API-Version"] == "volume 3.27"
    bad = cinder.get("/v3/volumes", headers={"OpenStack-API-Version": "volume 9.0"})
    assert bad.status_code == 406 and "computeFault" not in bad.text


def test_volume_lifecycle_with_the_cli(cloud: KumoCloud) -> None:
    name = unique("vol")
    vol = cloud.cli_json("volume", "create", "--size", "1", "--property", "k=v", name)
    vol = _wait(cloud, "volume", vol["id"], "available")
    assert vol["size"] == 1 and vol["metadata"] == {"k": "v"} and vol["volume_type"] == "__DEFAULT__"
    listed = cloud.cli_json("volume", "list", "--name", name)
    assert [v["ID"] for v in listed] == [vol["id"]]
    res = cloud.cli("volume", "set", "--name", name + "-x", "--description", "d", "--size", "2", vol["id"])
    assert res.returncode == 0, res.stderr
    _until("extend", lambda: _wait(cloud, "volume", vol["id"], "available")["size"] == 2)
    shown = cloud.cli_json("volume", "show", vol["id"])
    assert shown["name"] == name + "-x" and shown["description"] == "d" and shown["status"] == "available"
    # the agent made a real 2 GiB qcow2 file
    path = cloud.data_dir / "volumes" / f"volume-{vol['id']}"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(path)],
                                     capture_output=True, text=True, check=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 2 * 1024**3
    assert cloud.cli("volume", "delete", vol["id"]).returncode == 0
    _gone(cloud, "volume", vol["id"])
    assert not path.exists()


def test_snapshots_and_clones(cloud: KumoCloud) -> None:
    vol = cloud.cli_json("volume", "create", "--size", "1", unique("src"))
    _wait(cloud, "volume", vol["id"], "available")
    snap = cloud.cli_json("volume", "snapshot", "create", "--volume", vol["id"], unique("snap"))
    _wait(cloud, "snapshot", snap["id"], "available", "volume", "snapshot", "show")
    # a volume with snapshots cannot be deleted
    res = cloud.cli("volume", "delete", vol["id"])
    assert res.returncode != 0 and "snapshot" in res.stderr.lower()
    from_snap = cloud.cli_json("volume", "create", "--snapshot", snap["id"], "--size", "2", unique("fromsnap"))
    clone = cloud.cli_json("volume", "create", "--source", vol["id"], unique("clone"))
    assert _wait(cloud, "volume", from_snap["id"], "available")["snapshot_id"] == snap["id"]
    assert _wait(cloud, "volume", clone["id"], "available")["source_volid"] == vol["id"]
    assert cloud.cli("volume", "snapshot", "delete", snap["id"]).returncode == 0
    _gone(cloud, "snapshot", snap["id"])
    for vid in (vol["id"], from_snap["id"], clone["id"]):
        assert cloud.cli("volume", "delete", vid).returncode == 0


def test_volume_from_image_and_upload_to_image(cloud: KumoCloud, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096 * 2  # 2 MiB
    src = tmp_path / "disk.raw"
    src.write_bytes(data)
    img = cloud.cli_json("image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", str(src),
                         unique("img"))  # fmt: skip
    vol = cloud.cli_json("volume", "create", "--image", img["id"], "--size", "1", unique("fromimg"))
    vol = _wait(cloud, "volume", vol["id"], "available")
    assert vol["bootable"] in ("true", True) and vol["volume_image_metadata"]["image_id"] == img["id"]
    back = _upload_and_read(cloud, vol["id"], tmp_path, len(data) * 4)
    assert back[: len(data)] == data and back[len(data):].count(0) == 3 * len(data)
    cloud.cli("volume", "delete", vol["id"])


def _upload_and_read(cloud: KumoCloud, volume_id: str, tmp_path: Path, length: int, cloud_name: str = "kumo-admin"
                     ) -> bytes:
    """Upload the volume to a qcow2 image (small: the volume is mostly empty) and read its first bytes."""
    name = unique("uploaded")
    res = cloud.cli("image", "create", "--volume", volume_id, "--disk-format", "qcow2", name, cloud=cloud_name)
    assert res.returncode == 0, res.stderr
    up = _image_active(cloud, name)
    _wait(cloud, "volume", volume_id, "available")
    assert up["disk_format"] == "qcow2"
    out, raw = tmp_path / f"{name}.qcow2", tmp_path / f"{name}.raw"
    assert cloud.cli("image", "save", "--file", str(out), up["id"], cloud=cloud_name).returncode == 0
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(out), str(raw)], check=True)
    with open(raw, "rb") as fh:
        return fh.read(length)


def test_types_qos_and_quotas(cloud: KumoCloud) -> None:
    tname = unique("fast")
    vt = cloud.cli_json("volume", "type", "create", "--property", "volume_backend_name=file", "--private", tname)
    assert vt["properties"] == {"volume_backend_name": "file"} or "volume_backend_name" in str(vt["properties"])
    qos = cloud.cli_json("volume", "qos", "create", "--consumer", "front-end", "--property", "total_iops_sec=500",
                         unique("qos"))  # fmt: skip
    assert cloud.cli("volume", "qos", "associate", qos["id"], vt["id"]).returncode == 0
    shown = cloud.cli_json("volume", "qos", "show", qos["id"])
    assert [a for a in shown["associations"]] and "500" in str(shown["properties"])
    quota = cloud.cli_json("quota", "show", "--volume", "demo")
    names = {q["Resource"]: q["Limit"] for q in quota}
    assert names["volumes"] == 10 and names["gigabytes"] == 1000
    assert cloud.cli("quota", "set", "--volumes", "1", "demo").returncode == 0
    first = cloud.cli_json("volume", "create", "--size", "1", unique("q1"), cloud="kumo")
    over = cloud.cli("volume", "create", "--size", "1", unique("q2"), cloud="kumo")
    assert over.returncode != 0 and "413" in over.stderr or "quota" in over.stderr.lower()
    _wait(cloud, "volume", first["id"], "available")
    assert cloud.cli("volume", "delete", first["id"], cloud="kumo").returncode == 0
    assert cloud.cli("quota", "set", "--volumes", "10", "demo").returncode == 0
    assert cloud.cli("volume", "qos", "disassociate", "--volume-type", vt["id"], qos["id"]).returncode == 0
    assert cloud.cli("volume", "qos", "delete", qos["id"]).returncode == 0
    assert cloud.cli("volume", "type", "delete", vt["id"]).returncode == 0


def test_backup_create_restore_and_compare(cloud: KumoCloud, tmp_path: Path) -> None:
    data = hashlib.sha256(b"kumo").digest() * 32768  # 1 MiB of non-zero bytes
    src = tmp_path / "disk.raw"
    src.write_bytes(data)
    img = cloud.cli_json("image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", str(src),
                         unique("bimg"), cloud="kumo")  # fmt: skip
    vol = cloud.cli_json("volume", "create", "--image", img["id"], "--size", "1", unique("bvol"), cloud="kumo")
    _wait(cloud, "volume", vol["id"], "available")
    bk = cloud.cli_json("volume", "backup", "create", "--name", unique("bk"), vol["id"], cloud="kumo")
    bk = _wait(cloud, "backup", bk["id"], "available", "volume", "backup", "show")
    assert bk["object_count"] >= 2 and bk["container"] == "volumebackups"
    inc = cloud.cli_json("volume", "backup", "create", "--incremental", vol["id"], cloud="kumo")
    inc = _wait(cloud, "backup", inc["id"], "available", "volume", "backup", "show")
    assert inc["is_incremental"] is True
    assert cloud.cli("volume", "backup", "delete", bk["id"], cloud="kumo").returncode != 0  # has a child
    res = cloud.cli_json("volume", "backup", "restore", inc["id"], unique("restored"), cloud="kumo")
    new_id = res["volume_id"]
    _wait(cloud, "volume", new_id, "available")
    assert _upload_and_read(cloud, new_id, tmp_path, len(data), "kumo") == data
    for b in (inc["id"], bk["id"]):
        assert cloud.cli("volume", "backup", "delete", b, cloud="kumo").returncode == 0
        _gone(cloud, "backup", b)


def test_attachments_api_and_legacy_actions(cloud: KumoCloud, cinder: httpx.Client) -> None:
    vol = cloud.cli_json("volume", "create", "--size", "1", unique("att"))
    _wait(cloud, "volume", vol["id"], "available")
    mv = {"OpenStack-API-Version": "volume 3.44"}
    server = "8b0b2b5e-1a47-4a0b-9e36-0a1f7a1a4c11"
    a = cinder.post("/v3/attachments", headers=mv, json={"attachment": {"volume_uuid": vol["id"],
                                                                        "instance_uuid": server}}).json()["attachment"]
    assert a["status"] == "reserved"
    _wait(cloud, "volume", vol["id"], "reserved")
    upd = cinder.put(f"/v3/attachments/{a['id']}", headers=mv,
                     json={"attachment": {"connector": {"host": "h1", "initiator": "x"}}}).json()["attachment"]
    info = upd["connection_info"]
    assert info["driver_volume_type"] == "file" and Path(info["data"]["path"]).exists()
    assert info["data"]["format"] == "qcow2" and info["data"]["access_mode"] == "rw"
    assert cinder.post(f"/v3/attachments/{a['id']}/action", headers=mv, json={"os-complete": None}).status_code == 204
    shown = cloud.cli_json("volume", "show", vol["id"])
    assert shown["status"] == "in-use" and shown["attachments"][0]["server_id"] == server
    busy = cinder.delete(f"/v3/volumes/{vol['id']}")
    assert busy.status_code == 400 and "badRequest" in busy.json()
    assert cinder.delete(f"/v3/attachments/{a['id']}", headers=mv).status_code == 200
    _wait(cloud, "volume", vol["id"], "available")
    # legacy: reserve twice is refused
    act = f"/v3/volumes/{vol['id']}/action"
    assert cinder.post(act, json={"os-reserve": None}).status_code == 202
    assert cinder.post(act, json={"os-reserve": None}).status_code == 400
    assert cinder.post(act, json={"os-unreserve": None}).status_code == 202
    assert cloud.cli("volume", "delete", vol["id"]).returncode == 0


def test_errors_are_cinder_faults_never_500(cinder: httpx.Client) -> None:
    missing = cinder.get("/v3/volumes/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["itemNotFound"]["code"] == 404
    for body in ({"volume": {"size": 0}}, {"volume": {"size": "x"}}, {"volume": "nope"}, [], {"volume": {}},
                 {"volume": {"size": 1, "volume_type": "no-such-type"}}, {"volume": {"size": 1, "metadata": []}}):
        r = cinder.post("/v3/volumes", json=body)
        assert r.status_code in (400, 404), (body, r.text)
    r = cinder.post("/v3/volumes", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert cinder.get("/v3/volumes?limit=-1").status_code == 400
    assert cinder.get("/v3/volumes?sort=nope:asc").status_code == 400
    assert cinder.post("/v3/snapshots", json={"snapshot": {"volume_id": "x"}}).status_code == 404


def test_transfer_between_projects(cloud: KumoCloud, cinder: httpx.Client) -> None:
    vol = cloud.cli_json("volume", "create", "--size", "1", unique("tr"))
    _wait(cloud, "volume", vol["id"], "available")
    t = cinder.post("/v3/os-volume-transfer", json={"transfer": {"volume_id": vol["id"]}})
    assert t.status_code == 202, t.text
    tr = t.json()["transfer"]
    _wait(cloud, "volume", vol["id"], "awaiting-transfer")
    demo = cloud.sdk("kumo")
    token = demo.session.get_token()
    r = httpx.post(f"{cloud.url}/volume/v3/os-volume-transfer/{tr['id']}/accept", headers={"X-Auth-Token": token},
                   json={"accept": {"auth_key": "wrong"}})  # fmt: skip
    assert r.status_code == 400
    r = httpx.post(f"{cloud.url}/volume/v3/os-volume-transfer/{tr['id']}/accept", headers={"X-Auth-Token": token},
                   json={"accept": {"auth_key": tr["auth_key"]}})  # fmt: skip
    assert r.status_code == 202, r.text
    shown = cloud.cli_json("volume", "show", vol["id"])
    assert shown["status"] == "available" and shown["os-vol-tenant-attr:tenant_id"] == demo.current_project_id
    assert cloud.cli("volume", "delete", vol["id"], cloud="kumo").returncode == 0
