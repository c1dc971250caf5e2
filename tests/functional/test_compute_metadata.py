"""The metadata API and config drives, end to end on a real kumo (fake compute driver).

Requests are signed exactly as the network agent's metadata proxy signs them; one test runs
the real proxy module (on loopback, outside any namespace) in front of kumo.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import httpx
import pytest

from kumo.agents.compute.configdrive import read_config_drive
from kumo.agents.network import metadata_proxy
from tests.support import KumoCloud, unique

MV = {"OpenStack-API-Version": "compute 2.60"}
USER_DATA = b"#!/bin/sh\necho kumo-user-data\n"


@pytest.fixture(scope="module")
def booted(cloud: KumoCloud) -> dict:
    """One server with a key, user data, metadata and a config drive, on a fresh network."""
    token = cloud.admin_token
    image = upload_image(cloud, unique("mdimg"))
    headers = {"X-Auth-Token": token}
    net = httpx.post(cloud.url + "/network/v2.0/networks", headers=headers, timeout=30,
                     json={"network": {"name": unique("mdnet")}}).json()["network"]  # fmt: skip
    r = httpx.post(cloud.url + "/network/v2.0/subnets", headers=headers, timeout=30,
                   json={"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "192.0.2.0/24"}})  # fmt: skip
    assert r.status_code == 201, r.text
    key = unique("mdkey")
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": token, **MV}, timeout=60) as nova:
        pub = nova.post("/os-keypairs", json={"keypair": {"name": key}}).json()["keypair"]["public_key"]
        body = {"server": {"name": unique("md"), "imageRef": image["id"], "flavorRef": "1", "key_name": key,
                           "networks": [{"uuid": net["id"], "tag": "nic1"}], "config_drive": True,
                           "user_data": base64.b64encode(USER_DATA).decode(), "metadata": {"role": "web"}}}  # fmt: skip
        r = nova.post("/servers", json=body)
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
        deadline = time.monotonic() + 30
        while (server := nova.get(f"/servers/{sid}").json()["server"])["status"] != "ACTIVE":
            assert server["status"] != "ERROR" and time.monotonic() < deadline, server
            time.sleep(0.1)
        yield {"server": server, "public_key": pub, "key": key}
        nova.delete(f"/servers/{sid}")
        nova.delete(f"/os-keypairs/{key}")


def upload_image(cloud: KumoCloud, name: str) -> dict:
    """A 1 MiB raw image through the image API (quicker than the CLI)."""
    headers = {"X-Auth-Token": cloud.admin_token}
    image = httpx.post(cloud.url + "/image/v2/images", headers=headers, timeout=30,
                       json={"name": name, "disk_format": "raw", "container_format": "bare"}).json()  # fmt: skip
    r = httpx.put(f"{cloud.url}/image/v2/images/{image['id']}/file", content=b"\0" * 1048576, timeout=60,
                  headers={**headers, "Content-Type": "application/octet-stream"})  # fmt: skip
    assert r.status_code == 204, r.text
    return image


def _secret(cloud: KumoCloud) -> str:
    return (cloud.data_dir / "metadata-secret").read_text().strip()


def _md(cloud: KumoCloud, server: dict, path: str, secret: str | None = None, **headers: str) -> httpx.Response:
    sid = server["id"]
    signed = {
        "X-Instance-ID": sid,
        "X-Tenant-ID": server["tenant_id"],
        "X-Instance-ID-Signature": metadata_proxy.sign(secret or _secret(cloud), sid),
        "X-Forwarded-For": "192.0.2.10",
    }
    signed.update(headers)
    return httpx.get(cloud.url + "/compute-metadata" + path, headers=signed, timeout=30)


def test_openstack_metadata(cloud: KumoCloud, booted: dict):
    server = booted["server"]
    r = _md(cloud, server, "/openstack")
    assert r.status_code == 200 and r.text.splitlines()[-2:] == ["2020-10-14", "latest"]
    assert "2018-08-27" in r.text and "2012-08-10" in r.text
    assert "user_data" in _md(cloud, server, "/openstack/latest").text.splitlines()
    meta = _md(cloud, server, "/openstack/latest/meta_data.json")
    assert meta.headers["content-type"].startswith("application/json")
    doc = meta.json()
    assert doc["uuid"] == server["id"] and doc["name"] == server["name"]
    assert doc["hostname"].endswith(".novalocal") and doc["project_id"] == server["tenant_id"]
    assert doc["public_keys"] == {booted["key"]: booted["public_key"]} and doc["meta"] == {"role": "web"}
    assert doc["availability_zone"] == "nova" and doc["launch_index"] == 0
    assert doc["devices"][0]["tags"] == ["nic1"]
    assert _md(cloud, server, "/openstack/latest/user_data").content == USER_DATA
    net = _md(cloud, server, "/openstack/2018-08-27/network_data.json").json()
    ips = [a["addr"] for addrs in server["addresses"].values() for a in addrs]
    assert len(net["links"]) == 1 and net["networks"][0]["type"] == "ipv4_dhcp" and ips
    assert isinstance(net["links"][0]["mtu"], int)  # read from the network API with compute's credentials
    assert _md(cloud, server, "/openstack/latest/vendor_data2.json").json() == {}
    assert _md(cloud, server, "/openstack/2012-08-10/network_data.json").status_code == 404


def test_ec2_metadata(cloud: KumoCloud, booted: dict):
    server = booted["server"]
    ip = next(a["addr"] for addrs in server["addresses"].values() for a in addrs)
    assert _md(cloud, server, "/").text.splitlines()[-1] == "latest"
    assert _md(cloud, server, "/latest/meta-data/local-ipv4").text == ip
    assert _md(cloud, server, "/latest/meta-data/hostname").text.endswith(".novalocal")
    assert _md(cloud, server, "/latest/meta-data/instance-id").text.startswith("i-")
    assert _md(cloud, server, "/latest/meta-data/public-keys/").text == f"0={booted['key']}"
    assert _md(cloud, server, "/latest/meta-data/public-keys/0/openssh-key").text == booted["public_key"]
    assert _md(cloud, server, "/latest/user-data").content == USER_DATA


def test_guest_password_reaches_the_api(cloud: KumoCloud, booted: dict):
    server = booted["server"]
    signed = {"X-Instance-ID": server["id"], "X-Tenant-ID": server["tenant_id"],
              "X-Instance-ID-Signature": metadata_proxy.sign(_secret(cloud), server["id"])}  # fmt: skip
    url = cloud.url + "/compute-metadata/openstack/latest/password"
    assert httpx.post(url, headers=signed, content=b"c2VjcmV0", timeout=10).status_code == 200
    assert httpx.post(url, headers=signed, content=b"again", timeout=10).status_code == 409
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token}, timeout=30) as nova:
        assert nova.get(f"/servers/{server['id']}/os-server-password").json() == {"password": "c2VjcmV0"}
        assert nova.delete(f"/servers/{server['id']}/os-server-password").status_code == 204
        assert nova.get(f"/servers/{server['id']}/os-server-password").json() == {"password": ""}
    assert httpx.get(url, headers=signed, timeout=10).text == ""


def test_metadata_refuses_what_the_proxy_did_not_sign(cloud: KumoCloud, booted: dict):
    server = booted["server"]
    assert httpx.get(cloud.url + "/compute-metadata/openstack", timeout=10).status_code == 400
    assert _md(cloud, server, "/openstack", secret="not-the-secret").status_code == 403
    other = "00000000-0000-4000-8000-000000000000"  # correctly signed, but not a server
    signed = {"X-Instance-ID": other, "X-Instance-ID-Signature": metadata_proxy.sign(_secret(cloud), other)}
    assert httpx.get(cloud.url + "/compute-metadata/openstack", headers=signed, timeout=10).status_code == 404
    assert _md(cloud, server, "/openstack", **{"X-Tenant-ID": "someone-else"}).status_code == 404
    assert _md(cloud, server, "/openstack/1999-01-01/meta_data.json").status_code == 404


def test_config_drive_iso_holds_the_metadata(cloud: KumoCloud, booted: dict):
    server = booted["server"]
    iso = cloud.data_dir / "compute" / "config-drives" / f"{server['id']}.iso"
    deadline = time.monotonic() + 10
    while not iso.exists():
        assert time.monotonic() < deadline, "the fake driver built no config drive"
        time.sleep(0.1)
    files = read_config_drive(iso)
    meta = json.loads(files["openstack/latest/meta_data.json"])
    assert meta["uuid"] == server["id"] and meta["public_keys"] == {booted["key"]: booted["public_key"]}
    assert files["openstack/latest/user_data"] == USER_DATA
    assert "openstack/2012-08-10/meta_data.json" in files and "ec2/latest/meta-data.json" in files
    assert json.loads(files["openstack/latest/network_data.json"])["networks"][0]["type"] == "ipv4_dhcp"


def test_through_the_real_metadata_proxy(cloud: KumoCloud, booted: dict, tmp_path):
    """The network agent's proxy module on loopback: it maps the caller's IP to the instance and signs."""
    server = booted["server"]
    hosts = tmp_path / "hosts.json"
    hosts.write_text(json.dumps({"127.0.0.1": {"device_id": server["id"], "project_id": server["tenant_id"]}}))
    proxy = metadata_proxy.Proxy(cloud.url + "/compute-metadata", metadata_proxy.Hosts(hosts), _secret(cloud), "")
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict = {}

    async def run() -> None:
        srv = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
        state["port"] = srv.sockets[0].getsockname()[1]
        state["stop"] = asyncio.Event()
        started.set()
        async with srv:
            await state["stop"].wait()
        await proxy.client.aclose()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    try:
        assert started.wait(10)
        base = f"http://127.0.0.1:{state['port']}"
        r = httpx.get(base + "/openstack/latest/meta_data.json", timeout=30)
        assert r.status_code == 200 and r.json()["uuid"] == server["id"]
        assert httpx.get(base + "/latest/user-data", timeout=30).content == USER_DATA
        # a guest the proxy does not know gets nothing
        hosts.write_text(json.dumps({}))
        time.sleep(0.01)
        hosts.touch()
        assert httpx.get(base + "/openstack/latest/meta_data.json", timeout=30).status_code == 404
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(10)
        loop.close()
