"""Console tokens (one use, expiring, stored hashed), the fake driver's console sockets, config drive ISOs."""

from __future__ import annotations

import base64
import socket
import struct
from datetime import datetime, timedelta

import pycdlib
import pytest

from kumo.agents.compute.configdrive import ConfigDriveError, build_config_drive, read_config_drive
from kumo.agents.compute.fake_console import FakeConsoles
from kumo.common.config import ComputeSettings
from kumo.common.context import RequestContext
from kumo.common.db import Database
from kumo.common.errors import APIError
from kumo.compute.models import ComputeBase, ConsoleAuthToken, Server
from kumo.compute.service import consoles
from kumo.compute.service.core import ComputeService

SID = "11111111-2222-3333-4444-555555555555"
CTX = RequestContext(user_id="u1", project_id="p1", roles=frozenset({"member", "reader"}))


def _svc(**attrs) -> ComputeService:  # type: ignore[no-untyped-def]
    db = Database("sqlite://")
    ComputeBase.metadata.create_all(db.engine)
    now = datetime(2026, 1, 1)
    row = dict(id=SID, seq=1, name="vm", project_id="p1", user_id="u1", flavor_id="1", flavor={}, vm_state="active",
               host="h1", created_at=now, updated_at=now)  # fmt: skip
    row.update(attrs)
    with db.session() as s:
        s.add(Server(**row))
    return ComputeService(db=db, settings=ComputeSettings(), agent_secret="a")


def test_token_is_hashed_single_use_and_expires():
    svc = _svc()
    token, _ = consoles.create_token(svc, CTX, SID, "serial")
    with svc.db.reader() as s:
        stored = [r.token_hash for r in s.query(ConsoleAuthToken)]
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64
    assert consoles.show_token(svc, token).server_id == SID  # the admin view does not use it up
    grant = consoles.consume_token(svc, token)
    assert grant is not None and grant.kind == "serial" and grant.host == "h1"
    assert consoles.consume_token(svc, token) is None  # one use
    with pytest.raises(APIError) as err:
        consoles.show_token(svc, token)
    assert err.value.status == 404
    old, _ = consoles.create_token(svc, CTX, SID, "novnc")
    with svc.db.session() as s:
        for row in s.query(ConsoleAuthToken):
            row.expires_at = datetime.utcnow() - timedelta(seconds=1)
    assert consoles.consume_token(svc, old) is None
    assert consoles.consume_token(svc, "") is None and consoles.consume_token(svc, "made-up") is None


def test_token_needs_a_ready_server_of_ones_own():
    svc = _svc(vm_state="stopped")
    with pytest.raises(APIError) as err:
        consoles.create_token(svc, CTX, SID, "novnc")
    assert err.value.status == 409
    svc = _svc()
    other = RequestContext(user_id="u2", project_id="p2", roles=frozenset({"member"}))
    with pytest.raises(APIError) as err:
        consoles.create_token(svc, other, SID, "novnc")
    assert err.value.status == 404
    token, _ = consoles.create_token(svc, CTX, SID, "novnc")
    with svc.db.session() as s:  # stopped after the URL was handed out
        s.get(Server, SID).vm_state = "stopped"
    assert consoles.consume_token(svc, token) is None


@pytest.mark.parametrize(
    ("protocol", "ctype", "message"),
    [("vnc", "serial", "Invalid console type"), ("bogus", "novnc", "protocol"), ("spice", "spice-html5", "Unavailable"),
     ("rdp", "rdp-html5", "Unavailable"), ("mks", "webmks", "protocol"), (None, "xvpvnc", "Unavailable")],
)  # fmt: skip
def test_console_types(protocol, ctype, message):
    with pytest.raises(APIError) as err:
        consoles.check_type(protocol, ctype)
    assert err.value.status == 400 and message in err.value.message
    consoles.check_type("vnc", "novnc")
    consoles.check_type("serial", "serial")


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    return sock


def test_fake_consoles_speak_their_protocols():
    fc = FakeConsoles()
    try:
        serial = _connect(fc.socket_path(SID, "serial", "vm1"))
        assert serial.recv(4096).endswith(b"vm1 login: ")
        serial.sendall(b"root\n")
        assert serial.recv(4096) == b"root\n"
        vnc = _connect(fc.socket_path(SID, "vnc", "vm1"))
        assert vnc.recv(12) == b"RFB 003.008\n"
        vnc.sendall(b"RFB 003.008\n")
        assert vnc.recv(2) == b"\x01\x01"
        vnc.sendall(b"\x01")
        assert vnc.recv(4) == b"\0\0\0\0"
        vnc.sendall(b"\x01")
        init = vnc.recv(4096)
        assert struct.unpack(">HH", init[:4]) == (640, 480) and init[24:] == b"kumo fake vm1"
        assert len(init) == 24 + struct.unpack(">I", init[20:24])[0]
        path = fc.socket_path(SID, "serial", "vm1")
        fc.stop(SID)
        with pytest.raises(OSError):
            _connect(path)
        serial.close()
        vnc.close()
    finally:
        fc.close()


def _doc(files: dict[str, bytes]) -> dict:
    return {"files": [{"path": p, "content": base64.b64encode(d).decode()} for p, d in files.items()]}


def test_config_drive_iso(tmp_path):
    files = {
        "openstack/latest/meta_data.json": b'{"uuid": "x"}',
        "openstack/latest/user_data": b"#!/bin/sh\n",
        "openstack/latest/vendor_data2.json": b"{}",
        "openstack/latest/vendor_data.json": b"{}",  # same 8.3-ish stem as vendor_data2.json
        "openstack/2012-08-10/meta_data.json": b"{}",
        "ec2/latest/meta-data.json": b"{}",
    }
    iso = build_config_drive(_doc(files), tmp_path / "cd" / "disk.config")
    assert read_config_drive(iso) == files
    probe = pycdlib.PyCdlib()
    probe.open(str(iso))
    try:
        assert probe.pvd.volume_identifier.decode().strip() == "config-2"
        assert probe.has_rock_ridge() and probe.has_joliet()
        names = {n for d, _s, fs in probe.walk(joliet_path="/") for n in fs if d == "/openstack/latest"}
        assert names == {"meta_data.json", "user_data", "vendor_data.json", "vendor_data2.json"}
    finally:
        probe.close()
    assert not list((tmp_path / "cd").glob("*.tmp"))


@pytest.mark.parametrize("path", ["../etc/passwd", "/abs", "a/../../b", ""])
def test_config_drive_refuses_unsafe_paths(tmp_path, path):
    with pytest.raises(ConfigDriveError):
        build_config_drive(_doc({path: b"x"}), tmp_path / "x.iso")
    assert not (tmp_path / "x.iso").exists()
