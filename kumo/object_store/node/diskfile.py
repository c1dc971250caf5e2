"""Objects on disk: one directory per object, data and metadata written atomically.

``<device>/objects/<partition>/<hash>/`` holds ``<ts>.data`` with a JSON sidecar
``<ts>.data.json`` (the metadata: name, Content-Type, ETag, X-Object-Meta-*, ...), or a
tombstone ``<ts>.ts``.  The newest file wins; older ones are removed after each write.
A write goes to a temporary file in the device's ``tmp/`` directory, is fsynced and then
renamed into place, so a reader never sees half an object.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 64 * 1024
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
    """Stream bytes in; ``commit`` makes them the object, ``abort`` drops them."""

    def __init__(self, objdir: ObjectDir) -> None:
        self.objdir = objdir
        fd, self.tmp_path = tempfile.mkstemp(dir=objdir.tmp)
        self.fh = os.fdopen(fd, "wb")
        self.md5 = hashlib.md5()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.fh.write(chunk)
        self.md5.update(chunk)
        self.size += len(chunk)

    def commit(self, metadata: dict[str, str]) -> None:
        self.fh.flush()
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
