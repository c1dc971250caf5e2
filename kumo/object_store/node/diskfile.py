"""Objects on disk: one directory per object, data and metadata written atomically.

``<device>/objects/<partition>/<hash>/`` holds ``<ts>.data`` with a JSON sidecar
``<ts>.data.json`` (the metadata: name, Content-Type, ETag, X-Object-Meta-*, ...), or a
tombstone ``<ts>.ts``.  The newest file wins; older ones are removed after each write.
A write goes to a temporary file in the device's ``tmp/`` directory, is fsynced and then
renamed into place, so a reader never sees half an object.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import queue
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024  # reads of a stored object: one worker-thread hop per MiB
WRITE_BLOCK = 1024 * 1024  # received bytes are gathered into blocks this big before hashing and writing
WRITE_INFLIGHT = 4  # blocks queued to a writer's helper thread before write() waits for it
INVALID_FILE = "hashes.invalid"
HASHES_FILE = "hashes.json"
META_TS = "meta-timestamp"  # when a POST last changed the metadata (kept with it, never shown)


@dataclass(slots=True)
class ObjectFile:
    path: Path
    metadata: dict[str, str]

    @property
    def size(self) -> int:
        return int(self.metadata["content-length"])

    @property
    def timestamp(self) -> str:
        return self.metadata["x-timestamp"]

    def read(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes start..end (inclusive), in chunks."""
        stop = self.size - 1 if end is None else end
        with self.path.open("rb") as fh:
            fh.seek(start)
            left = stop - start + 1
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    async def aread(self, start: int = 0, end: int | None = None, md5: Any = None) -> AsyncIterator[bytes]:
        """``read`` from the event loop: each chunk is read (and fed to ``md5``, if given) in a worker
        thread, the next one while the caller sends this one."""
        loop = asyncio.get_running_loop()
        it = self.read(start, end)

        def step() -> bytes | None:
            chunk = next(it, None)
            if chunk is not None and md5 is not None:
                md5.update(chunk)  # releases the GIL: hashes while the loop sends
            return chunk

        pending = loop.run_in_executor(None, step)
        try:
            while (chunk := await asyncio.shield(pending)) is not None:
                pending = loop.run_in_executor(None, step)
                yield chunk
        finally:
            # close the file once no worker thread is inside the generator any more
            pending.add_done_callback(lambda f: (f.cancelled() or f.exception(), it.close()))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_json(path: Path, data: dict[str, str], tmp_dir: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=tmp_dir)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ObjectDir:
    def __init__(self, device_root: Path, partition: int, name_hash: str) -> None:
        self.device_root = device_root
        self.tmp = device_root / "tmp"
        self.hash = name_hash
        self.part = partition
        self.part_dir = device_root / "objects" / str(partition)
        self.dir = self.part_dir / name_hash[-3:] / name_hash

    def invalidate(self) -> None:
        """Tell the replicator that this object's suffix changed (its cached hash is stale)."""
        with contextlib.suppress(OSError):
            self.part_dir.mkdir(parents=True, exist_ok=True)
            with open(self.part_dir / INVALID_FILE, "a") as fh:
                fh.write(self.hash[-3:] + "\n")

    def state(self) -> tuple[str, str, str] | None:
        """(timestamp, "data" or "ts", metadata timestamp) of the newest file, as the replicator sees it."""
        newest = self.newest()
        if newest is None:
            return None
        meta_ts = ""
        if newest[1] == "data":
            obj = self.open()
            if obj is None:
                return None
            meta_ts = obj.metadata.get(META_TS, "")
        return newest[0], newest[1], meta_ts

    def quarantine(self, reason: str) -> Path | None:
        """Move the object's directory aside (the replicator then restores a good copy)."""
        dest = self.device_root / "quarantined" / "objects" / f"{self.hash}-{time.time():.5f}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(self.dir, dest)
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):
            (dest / "reason").write_text(reason + "\n")
        self.invalidate()
        return dest

    def _files(self) -> list[str]:
        try:
            return sorted(os.listdir(self.dir), reverse=True)
        except FileNotFoundError:
            return []

    def newest(self) -> tuple[str, str] | None:
        """(timestamp, kind) of the newest complete file, kind "data" or "ts"."""
        names = set(self._files())
        for name in sorted(names, reverse=True):
            if name.endswith(".ts"):
                return name[:-3], "ts"
            if name.endswith(".data") and name + ".json" in names:
                return name[:-5], "data"
        return None

    def open(self) -> ObjectFile | None:
        """The current object, or None; a data file whose size is not its recorded length is quarantined."""
        newest = self.newest()
        if newest is None or newest[1] != "data":
            return None
        path = self.dir / f"{newest[0]}.data"
        try:
            metadata = json.loads((self.dir / f"{newest[0]}.data.json").read_text())
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        except ValueError:
            self.quarantine("unreadable metadata")
            return None
        if str(size) != metadata.get("content-length"):
            self.quarantine(f"size {size} != content-length {metadata.get('content-length')}")
            return None
        return ObjectFile(path, metadata)

    def writer(self) -> ObjectWriter:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return ObjectWriter(self)

    def update_metadata(self, obj: ObjectFile, metadata: dict[str, str]) -> None:
        self.invalidate()
        self.tmp.mkdir(parents=True, exist_ok=True)
        _write_json(obj.path.with_name(obj.path.name + ".json"), metadata, self.tmp)

    def delete(self, timestamp: str) -> None:
        self.invalidate()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.tmp)
        os.close(fd)
        os.replace(tmp, self.dir / f"{timestamp}.ts")
        _fsync_dir(self.dir)
        self.cleanup(keep=f"{timestamp}.ts")

    def cleanup(self, keep: str) -> None:
        for name in self._files():
            if name != keep and name != keep + ".json":
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.dir / name)


class ObjectWriter:
    """Stream bytes in; ``commit`` makes them the object, ``abort`` drops them.

    ``write`` only gathers: bytes go to disk and through the MD5 (the ETag) in blocks of
    ``WRITE_BLOCK``.  Once a body outgrows one block, a helper thread of this writer hashes and
    writes the blocks (both release the GIL) while the caller goes on receiving, at most
    ``WRITE_INFLIGHT`` blocks behind; a small body never starts a thread.  ``md5`` and ``commit``
    wait for the blocks still queued.
    """

    def __init__(self, objdir: ObjectDir) -> None:
        self.objdir = objdir
        fd, self.tmp_path = tempfile.mkstemp(dir=objdir.tmp)
        self.fh = os.fdopen(fd, "wb", buffering=0)
        self._md5 = hashlib.md5()
        self.size = 0
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._blocks: queue.Queue[list[bytes] | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        if not chunk:
            return
        self.size += len(chunk)
        self._pending.append(chunk)
        self._pending_size += len(chunk)
        if self._pending_size >= WRITE_BLOCK:
            block = self._take()
            if self._blocks is None:
                self._blocks = queue.Queue(maxsize=WRITE_INFLIGHT)
                self._thread = threading.Thread(target=self._run, name="object-writer", daemon=True)
                self._thread.start()
            self._blocks.put(block)  # waits only when the disk (or the hash) falls behind

    @property
    def md5(self) -> hashlib._Hash:
        """The MD5 of everything written so far (waits for queued blocks)."""
        self._drain()
        return self._md5

    def _take(self) -> list[bytes]:
        block, self._pending, self._pending_size = self._pending, [], 0
        return block

    def _put_block(self, block: list[bytes]) -> None:
        """Hash the chunks and write them with one writev (no copy into a joined buffer)."""
        for chunk in block:
            self._md5.update(chunk)
        fd = self.fh.fileno()
        done = os.writev(fd, block)
        if done < sum(len(c) for c in block):  # a short write: the rest one by one
            view = memoryview(b"".join(block))[done:]
            while view:
                view = view[os.write(fd, view) :]

    def _run(self) -> None:
        assert self._blocks is not None
        while (block := self._blocks.get()) is not None:
            if self._error is None:
                try:
                    self._put_block(block)
                except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
                    self._error = exc

    def _drain(self) -> None:
        """Hash and write what is gathered or queued; raise what the helper thread ran into."""
        if self._thread is not None:
            assert self._blocks is not None
            if self._pending:
                self._blocks.put(self._take())
            self._blocks.put(None)
            self._thread.join()
            self._thread = self._blocks = None
        elif self._pending:
            self._put_block(self._take())
        if self._error is not None:
            raise self._error

    def commit(self, metadata: dict[str, str]) -> None:
        self._drain()
        os.fsync(self.fh.fileno())
        self.fh.close()
        ts = metadata["x-timestamp"]
        d = self.objdir.dir
        d.mkdir(parents=True, exist_ok=True)
        _write_json(d / f"{ts}.data.json", metadata, self.objdir.tmp)
        os.replace(self.tmp_path, d / f"{ts}.data")  # the commit point
        self.objdir.invalidate()
        _fsync_dir(d)
        self.objdir.cleanup(keep=f"{ts}.data")

    def abort(self) -> None:
        if self._thread is not None:
            self._error = self._error or OSError("aborted")  # the helper thread skips what is queued
            self._pending = []
            with contextlib.suppress(BaseException):
                self._drain()
        with contextlib.suppress(OSError):
            self.fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp_path)


def expired(metadata: dict[str, str], now: float | None = None) -> bool:
    delete_at = metadata.get("x-delete-at")
    if not delete_at:
        return False
    try:
        return int(delete_at) <= (now if now is not None else time.time())
    except ValueError:
        return False
