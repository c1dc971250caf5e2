"""Back-end re-imaging (Cinder's os-reimage): the file back end against real qemu-img, the LVM back
end over the simulated LVM of test_block_storage_lvm."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kumo.agents.block_storage import lvm as lvm_backend
from kumo.agents.block_storage.backend import GiB, PermanentError
from kumo.agents.block_storage.file import FileBackend

from .test_block_storage_lvm import FakeLvm

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) is not installed")


def _read(b: FileBackend, vid: str, offset: int, length: int) -> bytes:
    with b.raw_reader(vid) as path, open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


@needs_qemu_img
@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_file_reimage_replaces_contents_and_keeps_size(tmp_path: Path, fmt: str) -> None:
    b = FileBackend(tmp_path / "volumes", fmt=fmt, capacity_gb=50)
    first = tmp_path / "first.raw"
    first.write_bytes(b"FIRST" + b"a" * 100_000)
    b.create_from_image("v1", 2, first, "raw")
    assert _read(b, "v1", 0, 5) == b"FIRST"
    second = tmp_path / "second.qcow2"
    raw2 = tmp_path / "second.raw"
    raw2.write_bytes(b"SECOND" + b"\0" * 4090)
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw2), str(second)], check=True)
    b.reimage("v1", 2, second, "qcow2")
    assert _read(b, "v1", 0, 6) == b"SECOND" and _read(b, "v1", 6, 10) == b"\0" * 10  # old bytes are gone
    assert b.volume_size_gb("v1") == 2
    b.reimage("v1", 2, second, "qcow2")  # repeating it is harmless
    assert _read(b, "v1", 0, 6) == b"SECOND"
    assert list((b.root / "tmp").iterdir()) == []


@needs_qemu_img
def test_file_reimage_refuses_missing_volume_and_too_big_image(tmp_path: Path) -> None:
    b = FileBackend(tmp_path / "volumes", fmt="qcow2", capacity_gb=50)
    img = tmp_path / "img.raw"
    img.write_bytes(b"x" * 4096)
    with pytest.raises(PermanentError, match="not on this storage host"):
        b.reimage("nope", 1, img, "raw")
    b.create_from_image("v1", 1, img, "raw")
    big = tmp_path / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "3G"], check=True)
    with pytest.raises(PermanentError, match="needs 3 GiB"):
        b.reimage("v1", 1, big, "qcow2")
    assert _read(b, "v1", 0, 4) == b"xxxx"  # the volume is untouched


def test_lvm_reimage_writes_over_the_existing_lv(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLvm("kumo-test-vg")
    fake.install(monkeypatch)
    be = lvm_backend.LvmBackend("kumo-test-vg")
    with pytest.raises(PermanentError, match="does not exist"):
        be.reimage("v1", 1, Path("/tmp/img"), "qcow2")
    be.create_volume("v1", 1)
    be.reimage("v1", 1, Path("/tmp/img"), "qcow2")
    assert ("image", "volume-v1", False) in fake.calls  # the old blocks are not assumed zero
    with pytest.raises(PermanentError, match="doesn't fit"):
        be.reimage("v1", 1, Path("/tmp/big"), "qcow2")
    assert fake.lvs["volume-v1"]["size"] == 1 * GiB
