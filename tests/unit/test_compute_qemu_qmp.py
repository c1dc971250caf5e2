"""The QMP client against a scripted QMP server on a unix socket (no QEMU needed)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from kumo.agents.compute.qemu import qmp


class FakeQemu:
    """Answers QMP like QEMU: greeting, capabilities, canned replies, events sent mid-stream."""

    def __init__(self, path: Path, replies: dict[str, list[str]]) -> None:
        self.path = path
        self.replies = replies
        self.received: list[dict] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
                buf = b""
                while True:
                    try:
                        chunk = conn.recv(4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        msg = json.loads(line)
                        self.received.append(msg)
                        name = msg["execute"]
                        canned = self.replies.get(name) or ['{"return": {}}']
                        for out in canned:
                            conn.sendall(out.encode() + b"\r\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def qemu(tmp_path: Path):  # type: ignore[no-untyped-def]
    servers: list[FakeQemu] = []

    def make(replies: dict[str, list[str]]) -> FakeQemu:
        server = FakeQemu(tmp_path / f"qmp{len(servers)}.sock", replies)
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.close()


def test_status_and_command(qemu) -> None:  # type: ignore[no-untyped-def]
    srv = qemu({"query-status": ['{"event": "RESUME", "data": {}}', '{"return": {"status": "paused", "running": false}}']})
    assert qmp.status(srv.path) == "paused"
    assert [m["execute"] for m in srv.received] == ["qmp_capabilities", "query-status"]
    assert qmp.command(srv.path, "stop") == {}


def test_errors_carry_the_class(qemu) -> None:  # type: ignore[no-untyped-def]
    srv = qemu({"device_del": ['{"error": {"class": "DeviceNotFound", "desc": "Device \'x\' not found"}}']})
    with pytest.raises(qmp.QmpError, match="not found") as exc:
        qmp.command(srv.path, "device_del", {"id": "x"})
    assert exc.value.klass == "DeviceNotFound"
    assert srv.received[-1] == {"execute": "device_del", "arguments": {"id": "x"}}


def test_wait_event_matches_data(qemu) -> None:  # type: ignore[no-untyped-def]
    srv = qemu({"device_del": [
        '{"return": {}}',
        '{"event": "DEVICE_DELETED", "data": {"path": "/machine/peripheral/vol-1/virtio-backend"}}',
        '{"event": "DEVICE_DELETED", "data": {"device": "vol-1", "path": "/machine/peripheral/vol-1"}}',
    ]})
    with qmp.QmpClient(srv.path) as q:
        q.execute("device_del", {"id": "vol-1"})
        ev = q.wait_event("DEVICE_DELETED", lambda e: e["data"].get("device") == "vol-1", timeout=5)
        assert ev is not None and ev["data"]["path"] == "/machine/peripheral/vol-1"
        assert q.wait_event("DEVICE_DELETED", lambda e: e["data"].get("device") == "vol-2", timeout=0.3) is None


def test_no_socket_is_a_qmp_error(tmp_path: Path) -> None:
    with pytest.raises(qmp.QmpError, match="cannot connect"):
        qmp.status(tmp_path / "missing.sock")


def test_silent_qemu_times_out(tmp_path: Path) -> None:
    path = tmp_path / "mute.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    try:
        with pytest.raises(qmp.QmpError, match="timed out"):
            qmp.QmpClient(path, timeout=0.3).connect()
    finally:
        sock.close()
