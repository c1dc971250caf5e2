"""Compute microversions 2.97-2.100 on the shared cloud (fake driver): share attachments (2.97),
image properties in server views (2.98), spice-direct consoles (2.99), scheduler hints in
server views (2.100); each checked on both sides of its version."""

from __future__ import annotations

import socket
import struct
import uuid
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.compute_helpers import hdr, until
from tests.support import KumoCloud, unique


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
def glance(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/image/v2", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as client:  # fmt: skip
        yield client


def _image(glance: httpx.Client, made: list[str], **props: str) -> str:
    r = glance.post("/images", json={"name": unique("mv2xx"), "disk_format": "raw", "container_format": "bare",
                                     "visibility": "public", **props})  # fmt: skip
    assert r.status_code == 201, r.text
    iid = r.json()["id"]
    up = glance.put(f"/images/{iid}/file", content=b"\3" * 65536, headers={"Content-Type": "application/octet-stream"})
    assert up.status_code == 204, up.text
    made.append(iid)
    return iid


@pytest.fixture(scope="module")
def images(glance: httpx.Client):
    made: list[str] = []
    first = _image(glance, made, os_distro="cirros", kumo_purpose="first image")
    second = _image(glance, made, os_distro="debian", os_version="13")
    yield first, second
    for iid in made:
        glance.delete(f"/images/{iid}")


def _wait(client: httpx.Client, sid: str, status: str) -> dict:
    def ready():  # type: ignore[no-untyped-def]
        s = client.get(f"/servers/{sid}", headers=hdr("2.96")).json()["server"]
        assert s["status"] != "ERROR", s.get("fault")
        return s if s["status"] == status and s["OS-EXT-STS:task_state"] is None else None

    return until(f"server {sid} {status}", ready)


def _boot(client: httpx.Client, image_id: str, version: str = "2.96", hints: dict | None = None) -> str:
    body: dict = {"server": {"name": unique("mv2xx"), "flavorRef": "1", "imageRef": image_id, "networks": "none"}}
    if hints is not None:
        body["os:scheduler_hints"] = hints
    r = client.post("/servers", json=body, headers=hdr(version))
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    _wait(client, sid, "ACTIVE")
    return sid


@pytest.fixture(scope="module")
def server(nova: httpx.Client, images: tuple[str, str]):
    sid = _boot(nova, images[0])
    yield sid
    nova.delete(f"/servers/{sid}")


def test_version_document_advertises_2_100(cloud: KumoCloud, nova: httpx.Client) -> None:
    doc = httpx.get(cloud.url + "/compute/v2.1", timeout=10).json()["version"]
    assert doc["version"] == "2.100"
    r = nova.get("/servers", headers=hdr("latest"))
    assert r.headers["OpenStack-API-Version"] == "compute 2.100"
    assert nova.get("/servers", headers=hdr("2.101")).status_code == 406


# -- 2.97: share attachments ----------------------------------------------------------------------------------------


def test_297_shares_resource_exists_from_297(nova: httpx.Client, server: str) -> None:
    assert nova.get(f"/servers/{server}/shares", headers=hdr("2.96")).status_code == 404
    r = nova.get(f"/servers/{server}/shares", headers=hdr("2.97"))
    assert r.status_code == 200 and r.json() == {"shares": []}
    r = nova.get(f"/servers/{server}/shares?limit=1", headers=hdr("2.97"))
    assert r.status_code == 400 and "badRequest" in r.json()
    missing = str(uuid.uuid4())
    r = nova.get(f"/servers/{missing}/shares", headers=hdr("2.97"))
    assert r.status_code == 404 and "itemNotFound" in r.json()
    r = nova.get(f"/servers/{server}/shares/{missing}", headers=hdr("2.97"))
    assert r.status_code == 404 and missing in r.json()["itemNotFound"]["message"]


def test_297_share_attach_validates_then_needs_a_stopped_server_on_a_capable_host(
    nova: httpx.Client, demo: httpx.Client, images: tuple[str, str]
) -> None:
    sid = _boot(nova, images[0])
    share = str(uuid.uuid4())
    try:
        for bad in ({}, {"share": {}}, {"share": {"share_id": "not-a-uuid"}}, {"share": {"share_id": share, "x": 1}},
                    {"share": {"share_id": share, "tag": ""}}, {"share": {"share_id": share, "tag": "a b"}},
                    {"share": {"share_id": share}, "extra": 1}):  # fmt: skip
            r = nova.post(f"/servers/{sid}/shares", json=bad, headers=hdr("2.97"))
            assert r.status_code == 400 and "badRequest" in r.json(), (bad, r.text)
        # another project's server does not exist for the demo user
        r = demo.post(f"/servers/{sid}/shares", json={"share": {"share_id": share}}, headers=hdr("2.97"))
        assert r.status_code == 404
        # a running server: Nova's 409 for the vm_state
        r = nova.post(f"/servers/{sid}/shares", json={"share": {"share_id": share, "tag": "data"}},
                      headers=hdr("2.97"))  # fmt: skip
        assert r.status_code == 409 and "vm_state active" in r.json()["conflictingRequest"]["message"], r.text
        r = nova.delete(f"/servers/{sid}/shares/{share}", headers=hdr("2.97"))
        assert r.status_code == 409
        assert nova.post(f"/servers/{sid}/action", json={"os-stop": None}).status_code == 202
        _wait(nova, sid, "SHUTOFF")
        # stopped: the host cannot export a share with virtio-fs -> 403, and nothing gets attached
        r = nova.post(f"/servers/{sid}/shares", json={"share": {"share_id": share, "tag": "data"}},
                      headers=hdr("2.97"))  # fmt: skip
        assert r.status_code == 403 and "virtio-fs" in r.json()["forbidden"]["message"], r.text
        assert nova.get(f"/servers/{sid}/shares", headers=hdr("2.97")).json() == {"shares": []}
        r = nova.delete(f"/servers/{sid}/shares/{share}", headers=hdr("2.97"))
        assert r.status_code == 404 and share in r.json()["itemNotFound"]["message"]
    finally:
        nova.delete(f"/servers/{sid}")


# -- 2.98: image properties -------------------------------------------------------------------------------------------


def test_298_server_views_carry_the_image_properties_kept_at_build(
    nova: httpx.Client, glance: httpx.Client, images: tuple[str, str]
) -> None:
    first, second = images
    sid = _boot(nova, first)
    try:
        assert "properties" not in nova.get(f"/servers/{sid}", headers=hdr("2.97")).json()["server"]["image"]
        image = nova.get(f"/servers/{sid}", headers=hdr("2.98")).json()["server"]["image"]
        props = image["properties"]
        assert image["id"] == first
        assert props["os_distro"] == "cirros" and props["kumo_purpose"] == "first image"
        assert props["disk_format"] == "raw" and props["container_format"] == "bare"
        assert props["min_ram"] == "0" and props["min_disk"] == "0"
        assert all(isinstance(val, str) for val in props.values())
        assert not {"id", "name", "status", "size", "checksum", "owner", "visibility"} & set(props)
        listed = nova.get("/servers/detail", headers=hdr("2.98")).json()["servers"]
        assert next(s for s in listed if s["id"] == sid)["image"]["properties"] == props
        assert "properties" not in next(s for s in nova.get("/servers/detail", headers=hdr("2.97")).json()["servers"]
                                        if s["id"] == sid)["image"]  # fmt: skip
        r = nova.put(f"/servers/{sid}", json={"server": {"name": "renamed"}}, headers=hdr("2.98"))
        assert r.status_code == 200 and r.json()["server"]["image"]["properties"] == props

        # the view keeps what the server was built with, not the image's later edits
        r = glance.patch(f"/images/{first}", json=[{"op": "replace", "path": "/os_distro", "value": "changed"}],
                         headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})  # fmt: skip
        assert r.status_code == 200, r.text
        shown = nova.get(f"/servers/{sid}", headers=hdr("2.98")).json()["server"]["image"]["properties"]
        assert shown["os_distro"] == "cirros"

        # rebuilding onto another image takes that image's properties
        r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": second}}, headers=hdr("2.98"))
        assert r.status_code == 202, r.text
        rebuilt = r.json()["server"]["image"]["properties"]
        assert rebuilt["os_distro"] == "debian" and rebuilt["os_version"] == "13" and "kumo_purpose" not in rebuilt
        _wait(nova, sid, "ACTIVE")
        assert nova.get(f"/servers/{sid}", headers=hdr("2.98")).json()["server"]["image"]["properties"] == rebuilt
    finally:
        nova.delete(f"/servers/{sid}")


def test_298_a_volume_backed_server_has_no_image_to_describe(nova: httpx.Client, images: tuple[str, str]) -> None:
    bdm = [{"boot_index": 0, "uuid": images[0], "source_type": "image", "destination_type": "volume",
            "volume_size": 1, "delete_on_termination": True}]  # fmt: skip
    r = nova.post("/servers", json={"server": {"name": unique("bfv"), "flavorRef": "1", "networks": "none",
                                               "block_device_mapping_v2": bdm}}, headers=hdr("2.98"))  # fmt: skip
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    try:
        _wait(nova, sid, "ACTIVE")
        assert nova.get(f"/servers/{sid}", headers=hdr("2.98")).json()["server"]["image"] == ""
    finally:
        nova.delete(f"/servers/{sid}")


# -- 2.99: spice-direct consoles --------------------------------------------------------------------------------------


def _spice_greeting(host: str, port: int) -> tuple[bytes, int, int, int]:
    """Tempest's SpiceLinkMess for the main channel; the reply's magic, version and error."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(struct.pack("<4sIIIIBBIIIII", b"REDQ", 2, 2, 26, 0, 1, 0, 1, 1, 18, 11, 9))
        reply = b""
        while len(reply) < 20:
            chunk = sock.recv(20 - len(reply))
            assert chunk, "the SPICE server closed the connection"
            reply += chunk
    magic, major, minor, _size, error = struct.unpack("<4sIIII", reply)
    return magic, major, minor, error


def test_299_spice_direct_console(nova: httpx.Client, demo: httpx.Client, server: str) -> None:
    body = {"remote_console": {"protocol": "spice", "type": "spice-direct"}}
    r = nova.post(f"/servers/{server}/remote-consoles", json=body, headers=hdr("2.98"))
    assert r.status_code == 400 and "badRequest" in r.json()
    r = nova.post(f"/servers/{server}/remote-consoles", json=body, headers=hdr("2.99"))
    assert r.status_code == 200, r.text
    console = r.json()["remote_console"]
    assert console["protocol"] == "spice" and console["type"] == "spice-direct"
    url = urlparse(console["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "http://127.0.0.1:13002/nova"
    (token,) = parse_qs(url.query)["token"]

    # the proxy (an admin) looks the token up: the VM's SPICE address, and from 2.99 its TLS port
    assert demo.get(f"/os-console-auth-tokens/{token}", headers=hdr("2.99")).status_code == 403
    older = nova.get(f"/os-console-auth-tokens/{token}", headers=hdr("2.98")).json()["console"]
    assert "tls_port" not in older
    info = nova.get(f"/os-console-auth-tokens/{token}", headers=hdr("2.99")).json()["console"]
    assert info["instance_uuid"] == server and info["tls_port"] is None and info["internal_access_path"] is None
    assert info["host"] == "127.0.0.1" and info["port"] > 0
    assert _spice_greeting(info["host"], info["port"]) == (b"REDQ", 2, 2, 0)
    # the token stays valid for the proxy (showing it does not use it up)
    assert nova.get(f"/os-console-auth-tokens/{token}", headers=hdr("2.99")).status_code == 200

    # spice-html5 is still not served; other protocols cannot carry spice-direct
    r = nova.post(f"/servers/{server}/remote-consoles", headers=hdr("2.99"),
                  json={"remote_console": {"protocol": "spice", "type": "spice-html5"}})  # fmt: skip
    assert r.status_code == 400
    r = nova.post(f"/servers/{server}/remote-consoles", headers=hdr("2.99"),
                  json={"remote_console": {"protocol": "vnc", "type": "spice-direct"}})  # fmt: skip
    assert r.status_code == 400


def test_299_spice_direct_needs_a_running_server(nova: httpx.Client, images: tuple[str, str]) -> None:
    sid = _boot(nova, images[0])
    try:
        assert nova.post(f"/servers/{sid}/action", json={"os-stop": None}).status_code == 202
        _wait(nova, sid, "SHUTOFF")
        r = nova.post(f"/servers/{sid}/remote-consoles", headers=hdr("2.99"),
                      json={"remote_console": {"protocol": "spice", "type": "spice-direct"}})  # fmt: skip
        assert r.status_code == 409 and "conflictingRequest" in r.json()
    finally:
        nova.delete(f"/servers/{sid}")


# -- 2.100: scheduler hints -------------------------------------------------------------------------------------------


def test_2100_server_views_carry_the_requested_scheduler_hints(
    nova: httpx.Client, images: tuple[str, str], server: str
) -> None:
    plain = nova.get(f"/servers/{server}", headers=hdr("2.100")).json()["server"]
    assert plain["scheduler_hints"] == {}
    assert "scheduler_hints" not in nova.get(f"/servers/{server}", headers=hdr("2.99")).json()["server"]

    group = nova.post("/os-server-groups", json={"server_group": {"name": unique("grp"), "policy": "affinity"}},
                      headers=hdr("2.64")).json()["server_group"]  # fmt: skip
    hints = {"group": group["id"], "same_host": [server]}
    sid = _boot(nova, images[0], hints=hints)
    try:
        shown = nova.get(f"/servers/{sid}", headers=hdr("2.100")).json()["server"]
        assert shown["scheduler_hints"] == hints
        listed = nova.get("/servers/detail", headers=hdr("2.100")).json()["servers"]
        assert next(s for s in listed if s["id"] == sid)["scheduler_hints"] == hints
        assert "scheduler_hints" not in next(s for s in nova.get("/servers", headers=hdr("2.100")).json()["servers"]
                                             if s["id"] == sid)  # fmt: skip
        r = nova.put(f"/servers/{sid}", json={"server": {"name": "renamed"}}, headers=hdr("2.100"))
        assert r.status_code == 200 and r.json()["server"]["scheduler_hints"] == hints
        r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": images[1]}}, headers=hdr("2.100"))
        assert r.status_code == 202 and r.json()["server"]["scheduler_hints"] == hints
        _wait(nova, sid, "ACTIVE")
        assert "scheduler_hints" not in nova.put(f"/servers/{sid}", json={"server": {}},
                                                 headers=hdr("2.99")).json()["server"]  # fmt: skip
    finally:
        nova.delete(f"/servers/{sid}")
        nova.delete(f"/os-server-groups/{group['id']}")
