"""The upload data path: hashing on a helper thread, the file writer, read-ahead reads."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from kumo.image.errors import PayloadTooLarge
from kumo.image.service import data
from kumo.image.store import FileStore


def _upload(store: FileStore, limit: int | None = None) -> data.Upload:
    up = data.Upload(None, "img-1", "p", store, False, "raw", "bare", limit)  # type: ignore[arg-type]
    up.open()
    return up


@pytest.mark.parametrize("sizes", [[1], [4096, 7], [1 << 20, 1 << 20, 3], [300_000, 1 << 20, 10, 2 << 20]])
def test_hashes_match_for_small_and_large_blocks(tmp_path: Path, sizes: list[int]) -> None:
    store = FileStore(tmp_path / "images")
    up = _upload(store)
    blocks = [os.urandom(n) for n in sizes]
    for b in blocks:
        up.write(b)
    whole = b"".join(blocks)
    assert up.size == len(whole)
    assert up.md5.hexdigest() == hashlib.md5(whole).hexdigest()
    assert up.sha512.hexdigest() == hashlib.sha512(whole).hexdigest()
    assert up.inspector.result().format == "raw"
    location = up.writer.commit()  # type: ignore[union-attr]
    assert Path(location.removeprefix("file://")).read_bytes() == whole
    assert b"".join(store.read(location)) == whole
    assert b"".join(store.read(location, 5, 9)) == whole[5:10]


def test_quota_refuses_before_writing_the_block(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "images")
    up = _upload(store, limit=(1 << 20) + 10)
    up.write(os.urandom(1 << 20))
    with pytest.raises(PayloadTooLarge):
        up.write(os.urandom(1 << 20))
    up.writer.abort()  # type: ignore[union-attr]
    assert list((tmp_path / "images").iterdir()) == []


def test_writer_abort_leaves_nothing(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "images")
    w = store.writer("img-2")
    w.write(b"x" * 1000)
    w.abort()
    assert list((tmp_path / "images").iterdir()) == []
