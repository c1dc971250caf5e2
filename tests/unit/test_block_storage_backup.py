"""The backup engine against an in-memory Swift: full, incremental, restore, delete rules."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from kumo.agents.block_storage import backup as b

CHUNK = 64 * 1024


def _write(path, data: bytes) -> None:
    path.write_bytes(data)


def _volume(tmp_path, name="vol", chunks=8) -> tuple:
    path = tmp_path / name
    data = bytearray(os.urandom(CHUNK * chunks))
    data[2 * CHUNK : 3 * CHUNK] = b"\0" * CHUNK  # a zero chunk (not stored)
    data += b"tail!"  # a short last chunk
    _write(path, bytes(data))
    return path, bytes(data)


def test_full_backup_and_restore_roundtrip(tmp_path):
    swift = b.MemorySwift()
    src, data = _volume(tmp_path)
    res = b.create_backup(src, swift, "b1", "v1", chunk_size=CHUNK)
    assert res.size == len(data) and res.chunks == 9
    assert res.stored == 8  # the zero chunk is not stored
    assert res.object_count == 9
    names = swift.list_objects(b.DEFAULT_CONTAINER, "")
    assert "backup_b1/manifest.json" in names
    assert len([n for n in names if "/chunk-" in n]) == 8
    m = b.show_backup(swift, "b1")
    assert m.volume_id == "v1" and m.parent_id is None and m.size == len(data)
    assert m.chunks[1].sha256 == hashlib.sha256(data[CHUNK : 2 * CHUNK]).hexdigest()
    out = tmp_path / "restored"
    r = b.restore_backup(swift, "b1", out)
    assert r.size == len(data)
    assert out.read_bytes() == data
    _write(out, b"x" * (len(data) * 2))  # a larger volume keeps its size; the rest reads as zeros
    b.restore_backup(swift, "b1", out)
    assert out.read_bytes() == data + b"\0" * len(data)


def test_incremental_stores_only_changed_chunks(tmp_path):
    swift = b.MemorySwift()
    src, data = _volume(tmp_path)
    b.create_backup(src, swift, "full", "v1", chunk_size=CHUNK)
    changed = bytearray(data)
    changed[5 * CHUNK + 10] ^= 0xFF
    changed[2 * CHUNK] = 7  # the zero chunk now holds data
    _write(src, bytes(changed))
    inc = b.create_backup(src, swift, "inc", "v1", parent_id="full", chunk_size=999)
    assert inc.stored == 2 and inc.parent_id == "full"
    m = b.show_backup(swift, "inc")
    assert m.chunk_size == CHUNK  # follows the parent's chunking
    assert m.chunks[0].object == "backup_full/chunk-00000000"
    assert m.chunks[5].object == "backup_inc/chunk-00000005"
    # a second incremental on top of the first references both ancestors
    _write(src, bytes(changed))
    inc2 = b.create_backup(src, swift, "inc2", "v1", parent_id="inc")
    assert inc2.stored == 0
    for bid, want in (("full", data), ("inc", bytes(changed)), ("inc2", bytes(changed))):
        out = tmp_path / f"out-{bid}"
        b.restore_backup(swift, bid, out)
        assert out.read_bytes() == want, bid


def test_delete_refuses_while_children_exist_then_removes_own_objects(tmp_path):
    swift = b.MemorySwift()
    src, data = _volume(tmp_path)
    b.create_backup(src, swift, "full", "v1", chunk_size=CHUNK)
    b.create_backup(src, swift, "inc", "v1", parent_id="full")
    assert b.dependents(swift, "full") == ["inc"]
    with pytest.raises(b.BackupHasDependents) as err:
        b.delete_backup(swift, "full")
    assert err.value.children == ["inc"]
    assert isinstance(err.value, b.PermanentError)
    b.delete_backup(swift, "inc")
    assert b.dependents(swift, "full") == []
    # the parent's chunks survived the child's deletion
    out = tmp_path / "out"
    b.restore_backup(swift, "full", out)
    assert out.read_bytes() == data
    b.delete_backup(swift, "full")
    assert swift.list_objects(b.DEFAULT_CONTAINER, "") == []
    b.delete_backup(swift, "full")  # absent: a no-op
    with pytest.raises(b.BackupNotFound):
        b.show_backup(swift, "full")


def test_restore_detects_corruption_and_missing_chunks(tmp_path):
    swift = b.MemorySwift()
    src, _ = _volume(tmp_path)
    b.create_backup(src, swift, "b1", "v1", chunk_size=CHUNK, compress=False)
    objs = swift.containers[b.DEFAULT_CONTAINER]
    objs["backup_b1/chunk-00000003"] = b"\1" * CHUNK
    with pytest.raises(b.BackupCorrupt, match="sha256"):
        b.restore_backup(swift, "b1", tmp_path / "o1")
    del objs["backup_b1/chunk-00000003"]
    with pytest.raises(b.BackupCorrupt, match="missing"):
        b.restore_backup(swift, "b1", tmp_path / "o2")
    objs["backup_b1/manifest.json"] = b"{not json"
    with pytest.raises(b.BackupCorrupt):
        b.restore_backup(swift, "b1", tmp_path / "o3")


def test_parent_must_exist_and_source_must_be_readable(tmp_path):
    swift = b.MemorySwift()
    src, _ = _volume(tmp_path, chunks=1)
    with pytest.raises(b.BackupNotFound):
        b.create_backup(src, swift, "inc", "v1", parent_id="nope")
    with pytest.raises(b.BackupError, match="cannot read"):
        b.create_backup(tmp_path / "missing", swift, "x", "v1")
    assert swift.list_objects(b.DEFAULT_CONTAINER, "") == []


def test_sparse_volume_stores_almost_nothing(tmp_path):
    swift = b.MemorySwift()
    src = tmp_path / "sparse"
    with open(src, "wb") as fh:
        fh.truncate(64 * 1024 * 1024)
        fh.seek(10 * 1024 * 1024)
        fh.write(b"marker")
    res = b.create_backup(src, swift, "s", "v1", container="other")
    assert res.stored == 1 and res.chunks == 16 and res.stored_bytes < 64 * 1024
    doc = json.loads(swift.get_object("other", "backup_s/manifest.json"))
    assert doc["version"] == 1 and len(doc["chunks"]) == 16
    out = tmp_path / "out"
    b.restore_backup(swift, "s", out, container="other")
    with open(out, "rb") as fh:
        fh.seek(10 * 1024 * 1024)
        assert fh.read(6) == b"marker"
    assert out.stat().st_size == 64 * 1024 * 1024
