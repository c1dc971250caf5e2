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
        self.tmp = device_root / "tmp"
        self.dir = device_root / "objects" / str(partition) / name_hash[-3:] / name_hash

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
        newest = self.newest()
        if newest is None or newest[1] != "data":
            return None
        path = self.dir / f"{newest[0]}.data"
        try:
            metadata = json.loads((self.dir / f"{newest[0]}.data.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return ObjectFile(path, metadata)

    def writer(self) -> ObjectWriter:
        self.tmp.mkdir(parents=True, exist_ok=True)
        return ObjectWriter(self)

    def update_metadata(self, obj: ObjectFile, metadata: dict[str, str]) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        _write_json(obj.path.with_name(obj.path.name + ".json"), metadata, self.tmp)

    def delete(self, timestamp: str) -> None:
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
