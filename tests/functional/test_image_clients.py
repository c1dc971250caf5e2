"""The image service driven by the real openstack CLI, openstacksdk and raw HTTP."""

from __future__ import annotations

import hashlib
import os
import time

import httpx
import pytest

from tests.support import KumoCloud, unique
from tests.unit.test_image_formats import qcow2

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def image_http(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as client:  # fmt: skip
        yield client


def test_versions(cloud: KumoCloud):
    r = httpx.get(cloud.url + "/image/", timeout=10)
    assert r.status_code == 300
    ids = [v["id"] for v in r.json()["versions"]]
    assert ids[0] == "v2.17" and "v2.0" in ids and r.json()["versions"][0]["status"] == "CURRENT"


def test_cli_image_lifecycle(cloud: KumoCloud, ensure_cli, tmp_path):
    path = tmp_path / "disk.qcow2"
    path.write_bytes(qcow2(virtual=1 << 30) + os.urandom(8192))
    name = unique("cli-img")
    img = cloud.cli_json(
        "image",
        "create",
        "--file",
        str(path),
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--tag",
        "t1",
        "--property",
        "os_distro=debian",
        name,
    )
    assert img["status"] == "active" and img["disk_format"] == "qcow2"
    assert img["size"] == path.stat().st_size
    assert img["checksum"] == hashlib.md5(path.read_bytes()).hexdigest()
    shown = cloud.cli_json("image", "show", name)
    assert shown["virtual_size"] == 1 << 30 and shown["tags"] == ["t1"]
    assert shown["properties"]["os_distro"] == "debian"
    assert name in [i["Name"] for i in cloud.cli_json("image", "list")]

    assert cloud.cli("image", "set", "--property", "hw_disk_bus=scsi", "--tag", "t2", name).returncode == 0
    shown = cloud.cli_json("image", "show", name)
    assert shown["properties"]["hw_disk_bus"] == "scsi" and set(shown["tags"]) == {"t1", "t2"}
    assert cloud.cli("image", "unset", "--property", "hw_disk_bus", "--tag", "t1", name).returncode == 0
    shown = cloud.cli_json("image", "show", name)
    assert "hw_disk_bus" not in shown["properties"] and shown["tags"] == ["t2"]

    out = tmp_path / "saved.qcow2"
    res = cloud.cli("image", "save", "--file", str(out), name)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == path.read_bytes()

    assert cloud.cli("image", "set", "--deactivate", name).returncode == 0
    assert cloud.cli_json("image", "show", name)["status"] == "deactivated"
    assert cloud.cli("image", "set", "--activate", name).returncode == 0
    assert cloud.cli_json("image", "show", name)["status"] == "active"

    assert cloud.cli("image", "set", "--protected", name).returncode == 0
    res = cloud.cli("image", "delete", name)
    assert res.returncode != 0
    assert cloud.cli("image", "set", "--unprotected", name).returncode == 0
    res = cloud.cli("image", "delete", name)
    assert res.returncode == 0, res.stderr
    assert cloud.cli("image", "show", name).returncode != 0


def test_cli_sharing(cloud: KumoCloud, ensure_cli):
    name = unique("shared-img")
    img = cloud.cli_json(
        "image", "create", "--disk-format", "raw", "--container-format", "bare", "--shared", name
    )
    demo = cloud.cli_json("project", "show", "demo")
    assert name not in [i["Name"] for i in cloud.cli_json("image", "list", cloud="kumo")]
    member = cloud.cli_json("image", "add", "project", img["id"], demo["id"])
    assert member["status"] == "pending"
    res = cloud.cli("image", "set", "--accept", img["id"], cloud="kumo")
    assert res.returncode == 0, res.stderr
    assert name in [i["Name"] for i in cloud.cli_json("image", "list", cloud="kumo")]
    members = cloud.cli_json("image", "member", "list", img["id"])
    assert [(m["Member ID"], m["Status"]) for m in members] == [(demo["id"], "accepted")]
    # the member cannot change the image
    assert cloud.cli("image", "set", "--name", "stolen", img["id"], cloud="kumo").returncode != 0
    assert cloud.cli("image", "remove", "project", img["id"], demo["id"]).returncode == 0
    assert name not in [i["Name"] for i in cloud.cli_json("image", "list", cloud="kumo")]
    cloud.cli("image", "delete", img["id"])


def test_cli_rejects_unsafe_and_mismatched_data(cloud: KumoCloud, ensure_cli, tmp_path):
    # The cloud is shared with other tests (run one at a time per worker): compare before/after.
    before = set((cloud.data_dir / "images").glob("*"))
    bad = tmp_path / "backing.qcow2"
    bad.write_bytes(qcow2(backing=b"/etc/passwd"))
    name = unique("bad-qcow2")
    res = cloud.cli(
        "image", "create", "--file", str(bad), "--disk-format", "qcow2", "--container-format", "bare", name
    )
    assert res.returncode != 0 and "backing file" in res.stderr, res.stderr
    # the SDK deletes the image after a failed upload; if it is still there, it is queued
    assert [i["Status"] for i in cloud.cli_json("image", "list", "--name", name)] in ([], ["queued"])

    raw = tmp_path / "raw.img"
    raw.write_bytes(os.urandom(65536))
    name2 = unique("raw-as-qcow2")
    res = cloud.cli(
        "image", "create", "--file", str(raw), "--disk-format", "qcow2", "--container-format", "bare", name2
    )
    assert res.returncode != 0 and "does not match" in res.stderr, res.stderr
    assert [i["Status"] for i in cloud.cli_json("image", "list", "--name", name2)] in ([], ["queued"])
    new = set((cloud.data_dir / "images").glob("*")) - before
    assert all(p.is_dir() for p in new), new  # no partial data left behind


def test_sdk_upload_download_200mb(cloud: KumoCloud, tmp_path):
    path = tmp_path / "big.raw"
    digest = hashlib.sha512()
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as fh:
        for i in range(200):
            chunk = block[i:] + block[:i]
            digest.update(chunk)
            fh.write(chunk)
    conn = cloud.sdk()
    image = conn.image.create_image(
        name=unique("sdk-big"),
        filename=str(path),
        disk_format="raw",
        container_format="bare",
        wait=True,
        validate_checksum=False,
        use_import=False,
    )
    try:
        image = conn.image.get_image(image.id)
        assert image.status == "active" and image.size == 200 * 1024 * 1024
        assert image.hash_algo == "sha512" and image.hash_value == digest.hexdigest()
        out = tmp_path / "down.raw"
        conn.image.download_image(image, output=str(out), stream=True, chunk_size=1024 * 1024)
        check = hashlib.sha512()
        with open(out, "rb") as fh:
            while data := fh.read(1024 * 1024):
                check.update(data)
        assert check.hexdigest() == digest.hexdigest()
    finally:
        conn.image.delete_image(image.id, ignore_missing=True)


def test_http_data_rules(image_http: httpx.Client):
    r = image_http.post(
        "/images", json={"name": unique("http"), "disk_format": "raw", "container_format": "bare"}
    )
    assert r.status_code == 201
    image = r.json()
    iid = image["id"]
    assert (
        image["status"] == "queued"
        and image["visibility"] == "shared"
        and image["self"] == f"/v2/images/{iid}"
    )
    assert image_http.get(f"/images/{iid}/file").status_code == 204
    data = bytes(range(256)) * 64
    octet = {"Content-Type": "application/octet-stream"}
    assert image_http.put(f"/images/{iid}/file", content=data, headers=octet).status_code == 204
    assert image_http.put(f"/images/{iid}/file", content=data, headers=octet).status_code == 409
    r = image_http.get(f"/images/{iid}/file")
    assert r.content == data and r.headers["content-md5"] == hashlib.md5(data).hexdigest()
    r = image_http.get(f"/images/{iid}/file", headers={"Range": "bytes=10-19"})
    assert (
        r.status_code == 206
        and r.content == data[10:20]
        and r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    )
    assert image_http.get(f"/images/{iid}/file", headers={"Range": "bytes=-5"}).content == data[-5:]
    assert image_http.get(f"/images/{iid}/file", headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    patch = [{"op": "replace", "path": "/name", "value": "x"}]
    assert image_http.patch(f"/images/{iid}", json=patch).status_code == 415
    v21 = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
    r = image_http.patch(
        f"/images/{iid}", content=b'[{"op": "replace", "path": "/status", "value": "x"}]', headers=v21
    )
    assert r.status_code == 403 and r.json()["code"] == "403 Forbidden"
    r = image_http.patch(
        f"/images/{iid}", content=b'[{"op": "copy", "path": "/name", "from": "/x"}]', headers=v21
    )
    assert r.status_code == 400
    r = image_http.patch(
        f"/images/{iid}", content=b'[{"op": "add", "path": "/speed", "value": "88mph"}]', headers=v21
    )
    assert r.status_code == 200 and r.json()["speed"] == "88mph"
    assert image_http.post("/images", json={"os_glance_x": "1"}).status_code == 403
    assert image_http.post("/images", json={"size": 5}).status_code == 403
    assert image_http.post("/images", json={"disk_format": "floppy"}).status_code == 400
    listing = image_http.get("/images", params={"limit": 1, "sort": "name:asc"}).json()
    assert len(listing["images"]) == 1 and "next" in listing or len(listing["images"]) <= 1
    assert (
        image_http.get(
            "/images", params={"created_at": "gte:2000-01-01T00:00:00Z", "id": f"in:{iid}"}
        ).json()["images"][0]["id"]
        == iid
    )
    assert image_http.get("/images", params={"sort_dir": "sideways"}).status_code == 400
    assert image_http.delete(f"/images/{iid}").status_code == 204
    assert image_http.get(f"/images/{iid}").status_code == 404


def test_http_stage_and_import(image_http: httpx.Client):
    methods = image_http.get("/info/import").json()["import-methods"]["value"]
    assert set(methods) == {"glance-direct", "web-download", "copy-image", "glance-download"}
    assert [s["id"] for s in image_http.get("/info/stores").json()["stores"]] == ["file", "swift", "web"]
    r = image_http.post("/images", json={"disk_format": "raw", "container_format": "bare"})
    iid = r.json()["id"]
    octet = {"Content-Type": "application/octet-stream"}
    assert image_http.put(f"/images/{iid}/stage", content=b"x" * 5000, headers=octet).status_code == 204
    assert image_http.get(f"/images/{iid}").json()["status"] == "uploading"
    r = image_http.post(f"/images/{iid}/import", json={"method": {"name": "glance-direct"}})
    assert r.status_code == 202
    deadline = time.monotonic() + 60  # the import runs in the background (slow on a loaded machine)
    while True:
        body = image_http.get(f"/images/{iid}").json()
        if body["status"] not in ("uploading", "importing") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert body["status"] == "active" and body["size"] == 5000 and body["stores"] == "file"
    tasks = image_http.get(f"/images/{iid}/tasks").json()["tasks"]
    assert [t["status"] for t in tasks] == ["success"]
    assert tasks[0]["request_id"] == r.headers["x-openstack-request-id"]
    usage = image_http.get("/info/usage").json()["usage"]
    assert usage["image_count_total"]["usage"] >= 1
    image_http.delete(f"/images/{iid}")
