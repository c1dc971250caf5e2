"""The file back end against real qemu-img: volumes, snapshots, clones, images, raw access."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kumo.agents.block_storage.backend import Backend, GiB, PermanentError
from kumo.agents.block_storage.file import FileBackend, image_info

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) is not installed")


@pytest.fixture(params=["qcow2", "raw"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> FileBackend:
    return FileBackend(tmp_path / "volumes", fmt=request.param, capacity_gb=50)


def _write(b: FileBackend, vid: str, offset: int, data: bytes) -> None:
    with b.raw_writer(vid) as path:
        if b.fmt == "qcow2":  # the writer starts empty for qcow2: restore the old contents first
            with b.raw_reader(vid) as old, open(old, "rb") as src, open(path, "r+b") as dst:
                shutil.copyfileobj(src, dst)
        with open(path, "r+b") as fh:
            fh.seek(offset)
            fh.write(data)


def _read(b: FileBackend, vid: str, offset: int, length: int) -> bytes:
    with b.raw_reader(vid) as path, open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def test_protocol_and_empty_volume(backend: FileBackend) -> None:
    assert isinstance(backend, Backend)
    backend.create_volume("v1", 1)
    backend.create_volume("v1", 1)  # idempotent
    assert backend.list_volumes() == ["v1"] and backend.volume_size_gb("v1") == 1
    assert image_info(backend.volume_path("v1"))["format"] == backend.fmt
    assert _read(backend, "v1", 0, 4096) == b"\0" * 4096
    cap = backend.capacity()
    assert cap.total_gb == 50 and cap.provisioned_gb == 1.0 and cap.free_gb <= 49
    info = backend.connection_info("v1", {"host": "h"})
    assert info == {"driver_volume_type": "file", "data": {"path": str(backend.volume_path("v1")),
                                                           "format": backend.fmt, "volume_id": "v1",
                                                           "access_mode": "rw"}}
    backend.delete_volume("v1")
    backend.delete_volume("v1")
    assert backend.list_volumes() == [] and backend.volume_size_gb("v1") is None


def test_snapshot_clone_extend_keep_data_independent(backend: FileBackend) -> None:
    backend.create_volume("src", 1)
    _write(backend, "src", 1000, b"hello")
    backend.create_snapshot("s1", "src")
    _write(backend, "src", 1000, b"HELLO")
    backend.create_from_snapshot("fromsnap", 2, "s1")
    backend.clone_volume("clone", 1, "src")
    assert _read(backend, "fromsnap", 1000, 5) == b"hello" and backend.volume_size_gb("fromsnap") == 2
    assert _read(backend, "clone", 1000, 5) == b"HELLO"
    backend.delete_snapshot("s1")  # nothing depends on a snapshot file
    backend.delete_volume("src")
    assert _read(backend, "fromsnap", 1000, 5) == b"hello"
    backend.extend_volume("clone", 3)
    assert backend.volume_size_gb("clone") == 3 and _read(backend, "clone", 1000, 5) == b"HELLO"
    backend.extend_volume("clone", 2)  # never shrinks
    assert backend.volume_size_gb("clone") == 3


def test_from_image_checks_size_and_format(backend: FileBackend, tmp_path: Path) -> None:
    img = tmp_path / "img.raw"
    img.write_bytes(b"\x7fELF" + b"x" * 2_000_000)
    backend.create_from_image("fromimg", 1, img, "raw")
    assert _read(backend, "fromimg", 0, 5) == b"\x7fELFx" and backend.volume_size_gb("fromimg") == 1
    big = tmp_path / "big.qcow2"
    import subprocess

    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "3G"], check=True)
    with pytest.raises(PermanentError, match="needs 3 GiB"):
        backend.create_from_image("toosmall", 2, big, "qcow2")
    assert not backend.volume_exists("toosmall") and list((backend.root / "tmp").iterdir()) == []


def test_bad_ids_and_missing_sources(backend: FileBackend) -> None:
    for bad in ("../x", "", ".hidden", "a/b"):
        with pytest.raises(PermanentError):
            backend.create_volume(bad, 1)
    with pytest.raises(PermanentError):
        backend.create_snapshot("s", "nope")
    with pytest.raises(PermanentError):
        backend.clone_volume("c", 1, "nope")
    with pytest.raises(PermanentError):
        backend.extend_volume("nope", 2)
    assert GiB == 1 << 30
