"""The image format inspector: headers built by hand, checked without qemu-img."""

from __future__ import annotations

import struct

import pytest

from kumo.image import formats


def qcow2(
    virtual: int = 1 << 30,
    backing: bytes = b"",
    version: int = 3,
    incompatible: int = 0,
    data_file: bytes = b"",
) -> bytes:
    header = bytearray(4096)
    header[0:4] = b"QFI\xfb"
    struct.pack_into(">I", header, 4, version)
    struct.pack_into(">I", header, 20, 16)  # cluster bits
    struct.pack_into(">Q", header, 24, virtual)
    if version == 3:
        struct.pack_into(">Q", header, 72, incompatible)
        struct.pack_into(">I", header, 100, 112)  # header length
        offset = 112
        if data_file:
            struct.pack_into(">II", header, offset, 0x44415441, len(data_file))
            header[offset + 8 : offset + 8 + len(data_file)] = data_file
            offset += 8 + ((len(data_file) + 7) & ~7)
        struct.pack_into(">II", header, offset, 0, 0)
    if backing:
        struct.pack_into(">Q", header, 8, 1024)
        struct.pack_into(">I", header, 16, len(backing))
        header[1024 : 1024 + len(backing)] = backing
    return bytes(header)


def inspect(data: bytes, chunk: int = 100) -> formats.Detected:
    insp = formats.Inspector()
    for i in range(0, len(data), chunk):
        insp.feed(data[i : i + chunk])
    return insp.result()


def test_qcow2_virtual_size_and_safe():
    found = inspect(qcow2(virtual=5 * 1024**3))
    assert found == formats.Detected("qcow2", 5 * 1024**3, None)
    assert formats.check("qcow2", "bare", found) is None


def test_qcow2_v2():
    assert inspect(qcow2(version=2)).format == "qcow2"


def test_qcow2_backing_file_is_unsafe():
    found = inspect(qcow2(backing=b"/etc/passwd"))
    assert found.unsafe and "backing file" in found.unsafe
    assert "unsafe" in formats.check("qcow2", "bare", found)


def test_qcow2_external_data_file_is_unsafe():
    assert "external data file" in inspect(qcow2(incompatible=0x4)).unsafe
    assert "external data file" in inspect(qcow2(data_file=b"/etc/shadow")).unsafe


def test_raw_declared_as_qcow2_is_refused():
    found = inspect(b"\x01" * 10000)
    assert found == formats.Detected("raw", 10000)
    assert "does not match" in formats.check("qcow2", "bare", found)
    assert formats.check("raw", "bare", found) is None
    for claimed in ("ami", "aki", "ari"):
        assert formats.check(claimed, claimed, found) is None


def test_qcow2_declared_as_raw_is_refused():
    assert "does not match" in formats.check("raw", "bare", inspect(qcow2()))


def test_archive_containers_are_not_inspected():
    assert formats.check("qcow2", "ova", inspect(b"tar data")) is None


def test_vmdk_sparse():
    header = bytearray(2048)
    header[0:4] = b"KDMV"
    struct.pack_into("<Q", header, 12, 2048)  # capacity in sectors
    struct.pack_into("<Q", header, 28, 1)  # descriptor at sector 1
    struct.pack_into("<Q", header, 36, 1)
    desc = b'# Disk DescriptorFile\ncreateType="monolithicSparse"\nRW 2048 SPARSE "disk.vmdk"\n'
    header[512 : 512 + len(desc)] = desc
    found = inspect(bytes(header))
    assert found == formats.Detected("vmdk", 2048 * 512, None)
    flat = bytes(header).replace(b"monolithicSparse", b"monolithicFlat..")
    assert "createType" in inspect(flat).unsafe


def test_vmdk_descriptor_only_is_unsafe():
    found = inspect(b'# Disk DescriptorFile\ncreateType="vmfs"\nRW 10 VMFS "/etc/passwd"\n')
    assert found.format == "vmdk" and found.unsafe


def test_vhd_footer_at_start_and_end():
    footer = bytearray(512)
    footer[0:8] = b"conectix"
    struct.pack_into(">Q", footer, 48, 123 * 512)
    assert inspect(bytes(footer) + b"\0" * 4096) == formats.Detected("vhd", 123 * 512)
    assert inspect(b"\0" * 4096 + bytes(footer)).format == "vhd"


def test_vhdx_and_vdi_and_iso():
    assert inspect(b"vhdxfile" + b"\0" * 1000).format == "vhdx"
    vdi = bytearray(1024)
    struct.pack_into("<I", vdi, 0x40, 0xBEDA107F)
    struct.pack_into("<Q", vdi, 0x170, 7 * 1024**2)
    assert inspect(bytes(vdi)) == formats.Detected("vdi", 7 * 1024**2)
    iso = bytearray(40000)
    iso[0x8001:0x8006] = b"CD001"
    struct.pack_into("<I", iso, 0x8050, 20)
    struct.pack_into("<H", iso, 0x8080, 2048)
    assert inspect(bytes(iso)) == formats.Detected("iso", 20 * 2048)


@pytest.mark.parametrize("size", [0, 1, 511, 512, 3 * 1024 * 1024])
def test_inspector_keeps_bounded_memory(size):
    insp = formats.Inspector()
    insp.feed(b"\0" * size)
    assert len(insp.head) <= formats.HEAD and len(insp.tail) <= formats.TAIL
    assert insp.result() == formats.Detected("raw", size)
