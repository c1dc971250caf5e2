"""Image stores: the local file store and the object store side by side, copy-image,
web-download, deleting one copy; driven by the openstack CLI and raw HTTP."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import KumoCloud, unique
from tests.unit.test_image_formats import qcow2

pytestmark = pytest.mark.cli


def _http(cloud: KumoCloud) -> httpx.Client:
    return httpx.Client(
        base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": cloud.admin_token}, timeout=60
    )


def _create(c: httpx.Client, disk_format: str = "raw", **extra: object) -> str:
    r = c.post(
        "/images",
        json={"name": unique("img"), "disk_format": disk_format, "container_format": "bare", **extra},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _wait(c: httpx.Client, image_id: str, done, timeout: float = 30.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        body = c.get(f"/images/{image_id}").json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"image never got there: {body}"
        time.sleep(0.2)


def _objects(cloud: KumoCloud) -> list[str]:
    """The objects of the image service's container (in the admin project's account)."""
    token, body = cloud.issue()
    account = f"{cloud.url}/object-store/v1/AUTH_{body['token']['project']['id']}"
    r = httpx.get(f"{account}/kumo-images", headers={"X-Auth-Token": token}, timeout=30)
    assert r.status_code in (200, 204), r.text  # 204: an empty container
    return r.text.split()


def _import(c: httpx.Client, image_id: str, body: dict) -> httpx.Response:
    return c.post(f"/images/{image_id}/import", json=body)


def test_stores_info_and_upload_to_a_chosen_store(cloud: KumoCloud):
    stores = cloud.cli_json("image", "stores", "list")
    assert {s["ID"] for s in stores} == {"file", "swift", "web"}
    assert [s["ID"] for s in stores if s["Default"]] == ["file"]
    with _http(cloud) as c:
        detail = c.get("/info/stores/detail").json()["stores"]
        assert {s["id"]: s["type"] for s in detail} == {"file": "file", "swift": "swift", "web": "http"}
        assert [s["id"] for s in detail if s.get("read-only") == "true"] == ["web"]
        r = c.put(f"/images/{_create(c)}/file", content=b"x", headers={"Content-Type": "application/octet-stream",
                                                                        "X-Image-Meta-Store": "web"})  # fmt: skip
        assert r.status_code == 400 and "read-only" in r.json()["message"]
        data = os.urandom(300_000)
        image_id = _create(c)
        r = c.put(
            f"/images/{image_id}/file",
            content=data,
            headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": "swift"},
        )
        assert r.status_code == 204, r.text
        body = c.get(f"/images/{image_id}").json()
        assert body["status"] == "active" and body["stores"] == "swift"
        assert c.get(f"/images/{image_id}/file").content == data
        part = c.get(f"/images/{image_id}/file", headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == data[1000:2000]
        # the data is an object in the object store, in the image service's container
        assert image_id in _objects(cloud)
        # an unknown store is refused before any data moves
        other = _create(c)
        r = c.put(
            f"/images/{other}/file",
            content=b"x" * 10,
            headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": "nowhere"},
        )
        assert r.status_code == 400 and "nowhere" in r.json()["message"]
        assert c.get(f"/images/{other}").json()["status"] == "queued"
        assert c.delete(f"/images/{image_id}").status_code == 204
        assert not [n for n in _objects(cloud) if n.startswith(image_id)]  # manifest and segments gone


def test_copy_image_then_delete_from_one_store(cloud: KumoCloud, ensure_cli, tmp_path):
    path = tmp_path / "disk.raw"
    data = os.urandom(500_000)
    path.write_bytes(data)
    name = unique("copy")
    img = cloud.cli_json("image", "create", "--file", str(path), "--disk-format", "raw",
                         "--container-format", "bare", name)  # fmt: skip
    assert img["status"] == "active"
    assert cloud.cli("image", "import", name, "--method", "copy-image", "--store", "swift").returncode == 0
    with _http(cloud) as c:
        body = _wait(c, img["id"], lambda b: b.get("os_glance_importing_to_stores") == "")
        assert body["stores"] == "file,swift" and body["os_glance_failed_import"] == ""
        # copying again into a store that has the data is a conflict; all_stores skips it
        r = _import(c, img["id"], {"method": {"name": "copy-image"}, "stores": ["swift"]})
        assert r.status_code == 409
        # drop the local copy: the object store copy serves the data
        assert c.delete(f"/stores/file/{img['id']}").status_code == 204
        body = c.get(f"/images/{img['id']}").json()
        assert body["stores"] == "swift"
        got = c.get(f"/images/{img['id']}/file")
        assert hashlib.sha512(got.content).hexdigest() == body["os_hash_value"]
        # never the last copy
        r = c.delete(f"/stores/swift/{img['id']}")
        assert r.status_code == 403
        assert c.delete(f"/stores/nowhere/{img['id']}").status_code == 409
    # a member may not copy (admins only, as Glance's policy)
    demo = _create_as_demo(cloud)
    r = httpx.post(
        f"{cloud.url}/image/v2/images/{demo}/import",
        json={"method": {"name": "copy-image"}, "all_stores": True},
        headers={"X-Auth-Token": _token(cloud, "demo")},
        timeout=30,
    )
    assert r.status_code == 403


def _token(cloud: KumoCloud, user: str) -> str:
    return cloud.issue(user)[0]


def _create_as_demo(cloud: KumoCloud) -> str:
    token = _token(cloud, "demo")
    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": token}, timeout=30) as c:
        image_id = _create(c)
        r = c.put(
            f"/images/{image_id}/file",
            content=b"\0" * 4096,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 204
        return image_id


def test_glance_direct_into_every_store(cloud: KumoCloud):
    data = os.urandom(200_000)
    with _http(cloud) as c:
        image_id = _create(c)
        r = c.put(
            f"/images/{image_id}/stage", content=data, headers={"Content-Type": "application/octet-stream"}
        )
        assert r.status_code == 204
        assert (
            _import(c, image_id, {"method": {"name": "glance-direct"}, "all_stores": True}).status_code == 202
        )
        body = _wait(c, image_id, lambda b: b["status"] == "active" and b.get("stores") == "file,swift")
        assert body["checksum"] == hashlib.md5(data).hexdigest()
        tasks = c.get(f"/images/{image_id}/tasks").json()["tasks"]
        assert [t["status"] for t in tasks] == ["success"]
        # bad requests: unknown stores, stores with all_stores, a non-boolean flag
        other = _create(c)
        assert (
            _import(c, other, {"method": {"name": "glance-direct"}, "stores": ["nowhere"]}).status_code == 409
        )
        r = _import(c, other, {"method": {"name": "glance-direct"}, "stores": ["file"], "all_stores": True})
        assert r.status_code == 400
        r = _import(c, other, {"method": {"name": "copy-image"}, "all_stores": "yes"})
        assert r.status_code == 400
        assert _import(c, other, {"method": {"name": "teleport"}}).status_code == 400


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.startswith("/redirect-to-metadata"):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data")
            self.end_headers()
            return
        body = self.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Handler.files
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def web_cloud(tmp_path_factory) -> Iterator[KumoCloud]:  # type: ignore[no-untyped-def]
    """A kumo that may fetch from loopback, keeps swift data in 1 MiB segments, shows locations."""
    cloud = KumoCloud(
        tmp_path_factory.mktemp("kumo") / "data",
        env={
            "KUMO_IMAGE__WEB_DOWNLOAD_ALLOW_HOSTS": '["127.0.0.1"]',
            "KUMO_IMAGE__SWIFT_SEGMENT_SIZE": str(1024 * 1024),
            "KUMO_IMAGE__STORE": "swift",
            "KUMO_IMAGE__WEB_DOWNLOAD_MAX_BYTES": str(6 * 1024 * 1024),
            "KUMO_IMAGE__SHOW_MULTIPLE_LOCATIONS": "true",
        },
    )
    try:
        yield cloud.start()
    finally:
        cloud.stop()


def test_web_download(web_cloud, web_server):
    cloud = web_cloud
    base, files = web_server
    disk = qcow2(virtual=1 << 30) + os.urandom(3 * 1024 * 1024)  # 3+ segments of 1 MiB in swift
    files["/disk.qcow2"] = disk
    files["/big.raw"] = os.urandom(7 * 1024 * 1024)
    with _http(cloud) as c:
        image_id = _create(c, "qcow2")
        assert cloud.cli("image", "import", image_id, "--method", "web-download", "--uri", base + "/disk.qcow2",
                         "--all-stores").returncode == 0  # fmt: skip
        got = _wait(c, image_id, lambda b: b["status"] == "active" and b.get("stores") == "file,swift")
        assert got["size"] == len(disk) and got["virtual_size"] == 1 << 30
        assert got["os_hash_value"] == hashlib.sha512(disk).hexdigest()
        assert c.delete(f"/stores/file/{image_id}").status_code == 204
        assert c.get(f"/images/{image_id}/file").content == disk  # from the segmented object

        # content that is not what the image claims: the import fails, the image is queued again
        bad = _create(c, "qcow2")
        files["/raw.img"] = b"\1" * 4096
        assert (
            _import(c, bad, {"method": {"name": "web-download", "uri": base + "/raw.img"}}).status_code == 202
        )
        got = _wait(c, bad, lambda b: b.get("os_glance_failed_import"))
        assert got["status"] == "queued" and got["os_glance_failed_import"] == "swift"
        tasks = c.get(f"/images/{bad}/tasks").json()["tasks"]
        assert tasks[-1]["status"] == "failure" and "disk_format" in tasks[-1]["message"]

        # too big, missing, and redirected into a non-public address: all fail cleanly
        for path in ("/big.raw", "/missing", "/redirect-to-metadata"):
            other = _create(c)
            assert (
                _import(c, other, {"method": {"name": "web-download", "uri": base + path}}).status_code == 202
            )
            got = _wait(c, other, lambda b: b.get("os_glance_failed_import"))
            assert got["status"] == "queued" and got["size"] is None
        # refused before anything starts
        other = _create(c)
        for uri in (
            "file:///etc/passwd",
            "http://169.254.169.254/",
            "http://10.0.0.1/x",
            "ftp://127.0.0.1/x",
        ):
            r = _import(c, other, {"method": {"name": "web-download", "uri": uri}})
            assert r.status_code == 400 and "does not pass filtering" in r.json()["message"], uri
        assert c.get(f"/images/{other}").json()["status"] == "queued"


PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


def _patch(c: httpx.Client, image_id: str, ops: list) -> httpx.Response:  # type: ignore[type-arg]
    return c.patch(f"/images/{image_id}", headers=PATCH, content=json.dumps(ops))


def test_locations(web_cloud, web_server):
    base, files = web_server
    files["/loc.raw"] = payload = os.urandom(70_000)
    url = base + "/loc.raw"
    with _http(web_cloud) as c:
        image_id = _create(c)
        assert c.get(f"/images/{image_id}").json()["locations"] == []
        r = _patch(
            c,
            image_id,
            [{"op": "add", "path": "/locations/-", "value": {"url": url, "metadata": {"a": "b"}}}],
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "active" and body["size"] == len(payload) and body["stores"] == "web"
        assert body["locations"] == [{"url": url, "metadata": {"a": "b", "store": "web"}}]
        assert c.get(f"/images/{image_id}/file").content == payload  # read through the http store
        second = {"url": url + "#2", "metadata": {}}
        assert (
            _patch(c, image_id, [{"op": "add", "path": "/locations/-", "value": second}]).status_code == 200
        )
        locs = c.get(f"/images/{image_id}").json()["locations"]
        # replace may change metadata, never drop or swap URLs
        locs[0]["metadata"]["x"] = "y"
        assert (
            _patch(c, image_id, [{"op": "replace", "path": "/locations", "value": locs}]).status_code == 200
        )
        assert (
            _patch(c, image_id, [{"op": "replace", "path": "/locations", "value": locs[:1]}]).status_code
            == 400
        )
        for bad in ("gopher://example.org/", "file:///etc/passwd", "http://10.1.2.3/x", "http://169.254.169.254/",
                    "swift://kumo-images/" + image_id):  # fmt: skip
            r = _patch(
                c, image_id, [{"op": "add", "path": "/locations/-", "value": {"url": bad, "metadata": {}}}]
            )
            assert r.status_code == 400, bad
        # hashes given with a location must agree with the image's
        other = _create(c)
        vd = {"checksum": "1" * 32, "os_hash_algo": "sha512", "os_hash_value": "de" * 64}
        value = {"url": url, "metadata": {}, "validation_data": vd}
        assert _patch(c, other, [{"op": "add", "path": "/locations/-", "value": value}]).status_code == 200
        value = {"url": url + "#3", "metadata": {}, "validation_data": {**vd, "checksum": "2" * 32}}
        assert _patch(c, other, [{"op": "add", "path": "/locations/-", "value": value}]).status_code == 409
        # removing: admins only, never the last
        assert _patch(c, image_id, [{"op": "remove", "path": "/locations/0"}]).status_code == 200
        assert _patch(c, image_id, [{"op": "remove", "path": "/locations/0"}]).status_code == 403

        # v2.17: POST .../locations reads and hashes the data in the background
        fresh = _create(c)
        sha256 = hashlib.sha256(payload).hexdigest()
        r = c.post(f"/images/{fresh}/locations", json={"url": url, "validation_data": {"os_hash_algo": "sha256",
                                                                                        "os_hash_value": sha256}})  # fmt: skip
        assert r.status_code == 202
        body = _wait(c, fresh, lambda b: b["status"] != "importing")
        assert (
            body["status"] == "active"
            and body["os_hash_algo"] == "sha256"
            and body["os_hash_value"] == sha256
        )
        assert body["checksum"] == hashlib.md5(payload).hexdigest()
        wrong = _create(c)
        r = c.post(f"/images/{wrong}/locations", json={"url": url, "validation_data": {"os_hash_algo": "sha512",
                                                                                        "os_hash_value": "be" * 64}})  # fmt: skip
        body = _wait(c, wrong, lambda b: b["status"] != "importing")
        assert body["status"] == "queued" and body["os_hash_value"] is None
        tasks = c.get(f"/images/{wrong}/tasks").json()["tasks"]
        assert tasks[-1]["status"] == "failure"
        r = c.post(
            f"/images/{_create(c)}/locations", json={"url": url, "validation_data": {"os_hash_algo": "sha1"}}
        )
        assert r.status_code == 400
        # only service users read locations through the API
        assert c.get(f"/images/{fresh}/locations").status_code == 200  # admin
        token = _token(web_cloud, "demo")
        r = httpx.get(f"{web_cloud.url}/image/v2/images/{fresh}/locations", headers={"X-Auth-Token": token})
        assert r.status_code == 404  # not even visible to another project


def test_cache_and_glance_download(web_cloud):
    data = os.urandom(150_000)
    with _http(web_cloud) as c:
        image_id = _create(c)
        c.put(f"/images/{image_id}/file", content=data, headers={"Content-Type": "application/octet-stream"})
        assert c.get(f"/images/{image_id}").json()["stores"] == "swift"
        assert c.put(f"/cache/{image_id}").status_code == 202
        deadline = time.monotonic() + 20
        while image_id not in [i["image_id"] for i in c.get("/cache").json()["cached_images"]]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert c.get(f"/images/{image_id}/file").content == data  # served from the cache
        entry = next(i for i in c.get("/cache").json()["cached_images"] if i["image_id"] == image_id)
        assert entry["hits"] == 1 and entry["size"] == len(data)
        assert c.put("/cache/" + _create(c)).status_code == 400  # queued image: no data
        assert c.put("/cache/00000000-0000-0000-0000-000000000000").status_code == 404
        assert c.delete("/cache", headers={"x-image-cache-clear-target": "invalid"}).status_code == 400
        assert c.delete("/cache").status_code == 204
        assert c.get("/cache").json() == {"cached_images": [], "queued_images": []}
        token = _token(web_cloud, "demo")
        assert (
            httpx.get(f"{web_cloud.url}/image/v2/cache", headers={"X-Auth-Token": token}).status_code == 403
        )

        # glance-download: another image of this cloud (found through the catalog) comes with its formats
        c.patch(f"/images/{image_id}", headers=PATCH,
                content=json.dumps([{"op": "add", "path": "/hw_cpu_cores", "value": "4"},
                                    {"op": "add", "path": "/speed", "value": "fast"}]))  # fmt: skip
        dst = _create(c, "iso")
        method = {"name": "glance-download", "glance_image_id": image_id, "glance_region": "RegionOne",
                  "glance_service_interface": "public"}  # fmt: skip
        assert _import(c, dst, {"method": method}).status_code == 202
        body = _wait(c, dst, lambda b: b["status"] == "active")
        assert body["disk_format"] == "raw" and body["hw_cpu_cores"] == "4" and "speed" not in body
        assert body["checksum"] == hashlib.md5(data).hexdigest()
        bad = _create(c)
        r = _import(c, bad, {"method": {**method, "glance_image_id": "foo"}})
        assert r.status_code == 400 and "does not look like a UUID" in r.json()["message"]
        r = _import(c, bad, {"method": {**method, "glance_region": "nowhere"}})
        assert r.status_code == 202
        tasks = _wait(c, bad, lambda b: b.get("os_glance_failed_import"))
        assert tasks["status"] == "queued"
