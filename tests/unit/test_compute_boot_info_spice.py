"""Units behind compute 2.98-2.100: the image properties a server keeps (kumo.compute.service.boot_info)
and the fake driver's SPICE link handshake (kumo.agents.compute.fake_spice)."""

from __future__ import annotations

import shutil
import socket
import struct
from pathlib import Path

import pytest

from kumo.agents.compute.fake_spice import PUBKEY_BYTES, FakeSpice, link_reply
from kumo.compute.service import boot_info

VM = "5b1c9e2a-7d4f-4e8a-9c3b-0123456789ab"


def test_image_properties_keep_base_fields_and_custom_properties_as_strings() -> None:
    image = {
        "id": "i", "name": "cirros", "status": "active", "visibility": "public", "size": 10, "checksum": "c",
        "min_ram": 64, "min_disk": 1, "disk_format": "qcow2", "container_format": "bare", "tags": ["a"],
        "os_distro": "cirros", "hw_rng_model": "virtio", "long": "x" * 300, "flag": True, "empty": None,
        "img_signature": "sig", "img_signature_hash_method": "SHA-256",
    }  # fmt: skip
    props = boot_info.image_properties(image)
    assert props == {
        "min_ram": "64", "min_disk": "1", "disk_format": "qcow2", "container_format": "bare",
        "os_distro": "cirros", "hw_rng_model": "virtio", "long": "x" * 255, "flag": "True", "empty": None,
    }  # fmt: skip
    assert boot_info.image_properties(None) == {}


def test_boot_info_is_recorded_next_to_other_system_metadata() -> None:
    meta = boot_info.with_boot_info({"scheduler_hints": {"same_host": ["s"]}}, {"os_type": "linux"}, {"group": "g"})
    assert meta["scheduler_hints"] == {"same_host": ["s"]}  # what the scheduler keeps stays
    assert boot_info.saved_image_properties(meta) == {"os_type": "linux"}
    assert boot_info.saved_hints(meta) == {"group": "g"}
    assert boot_info.saved_hints(None) == {} and boot_info.saved_image_properties({}) == {}


def _link(port: int, channel_type: int, connection_id: int = 0) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(struct.pack("<4sIIIIBBIIIII", b"REDQ", 2, 2, 26, connection_id, channel_type, 0, 1, 1, 18, 11, 9))
        head = b""
        while len(head) < 16:
            head += sock.recv(16 - len(head))
        size = struct.unpack_from("<I", head, 12)[0]
        body = b""
        while len(body) < size:
            body += sock.recv(size - len(body))
        error = struct.unpack_from("<I", body)[0]
        if error == 0:  # AuthSpice, then garbage: refused; then a real (empty-password) ticket: accepted
            sock.sendall(struct.pack("<I", 1) + _ticket(body[4 : 4 + PUBKEY_BYTES]))
            assert sock.recv(4) == struct.pack("<I", 0)
        return error, body


def _ticket(pubkey: bytes, password: bytes = b"") -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_der_public_key(pubkey)
    return key.encrypt(password + b"\0", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))  # type: ignore[union-attr]


def _garbage_ticket_refused(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(struct.pack("<4sIIIIBBIIIII", b"REDQ", 2, 2, 26, 0, 1, 0, 1, 1, 18, 11, 9))
        head = b""
        while len(head) < 16:
            head += sock.recv(16 - len(head))
        size = struct.unpack_from("<I", head, 12)[0]
        body = b""
        while len(body) < size:
            body += sock.recv(size - len(body))
        sock.sendall(struct.pack("<I", 1) + b"\0" * 128)
        return struct.unpack("<I", sock.recv(4))[0]


def test_fake_spice_answers_the_link_handshake_per_vm() -> None:
    spice = FakeSpice()
    try:
        host, port = spice.address("vm-1")
        assert host == "127.0.0.1" and spice.address("vm-1") == (host, port) and spice.address("vm-2")[1] != port
        error, body = _link(port, channel_type=1)
        assert error == 0 and len(body) == 4 + PUBKEY_BYTES + 12 + 4
        num_common, num_channel, caps_offset = struct.unpack_from("<III", body, 4 + PUBKEY_BYTES)
        assert (num_common, num_channel) == (1, 0) and struct.unpack_from("<I", body, caps_offset)[0] == 0b1011
        error, _ = _link(port, channel_type=2)  # a sub-channel without a session to join
        assert error != 0
        assert _garbage_ticket_refused(port) == 7  # SPICE_LINK_ERR_PERMISSION_DENIED
    finally:
        spice.close()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # stopped listeners are gone


def test_link_reply_header_is_spice_2_2() -> None:
    reply = link_reply(0)
    magic, major, minor, size = struct.unpack_from("<4sIII", reply)
    assert (magic, major, minor, size) == (b"REDQ", 2, 2, len(reply) - 16)


def test_qemu_argv_gets_a_ticketless_spice_display_only_when_asked(tmp_path: Path) -> None:
    from kumo.agents.compute.driver import FlavorSpec, VmSpec
    from kumo.agents.compute.qemu import cmdline

    spec = VmSpec(id=VM, name="vm", hostname="vm", project_id="p", flavor=FlavorSpec("f", 1, 128, 1), image=None)
    paths = cmdline.VmPaths(tmp_path / "vm", tmp_path / "s")
    assert "-spice" not in cmdline.build_argv(spec, paths)
    argv = cmdline.build_argv(spec, paths, spice=("127.0.0.1", 5930))
    assert argv[argv.index("-spice") + 1] == "port=5930,addr=127.0.0.1,disable-ticketing=on"
    headless = cmdline.build_argv(spec, paths, vnc=False, spice=("127.0.0.1", 5930))
    assert "-vga" in headless and "-spice" in headless


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None,
                    reason="QEMU not installed")  # fmt: skip
def test_qemu_driver_vm_answers_spice_on_its_saved_address(tmp_path: Path) -> None:
    from kumo.agents.compute.driver import FlavorSpec, VmSpec
    from kumo.agents.compute.qemu.driver import QemuDriver

    spec = VmSpec(id=VM, name="vm", hostname="vm", project_id="p", flavor=FlavorSpec("f", 1, 64, 1), image=None)
    plain = QemuDriver(tmp_path / "plain", None, inventory={"vcpus": 1, "memory_mb": 512, "local_gb": 1})
    assert plain.spice_consoles is False and plain.spice_address(VM) is None
    d = QemuDriver(tmp_path / "compute", None, inventory={"vcpus": 1, "memory_mb": 512, "local_gb": 1}, spice=True)
    try:
        d.ensure_running(spec)
        address = d.spice_address(VM)
        assert address is not None and address[0] == "127.0.0.1"
        error, _body = _link(address[1], channel_type=1)
        assert error == 0
        assert _garbage_ticket_refused(address[1]) == 7  # the fake answers bad tickets as QEMU does
    finally:
        d.ensure_deleted(VM)
    assert d.spice_address(VM) is None
