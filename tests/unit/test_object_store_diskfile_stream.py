"""Large-object streaming on a storage node: the writer hashes and writes blocks on a helper
thread, the reader reads ahead (and hashes) in a worker thread; both give the same bytes and ETag."""

from __future__ import annotations

import asyncio
import hashlib
import os

from kumo.object_store.node import diskfile
from kumo.object_store.node.diskfile import ObjectDir
from kumo.object_store.utils import normalize_ts


def _objdir(tmp_path) -> ObjectDir:  # noqa: ANN001
    return ObjectDir(tmp_path, 3, "f" * 32)


def test_multi_block_write_commits_the_same_bytes_and_md5(tmp_path):
    body = os.urandom(3 * diskfile.WRITE_BLOCK + 12345)
    od = _objdir(tmp_path)
    w = od.writer()
    for i in range(0, len(body), 65536):  # chunks as a server hands them over
        w.write(body[i : i + 65536])
    assert w._thread is not None  # grew past one block: the helper thread took over
    assert w.size == len(body)
    assert w.md5.hexdigest() == hashlib.md5(body).hexdigest()
    w.commit({"x-timestamp": normalize_ts(1), "content-length": str(len(body)), "etag": w.md5.hexdigest()})
    obj = od.open()
    assert obj is not None and obj.path.read_bytes() == body
    assert os.listdir(tmp_path / "tmp") == []


def test_small_write_starts_no_thread_and_abort_leaves_nothing(tmp_path):
    od = _objdir(tmp_path)
    w = od.writer()
    w.write(b"small")
    assert w._thread is None and w.md5.hexdigest() == hashlib.md5(b"small").hexdigest()
    big = od.writer()
    big.write(os.urandom(2 * diskfile.WRITE_BLOCK))
    big.abort()  # mid-stream: the helper thread stops, the temporary file goes
    w.abort()
    assert os.listdir(tmp_path / "tmp") == []
    assert od.open() is None


def test_aread_streams_ranges_hashes_and_closes_early(tmp_path):
    body = os.urandom(2 * diskfile.CHUNK + 999)
    od = _objdir(tmp_path)
    w = od.writer()
    w.write(body)
    w.commit({"x-timestamp": normalize_ts(1), "content-length": str(len(body)), "etag": w.md5.hexdigest()})
    obj = od.open()
    assert obj is not None

    async def run() -> None:
        md5 = hashlib.md5()
        whole = b"".join([c async for c in obj.aread(0, len(body) - 1, md5)])
        assert whole == body and md5.hexdigest() == hashlib.md5(body).hexdigest()
        part = b"".join([c async for c in obj.aread(10, diskfile.CHUNK + 20)])
        assert part == body[10 : diskfile.CHUNK + 21]
        gen = obj.aread()
        assert await gen.__anext__() == body[: diskfile.CHUNK]
        await gen.aclose()  # a client that went away: the read-ahead is left to finish, then closed
        await asyncio.sleep(0.2)

    asyncio.run(run())
