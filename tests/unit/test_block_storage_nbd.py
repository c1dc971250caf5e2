"""NBD exports of volumes (multi-node attach): the exporter against a real qemu-storage-daemon on
loopback, the work-document parsing, and the volume agent's export sync and report."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo.agents.block_storage import nbd
from kumo.agents.block_storage.agent import VolumeAgent, make_exporter
from kumo.agents.block_storage.backend import PermanentError
from kumo.agents.block_storage.file import FileBackend
from kumo.common.config import Settings

needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-storage-daemon") is None or shutil.which("qemu-io") is None
    or shutil.which("qemu-img") is None, reason="qemu-utils is not installed")

NAME = "Zx9-secret_export_name_0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _qemu_io(url: str, command: str, fmt: str = "raw", *opts: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["qemu-io", *opts, "-f", fmt, "-c", command, url], capture_output=True, text=True,
                          timeout=30)


@pytest.fixture
def exporter(tmp_path: Path):  # type: ignore[no-untyped-def]
    e = nbd.NbdExporter(tmp_path / "run", "127.0.0.1", _free_port())
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture
def backend(tmp_path: Path) -> FileBackend:
    b = FileBackend(tmp_path / "volumes", fmt="qcow2", capacity_gb=10)
    b.create_volume("vol-a", 1)
    return b


def _spec(b: FileBackend, vid: str, ro: bool = False) -> nbd.ExportSpec:
    driver, filename, fmt = nbd.source_of(b.connection_info(vid))
    return nbd.ExportSpec(vid, driver, filename, fmt, ro)


@needs_qemu
def test_export_serves_raw_view_of_qcow2_and_goes_away(exporter: nbd.NbdExporter, backend: FileBackend) -> None:
    url = f"nbd://127.0.0.1:{exporter.port}/{NAME}"
    assert exporter.reconcile({NAME: _spec(backend, "vol-a")}) == {NAME}
    w = _qemu_io(url, "write -P 0x5a 1M 64k")
    assert w.returncode == 0, w.stderr
    # the bytes are in the volume (a qcow2 file the daemon holds locked), at the guest-visible offset
    r = _qemu_io(str(backend.volume_path("vol-a")), "read -P 0x5a 1M 64k", "qcow2", "-r", "-U")
    assert "read 65536/65536" in r.stdout, r.stdout + r.stderr
    assert exporter.reconcile({NAME: _spec(backend, "vol-a")}) == {NAME}  # idempotent
    assert exporter.reconcile({}) == set()
    gone = _qemu_io(url, "read 0 512")
    assert gone.returncode != 0 and "not" in gone.stderr.lower()
    # a name nobody was given is refused even while another export is served
    assert exporter.reconcile({NAME: _spec(backend, "vol-a")}) == {NAME}
    assert _qemu_io(f"nbd://127.0.0.1:{exporter.port}/{NAME[:-1]}", "read 0 512").returncode != 0


@needs_qemu
def test_read_only_export_refuses_writes(exporter: nbd.NbdExporter, backend: FileBackend) -> None:
    exporter.reconcile({NAME: _spec(backend, "vol-a", ro=True)})
    url = f"nbd://127.0.0.1:{exporter.port}/{NAME}"
    assert _qemu_io(url, "read 0 4k", "raw", "-r").returncode == 0
    w = _qemu_io(url, "write -P 1 0 4k")  # opening it writable is refused
    assert w.returncode != 0 and "wrote" not in w.stdout, w.stdout


@needs_qemu
def test_exports_survive_an_agent_restart_and_come_back_after_the_daemon_dies(
        tmp_path: Path, exporter: nbd.NbdExporter, backend: FileBackend) -> None:
    backend.create_volume("vol-b", 1)
    other = "Other-export-name-for-volume-b"
    wanted = {NAME: _spec(backend, "vol-a"), other: _spec(backend, "vol-b")}
    assert exporter.reconcile(wanted) == set(wanted)
    pid = exporter._pid()
    # a new agent process: a new exporter object finds the daemon and its exports
    again = nbd.NbdExporter(exporter.run_dir, exporter.address, exporter.port)
    assert again.active() == {nbd.export_id(NAME), nbd.export_id(other)}
    assert again.reconcile({NAME: wanted[NAME]}) == {NAME}  # the unwanted one is dropped
    assert again._pid() == pid
    # the daemon is gone (host reboot): the next pass starts one and re-creates the exports
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while again.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert again.active() == set()
    assert again.reconcile(wanted) == set(wanted)
    assert again._pid() != pid
    assert _qemu_io(f"nbd://127.0.0.1:{exporter.port}/{other}", "read 0 4k").returncode == 0


def test_wanted_exports_keeps_valid_entries_for_held_volumes(backend: FileBackend) -> None:
    doc = [
        {"name": NAME, "volume_id": "vol-a", "read_only": True},
        {"name": "short", "volume_id": "vol-a"},  # too short to be a credential
        {"name": "x" * 20 + "/../", "volume_id": "vol-a"},
        {"name": "y" * 24, "volume_id": "not-here"},
        {"name": "z" * 24},
        "garbage",
    ]
    out = nbd.wanted_exports(doc, backend.connection_info, backend.volume_exists)
    assert list(out) == [NAME]
    assert out[NAME].read_only and out[NAME].fmt == "qcow2" and out[NAME].driver == "file"
    assert nbd.wanted_exports(None, backend.connection_info, backend.volume_exists) == {}


def test_source_of_block_devices_and_unknown_types() -> None:
    assert nbd.source_of({"driver_volume_type": "local", "data": {"device_path": "/dev/vg/v", "format": "raw"}}) == \
        ("host_device", "/dev/vg/v", "raw")
    with pytest.raises(PermanentError):
        nbd.source_of({"driver_volume_type": "iscsi", "data": {}})
    assert nbd.export_id(NAME) != nbd.export_id(NAME + "x") and nbd.export_id(NAME).startswith("kx")


def test_make_exporter_from_settings(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert make_exporter(s) is None
    s = Settings(data_dir=tmp_path, block_storage={"nbd_port": 10809}, node={"address": "10.0.0.5"})
    e = make_exporter(s)
    assert e is not None and e.endpoint == {"host": "10.0.0.5", "port": 10809}
    with pytest.raises(ValueError):
        make_exporter(Settings(data_dir=tmp_path, block_storage={"nbd_port": 10809}))


class FakeExporter:
    address, port = "10.0.0.9", 10809

    def __init__(self) -> None:
        self.calls: list[dict[str, nbd.ExportSpec]] = []

    @property
    def endpoint(self) -> dict[str, Any]:
        return {"host": self.address, "port": self.port}

    def reconcile(self, wanted: dict[str, nbd.ExportSpec]) -> set[str]:
        self.calls.append(dict(wanted))
        return set(wanted)


def test_agent_syncs_exports_and_reports_them_at_once(backend: FileBackend) -> None:
    posts: list[tuple[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append((request.url.path, json.loads(request.content or b"null")))
        return httpx.Response(204)

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://cp") as client:
            fake = FakeExporter()
            agent = VolumeAgent(client, "http://cp/volume/v3", "s3cret", backend, host="stor1",
                                exporter=fake)  # type: ignore[arg-type]
            cap = await agent._capacity()
            assert cap["nbd"] == {"host": "10.0.0.9", "port": 10809, "exports": []}
            agent._dispatch_all({"volumes": [], "exports": [{"name": NAME, "volume_id": "vol-a"}]})
            assert agent._exports_task is not None
            await agent._exports_task
            assert list(fake.calls[-1]) == [NAME]
            beat = [b for p, b in posts if p.endswith("/hosts/stor1@file/heartbeat")]
            assert beat and beat[-1]["capacity"]["nbd"]["exports"] == [NAME]
            # unchanged set: no extra report; a document without "exports" leaves them alone
            n = len(posts)
            agent._dispatch_all({"volumes": [], "exports": [{"name": NAME, "volume_id": "vol-a"}]})
            await agent._exports_task
            agent._dispatch_all({"volumes": []})
            assert len(posts) == n
            agent._dispatch_all({"volumes": [], "exports": []})
            await agent._exports_task
            assert fake.calls[-1] == {} and posts[-1][1]["capacity"]["nbd"]["exports"] == []

    asyncio.run(main())


def test_storage_node_join_gets_the_volume_agent_settings(tmp_path: Path) -> None:
    from kumo.runtime import roles
    from kumo.runtime.node import join

    answer = {
        "node": {"name": "s1", "roles": ["storage"], "key": "k3y", "address": "10.0.0.31"},
        "config": {
            "controller_url": "http://10.0.0.1:5100", "nodes_url": "http://10.0.0.1:5100/nodes",
            "identity_url": "http://10.0.0.1:5100/identity", "region": "RegionOne",
            "endpoints": {"block-storage": "http://10.0.0.1:5105/volume/v3/0123abcd"},
            "credentials": {"auth_url": "http://10.0.0.1:5100/identity/v3", "username": "kumo-node-s1",
                            "password": "pw"},
            "compute": {"agent_secret": "c", "heartbeat_interval": 10.0},
            "block_storage": {"agent_secret": "v0l", "heartbeat_interval": 5.0},
            "node": {"heartbeat_interval": 10.0},
        },
    }
    join.write_node_files(tmp_path, answer, host="10.0.0.31", port=6200, network_driver="none",
                          compute_driver="fake", extra_toml={"block_storage": {"nbd_port": 10809}})
    settings = Settings.load(tmp_path / "kumo.toml", data_dir=tmp_path)
    bs = settings.block_storage
    assert (bs.host, bs.agent_secret, bs.heartbeat_interval, bs.nbd_port) == ("s1", "v0l", 5.0, 10809)
    e = make_exporter(settings)
    assert e is not None and e.endpoint == {"host": "10.0.0.31", "port": 10809}  # the node's address
    info = roles.NodeInfo.load(settings)
    assert roles._volume_api(info.endpoints) == "http://10.0.0.1:5105/volume/v3"
    assert roles._volume_api({"volumev3": "http://c/volume/v3"}) == "http://c/volume/v3"
    assert roles._volume_api({}) is None
    # a compute node's join leaves block storage alone
    answer["node"]["roles"] = ["compute"]
    other = tmp_path / "c"
    join.write_node_files(other, answer, host="0.0.0.0", port=6200, network_driver="none", compute_driver="fake")
    assert Settings.load(other / "kumo.toml", data_dir=other).block_storage.agent_secret == ""
