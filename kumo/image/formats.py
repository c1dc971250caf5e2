"""Disk image format inspection, from headers only (no qemu-img).

An :class:`Inspector` is fed the data as it streams past; it keeps the first
``HEAD`` bytes and the last 512, then names the format it recognises, the
virtual size the header declares, and why the image is unsafe (a qcow2 backing
file or external data file, a VMDK that refers to other files). Like Glance's
format_inspector, data that matches no known format is ``raw``; ``ami``, ``aki``
and ``ari`` images are raw data.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

HEAD = 2 * 1024 * 1024
TAIL = 512

# Glance's disk formats, and which detected format each of them must hold.
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
_EXPECTED = {"ami": "raw", "ari": "raw", "aki": "raw", "ploop": "raw"}
# container formats whose payload is an archive, not a disk image: not inspected
_ARCHIVES = ("ova", "docker", "compressed")


@dataclass(frozen=True, slots=True)
class Detected:
    format: str
    virtual_size: int | None
    unsafe: str | None = None  # why the image must be refused, if it must


class Inspector:
    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = b""
        self.size = 0

    def feed(self, chunk: bytes | memoryview) -> None:
        chunk = bytes(chunk)
        if len(self.head) < HEAD:
            self.head += chunk[: HEAD - len(self.head)]
        self.tail = (self.tail + chunk[-TAIL:])[-TAIL:]  # never copy the whole chunk
        self.size += len(chunk)

    def result(self) -> Detected:
        return detect(bytes(self.head), self.tail, self.size)


def detect(head: bytes, tail: bytes, size: int) -> Detected:
    for probe in (_qcow2, _vhdx, _vhd, _vmdk, _vdi, _iso):
        found = probe(head, tail, size)
        if found is not None:
            return found
    return Detected("raw", size)


def check(disk_format: str | None, container_format: str | None, found: Detected) -> str | None:
    """Why data of format ``found`` may not be stored as ``disk_format`` (None when it may)."""
    if container_format in _ARCHIVES:
        return None
    if found.unsafe:
        return f"Image is unsafe: {found.unsafe}"
    expected = _EXPECTED.get(disk_format or "raw", disk_format or "raw")
    if found.format != expected:
        return (
            f"Image content does not match disk_format: the data is {found.format}, "
            f"but the image's disk_format is {disk_format}"
        )
    return None


def _u32be(b: bytes, off: int) -> int:
    return struct.unpack_from(">I", b, off)[0]


def _u64be(b: bytes, off: int) -> int:
    return struct.unpack_from(">Q", b, off)[0]


def _u32le(b: bytes, off: int) -> int:
    return struct.unpack_from("<I", b, off)[0]


def _u64le(b: bytes, off: int) -> int:
    return struct.unpack_from("<Q", b, off)[0]


def _qcow2(head: bytes, _tail: bytes, _size: int) -> Detected | None:
    if len(head) < 72 or head[:4] != b"QFI\xfb":
        return None
    version = _u32be(head, 4)
    backing_offset = _u64be(head, 8)
    virtual = _u64be(head, 24)
    unsafe = None
    if version not in (2, 3):
        unsafe = f"unsupported qcow2 version {version}"
    elif backing_offset:
        unsafe = "the qcow2 header names a backing file"
    elif version == 3 and len(head) >= 104:
        incompatible = _u64be(head, 72)
        if incompatible & 0x4:
            unsafe = "the qcow2 image uses an external data file"
        else:
            header_length = _u32be(head, 100)
            unsafe = _qcow2_extensions(head, header_length)
    return Detected("qcow2", virtual, unsafe)


def _qcow2_extensions(head: bytes, offset: int) -> str | None:
    # header extensions: (type u32, length u32, data padded to 8); type 0 ends them
    for _ in range(64):
        if offset + 8 > len(head):
            return None
        ext_type, length = struct.unpack_from(">II", head, offset)
        if ext_type == 0:
            return None
        if ext_type == 0x44415441:  # "DATA": external data file name
            return "the qcow2 image uses an external data file"
        offset += 8 + ((length + 7) & ~7)
    return None


def _vhdx(head: bytes, _tail: bytes, _size: int) -> Detected | None:
    if head[:8] != b"vhdxfile":
        return None
    return Detected("vhdx", _vhdx_virtual_size(head))


def _guid_le(text: str) -> bytes:
    import uuid

    return uuid.UUID(text).bytes_le


def _vhdx_virtual_size(head: bytes) -> int | None:
    region = 0x30000  # region table 1 at 192 KiB
    if len(head) < region + 16 or head[region : region + 4] != b"regi":
        return None
    count = _u32le(head, region + 8)
    meta_guid = _guid_le("8B7CA206-4790-4B9A-B8FE-575F050F886E")
    size_guid = _guid_le("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
    for i in range(min(count, 2047)):
        entry = region + 16 + 32 * i
        if entry + 32 > len(head):
            return None
        if head[entry : entry + 16] == meta_guid:
            meta = _u64le(head, entry + 16)
            if meta + 32 > len(head) or head[meta : meta + 8] != b"metadata":
                return None
            entries = struct.unpack_from("<H", head, meta + 10)[0]
            for j in range(min(entries, 2047)):
                item = meta + 32 + 32 * j
                if item + 32 > len(head):
                    return None
                if head[item : item + 16] == size_guid:
                    off = _u32le(head, item + 16)
                    if meta + off + 8 <= len(head):
                        return _u64le(head, meta + off)
                    return None
            return None
    return None


def _vhd(head: bytes, tail: bytes, size: int) -> Detected | None:
    for footer in (head[:512], tail[-512:] if size >= 512 else b""):
        if footer[:8] == b"conectix" and len(footer) >= 56:
            return Detected("vhd", _u64be(footer, 48))
    return None


_VMDK_SAFE_TYPES = ("monolithicSparse", "streamOptimized")


def _vmdk(head: bytes, _tail: bytes, _size: int) -> Detected | None:
    if head[:4] == b"KDMV" and len(head) >= 512:
        capacity = _u64le(head, 12)
        desc_offset = _u64le(head, 28) * 512
        desc_size = _u64le(head, 36) * 512
        unsafe = None
        if desc_offset and desc_size:
            text = head[desc_offset : desc_offset + desc_size].split(b"\0", 1)[0]
            unsafe = _vmdk_descriptor_problem(text.decode("latin-1"))
        return Detected("vmdk", capacity * 512, unsafe)
    if head.startswith(b"# Disk DescriptorFile"):
        text = head.split(b"\0", 1)[0].decode("latin-1")
        return Detected(
            "vmdk", None, _vmdk_descriptor_problem(text) or "a VMDK descriptor refers to other files"
        )
    return None


def _vmdk_descriptor_problem(text: str) -> str | None:
    match = re.search(r'^createType\s*=\s*"?([A-Za-z]+)"?', text, re.MULTILINE)
    if match and match.group(1) not in _VMDK_SAFE_TYPES:
        return f"VMDK createType {match.group(1)} is not allowed"
    extents = re.findall(r'^(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s*"?([^"\n]*)"?', text, re.MULTILINE)
    if len(extents) > 1:
        return "the VMDK descriptor names more than one extent"
    return None


def _vdi(head: bytes, _tail: bytes, _size: int) -> Detected | None:
    if len(head) < 0x180 or _u32le(head, 0x40) != 0xBEDA107F:
        return None
    return Detected("vdi", _u64le(head, 0x170))


def _iso(head: bytes, _tail: bytes, _size: int) -> Detected | None:
    # primary volume descriptor at sector 16 (2048-byte sectors)
    if len(head) < 0x8000 + 0x88 or head[0x8001:0x8006] != b"CD001":
        return None
    blocks = _u32le(head, 0x8050)
    block_size = struct.unpack_from("<H", head, 0x8080)[0]
    return Detected("iso", blocks * block_size)
