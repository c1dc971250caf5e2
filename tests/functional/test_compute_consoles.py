"""Remote consoles end to end (fake driver): URLs from the API and the CLI, bytes through the websocket proxy."""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.functional.test_compute_metadata import upload_image
from tests.support import KumoCloud, unique

pytestmark = pytest.mark.cli


def _nova(cloud: KumoCloud, version: str) -> httpx.Client:
    return httpx.Client(base_url=cloud.url + "/compute/v2.1", timeout=60,
                        headers={"X-Auth-Token": cloud.admin_token, "OpenStack-API-Version": f"compute {version}"})  # fmt: skip


@pytest.fixture(scope="module")
def server(cloud: KumoCloud) -> dict:
    image = upload_image(cloud, unique("conimg"))
    with _nova(cloud, "2.37") as nova:
        r = nova.post("/servers", json={"server": {"name": unique("con"), "imageRef": image["id"], "flavorRef": "1",
                                                   "networks": "none"}})  # fmt: skip
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
        deadline = time.monotonic() + 30
        while (body := nova.get(f"/servers/{sid}").json()["server"])["status"] != "ACTIVE":
            assert body["status"] != "ERROR" and time.monotonic() < deadline, body
            time.sleep(0.1)
        yield body
        nova.delete(f"/servers/{sid}")


def _ws_url(novnc_url: str) -> str:
    """Where noVNC (and Tempest) open the websocket: ws://host:port/ + the ``path`` parameter."""
    parts = urlparse(novnc_url)
    return f"ws://{parts.netloc}/{unquote(parse_qs(parts.query)['path'][0])}"


async def _serial_roundtrip(url: str) -> tuple[bytes, bytes, str | None]:
    async with connect(url, subprotocols=["binary"], open_timeout=10) as ws:
        banner = await asyncio.wait_for(ws.recv(), 10)
        await ws.send(b"echo kumo\r")
        echoed = await asyncio.wait_for(ws.recv(), 10)
        return banner, echoed, ws.subprotocol


async def _rfb_handshake(url: str) -> bytes:
    async with connect(url, subprotocols=["binary"], open_timeout=10) as ws:
        version = await asyncio.wait_for(ws.recv(), 10)
        assert version == b"RFB 003.008\n"
        await ws.send(version)
        assert await asyncio.wait_for(ws.recv(), 10) == b"\x01\x01"  # security types: None
        await ws.send(b"\x01")
        assert await asyncio.wait_for(ws.recv(), 10) == b"\0\0\0\0"
        await ws.send(b"\x01")  # ClientInit: shared
        return await asyncio.wait_for(ws.recv(), 10)


async def _refused(url: str) -> int:
    try:
        async with connect(url, open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_serial_console_through_the_proxy(cloud: KumoCloud, server: dict):
    with _nova(cloud, "2.1") as nova:
        r = nova.post(f"/servers/{server['id']}/action", json={"os-getSerialConsole": {"type": "serial"}})
    assert r.status_code == 200, r.text
    console = r.json()["console"]
    assert console["type"] == "serial" and console["url"].startswith("ws://")
    banner, echoed, proto = asyncio.run(_serial_roundtrip(console["url"]))
    assert b"login:" in banner and echoed == b"echo kumo\r" and proto == "binary"
    assert asyncio.run(_refused(console["url"])) == 403  # a token opens one connection
    bad = console["url"].replace("token=", "token=x")
    assert asyncio.run(_refused(bad)) == 403


def test_vnc_console_through_the_proxy(cloud: KumoCloud, server: dict):
    with _nova(cloud, "2.6") as nova:
        r = nova.post(f"/servers/{server['id']}/remote-consoles",
                      json={"remote_console": {"protocol": "vnc", "type": "novnc"}})  # fmt: skip
    assert r.status_code == 200, r.text
    rc = r.json()["remote_console"]
    assert rc["protocol"] == "vnc" and rc["type"] == "novnc" and "vnc_lite.html?path=" in rc["url"]
    init = asyncio.run(_rfb_handshake(_ws_url(rc["url"])))
    assert len(init) == 24 + struct.unpack(">I", init[20:24])[0] and b"kumo fake" in init
    page = httpx.get(rc["url"], timeout=10)
    if Path("/usr/share/novnc/vnc_lite.html").is_file():  # the Debian package novnc
        assert page.status_code == 200 and "noVNC" in page.text and "<script" in page.text
    else:
        assert page.status_code == 404 and "noVNC is not installed" in page.text
    # a serial token does not open the VNC console
    with _nova(cloud, "2.6") as nova:
        serial = nova.post(f"/servers/{server['id']}/remote-consoles",
                           json={"remote_console": {"protocol": "serial", "type": "serial"}}).json()  # fmt: skip
    token = parse_qs(urlparse(serial["remote_console"]["url"]).query)["token"][0]
    vnc_url = _ws_url(rc["url"]).split("?")[0] + f"?token={token}"
    assert asyncio.run(_refused(vnc_url)) == 403


def test_console_api_errors_and_auth_tokens(cloud: KumoCloud, server: dict):
    sid = server["id"]
    with _nova(cloud, "2.6") as nova:
        def rc(protocol: str, ctype: str) -> httpx.Response:
            return nova.post(f"/servers/{sid}/remote-consoles", json={"remote_console": {"protocol": protocol, "type": ctype}})

        assert rc("vnc", "serial").status_code == 400  # not a pair Nova accepts
        assert rc("spice", "spice-html5").status_code == 400  # a pair kumo does not serve
        assert rc("nope", "novnc").status_code == 400
        assert nova.post(f"/servers/{sid}/remote-consoles", json={"remote_console": {"type": "novnc"}}).status_code == 400
        r = nova.post("/servers/00000000-0000-4000-8000-000000000000/remote-consoles",
                      json={"remote_console": {"protocol": "vnc", "type": "novnc"}})  # fmt: skip
        assert r.status_code == 404 and "itemNotFound" in r.json()
        url = rc("vnc", "novnc").json()["remote_console"]["url"]
        token = parse_qs(urlparse(_ws_url(url)).query)["token"][0]
    with _nova(cloud, "2.5") as nova:
        assert nova.post(f"/servers/{sid}/remote-consoles",
                         json={"remote_console": {"protocol": "vnc", "type": "novnc"}}).status_code == 404  # fmt: skip
        assert nova.post(f"/servers/{sid}/action", json={"os-getVNCConsole": {"type": "bogus"}}).status_code == 400
        assert nova.get(f"/os-console-auth-tokens/{token}").status_code == 400  # only rdp before 2.31
    with _nova(cloud, "2.31") as nova:
        shown = nova.get(f"/os-console-auth-tokens/{token}")
        assert shown.status_code == 200 and shown.json()["console"]["instance_uuid"] == sid
        assert nova.get("/os-console-auth-tokens/not-a-token").status_code == 404
        member = httpx.get(f"{cloud.url}/compute/v2.1/os-console-auth-tokens/{token}", timeout=10,
                           headers={"X-Auth-Token": cloud.issue("demo")[0],
                                    "OpenStack-API-Version": "compute 2.31"})  # fmt: skip
        assert member.status_code == 403
        assert nova.post(f"/servers/{sid}/action", json={"os-stop": None}).status_code == 202
        deadline = time.monotonic() + 20
        while nova.get(f"/servers/{sid}").json()["server"]["status"] != "SHUTOFF":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        r = nova.post(f"/servers/{sid}/action", json={"os-getVNCConsole": {"type": "novnc"}})
        assert r.status_code == 409 and "conflictingRequest" in r.json()
        assert asyncio.run(_refused(_ws_url(url))) == 403  # the URL handed out before the stop is dead too
        assert nova.post(f"/servers/{sid}/action", json={"os-start": None}).status_code == 202
        while nova.get(f"/servers/{sid}").json()["server"]["status"] != "ACTIVE":
            assert time.monotonic() < deadline + 20
            time.sleep(0.1)


def test_openstack_console_url_show(cloud: KumoCloud, server: dict):
    vnc = cloud.cli_json("console", "url", "show", server["id"])
    assert vnc["type"] == "novnc" and "token%3D" in vnc["url"]
    serial = cloud.cli_json("console", "url", "show", "--serial", server["id"])
    assert serial["type"] == "serial" and serial["url"].startswith("ws://")
    banner, _echo, _proto = asyncio.run(_serial_roundtrip(serial["url"]))
    assert server["name"].encode() in banner
