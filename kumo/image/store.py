"""Where image data lives: a small store interface and the local file store.

A store writes a stream through a :class:`Writer` (``write`` chunks, then
``commit`` to get a location, or ``abort`` to throw the partial data away),
reads a location back in chunks with an optional byte range, and deletes.
Hashing and format inspection happen above the store, on the way in.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

CHUNK = 1024 * 1024


class StoreError(Exception):
    """A store refused or failed an operation (the object store, a remote http server)."""


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...
    def commit(self) -> str: ...
    def abort(self) -> None: ...


class Store(Protocol):
    id: str
    description: str
    kind: str  # "file", "swift"

    def writer(self, image_id: str) -> Writer: ...
    def read(self, location: str, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...
    def delete(self, location: str) -> None: ...
    def owns(self, location: str) -> bool: ...


class _FileWriter:
    """Writes a temp file, then renames it into place once it is on disk (fsync)."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.part")
        self.fh = open(self.tmp, "wb", buffering=0)  # noqa: SIM115 - closed in commit/abort

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # an unbuffered write may be partial
            n = self.fh.write(view)
            view = view[n:]

    def commit(self) -> str:
        os.fsync(self.fh.fileno())
        self.fh.close()
        os.replace(self.tmp, self.final)
        return f"file://{self.final}"

    def abort(self) -> None:
        try:
            self.fh.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class FileStore:
    """Image data as files in one directory (Glance's ``file`` store)."""

    kind = "file"

    def __init__(self, root: Path, store_id: str = "file", description: str = "Local file store") -> None:
        self.root = root
        self.id = store_id
        self.description = description
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, location: str) -> Path:
        path = Path(location.removeprefix("file://"))
        if path.parent != self.root:  # never touch a file outside the store
            raise ValueError(f"location {location!r} is not in store {self.id}")
        return path

    def owns(self, location: str) -> bool:
        try:
            self.path(location)
        except ValueError:
            return False
        return location.startswith("file://")

    def writer(self, image_id: str) -> _FileWriter:
        return _FileWriter(self.root / image_id)

    def adopt(self, path: Path, image_id: str) -> str:
        """Move a file (same filesystem) into the store."""
        final = self.root / image_id
        os.replace(path, final)
        return f"file://{final}"

    def size(self, location: str) -> int:
        return self.path(location).stat().st_size

    def read(self, location: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` to ``end`` inclusive (to the end when None)."""
        with open(self.path(location), "rb") as fh:
            if hasattr(os, "posix_fadvise"):  # a wider read-ahead window for a sequential read
                os.posix_fadvise(fh.fileno(), start, 0, os.POSIX_FADV_SEQUENTIAL)
            fh.seek(start)
            left = None if end is None else end - start + 1
            while left is None or left > 0:
                data = fh.read(CHUNK if left is None else min(CHUNK, left))
                if not data:
                    return
                if left is not None:
                    left -= len(data)
                yield data

    def delete(self, location: str) -> None:
        self.path(location).unlink(missing_ok=True)


def make_store(kind: str, data_dir: Path) -> FileStore:
    if kind == "file":
        return FileStore(data_dir / "images")
    raise ValueError(f"unknown image store {kind!r}")


STORE_KINDS = ("file", "swift", "web")


def read_only(store: Store) -> bool:
    return bool(getattr(store, "read_only", False))
