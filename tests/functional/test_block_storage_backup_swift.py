"""The backup engine against a real kumo object store over the Swift API."""

from __future__ import annotations

import os

import pytest

from kumo.agents.block_storage import backup as b

CHUNK = 256 * 1024


def _swift(cloud):  # type: ignore[no-untyped-def]
    token = cloud.admin_token
    catalog = cloud.admin().get("/auth/catalog").json()["catalog"]
    url = next(
        ep["url"]
        for entry in catalog
        if entry["type"] == "object-store"
        for ep in entry["endpoints"]
        if ep["interface"] == "public"
    )
    return b.HttpSwift(url, token)


def test_backup_incremental_restore_delete_through_swift(cloud, tmp_path):
    container = "volumebackups-test"
    src = tmp_path / "vol"
    data = bytearray(os.urandom(CHUNK * 6))
    data[CHUNK : 2 * CHUNK] = b"\0" * CHUNK
    src.write_bytes(bytes(data))
    with _swift(cloud) as swift:
        full = b.create_backup(src, swift, "full", "vol-1", container=container, chunk_size=CHUNK)
        assert (full.chunks, full.stored) == (6, 5)
        data[4 * CHUNK + 1] ^= 1
        src.write_bytes(bytes(data))
        inc = b.create_backup(src, swift, "inc", "vol-1", parent_id="full", container=container)
        assert inc.stored == 1
        names = swift.list_objects(container, "backup_")
        assert "backup_full/children/inc" in names and "backup_inc/manifest.json" in names
        out = tmp_path / "restored"
        b.restore_backup(swift, "inc", out, container=container)
        assert out.read_bytes() == bytes(data)
        with pytest.raises(b.BackupHasDependents):
            b.delete_backup(swift, "full", container=container)
        b.delete_backup(swift, "inc", container=container)
        b.delete_backup(swift, "full", container=container)
        assert swift.list_objects(container, "backup_") == []
        with pytest.raises(b.BackupNotFound):
            b.restore_backup(swift, "full", out, container=container)
