"""Multi-node attach through the API: an attachment whose connector names another host gets NBD
connection info for an export the volume agent serves (qemu-storage-daemon on loopback here),
readable and writable with qemu-io; deleting the attachment removes the export. A connector on
the storage host itself keeps the local path."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support import unique

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-storage-daemon") is None or shutil.which("qemu-io") is None,
    reason="qemu-utils is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(what: str, fn, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def _qemu_io(info: dict, command: str, *opts: str) -> subprocess.CompletedProcess[str]:
    d = info["data"]
    url = f"nbd://{d['host']}:{d['port']}/{d['export']}"
    return subprocess.run(["qemu-io", *opts, "-f", "raw", "-c", command, url], capture_output=True, text=True,
                          timeout=30)


def test_remote_connector_gets_an_nbd_export(kumo_cloud) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    cloud = kumo_cloud(env={"KUMO_BLOCK_STORAGE__NBD_PORT": str(port), "KUMO_BLOCK_STORAGE__NBD_ADDRESS": "127.0.0.1",
                            "KUMO_BLOCK_STORAGE__HOST": "stor1"})
    pidfile = Path(cloud.data_dir) / "volumes" / "nbd" / "nbd.pid"
    catalog = cloud.admin().get("/auth/catalog").json()["catalog"]
    url = next(ep["url"] for e in catalog if e["type"] == "block-storage" for ep in e["endpoints"]
               if ep["interface"] == "public")
    try:
        with httpx.Client(base_url=url, headers={"X-Auth-Token": cloud.admin_token,
                                                 "OpenStack-API-Version": "volume 3.44"}, timeout=60) as cinder:
            r = cinder.post("/volumes", json={"volume": {"size": 1, "name": unique("nbd")}})
            assert r.status_code == 202, r.text
            vid = r.json()["volume"]["id"]
            _until("volume available", lambda: cinder.get(f"/volumes/{vid}").json()["volume"]["status"] == "available")
            # the storage host itself: the local file as before
            local = cinder.post("/attachments", json={"attachment": {"volume_uuid": vid, "connector": {"host": "stor1"}}})
            assert local.status_code == 200, local.text
            assert local.json()["attachment"]["connection_info"]["driver_volume_type"] == "file"
            assert cinder.delete(f"/attachments/{local.json()['attachment']['id']}").status_code == 200
            # another host: an NBD export served by the time the API answers
            started = time.monotonic()
            a = cinder.post("/attachments", json={"attachment": {"volume_uuid": vid,
                                                                  "connector": {"host": "compute7"}}})
            attach_s = time.monotonic() - started
            assert a.status_code == 200, a.text
            att = a.json()["attachment"]
            info = att["connection_info"]
            assert info["driver_volume_type"] == "nbd", info
            assert info["data"]["host"] == "127.0.0.1" and info["data"]["port"] == port
            assert info["data"]["format"] == "raw" and len(info["data"]["export"]) >= 32
            assert "path" not in info["data"]
            w = _qemu_io(info, "write -P 0x6b 0 1M")
            assert w.returncode == 0, w.stderr
            assert "read 1048576/1048576" in _qemu_io(info, "read -P 0x6b 0 1M", "-r").stdout
            # updating the connector keeps the export name; another attachment gets its own
            u = cinder.put(f"/attachments/{att['id']}", json={"attachment": {"connector": {"host": "compute7"}}})
            assert u.status_code == 200, u.text
            assert u.json()["attachment"]["connection_info"]["data"]["export"] == info["data"]["export"]
            # detach: the export goes away (the agent's next pass)
            assert cinder.delete(f"/attachments/{att['id']}").status_code == 200
            _until("export removed", lambda: _qemu_io(info, "read 0 512", "-r").returncode != 0, 30)
            print(f"\nattach with a new NBD export answered in {attach_s:.2f} s")
    finally:
        if pidfile.is_file():  # the daemon outlives the agent by design; the test removes it
            subprocess.run(["kill", pidfile.read_text().strip()], check=False)
