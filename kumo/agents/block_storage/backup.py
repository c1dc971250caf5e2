"""The backup engine: volumes into object storage through the Swift API, chunked and incremental.

Entry points (called by the volume agent; plain values in, plain values out, synchronous —
run them in a worker thread):

    create_backup(source: Path, swift: SwiftApi, backup_id: str, volume_id: str, *,
                  parent_id: str | None = None, container: str = DEFAULT_CONTAINER,
                  chunk_size: int = DEFAULT_CHUNK_SIZE) -> BackupResult
        Read ``source`` (a file or block device holding the volume's raw bytes, e.g. from
        ``Backend.raw_reader``) and store it. With ``parent_id`` the backup is incremental: only
        chunks whose sha256 differs from the parent's manifest are uploaded, the others are
        referenced from the parent's (or an older ancestor's) objects.

    restore_backup(swift: SwiftApi, backup_id: str, target: Path, *,
                   container: str = DEFAULT_CONTAINER) -> RestoreResult
        Write the backup's bytes to ``target`` (a regular file — created, or zeroed and kept at
        its size when it is larger than the backup — or a block device at least that large, e.g.
        from ``Backend.raw_writer``). Every chunk's sha256 is checked.

    delete_backup(swift: SwiftApi, backup_id: str, *, container: str = DEFAULT_CONTAINER) -> None
        Remove the backup's own objects. Raises :class:`BackupHasDependents` when an
        incremental child still references it (as Cinder refuses: delete the children first).
        Deleting a backup that is not in the store is a no-op.

    show_backup(swift, backup_id, *, container=...) -> Manifest   (BackupNotFound if absent)
    dependents(swift, backup_id, *, container=...) -> list[str]    (incremental children)

``SwiftApi`` is a small protocol; :class:`HttpSwift` implements it over httpx against any
Swift-compatible endpoint (kumo's object store: ``<endpoint>/v1/AUTH_<project>`` and a token),
:class:`MemorySwift` in memory (tests).

Layout in the container: ``backup_<id>/manifest.json`` (a JSON document: volume id, parent id,
size, chunk size, per chunk its sha256, length, compression and the object holding it),
``backup_<id>/chunk-<index>`` for the chunks this backup stored itself, and
``backup_<parent>/children/<id>`` markers that make a parent refuse deletion while
incremental children exist. All-zero chunks are not stored at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote

import httpx

from kumo.common.reconcile import PermanentError, TemporaryError

DEFAULT_CONTAINER = "volumebackups"
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
MANIFEST_VERSION = 1


class BackupError(PermanentError):
    """A backup operation failed in a way retrying will not fix."""


class BackupNotFound(BackupError):
    pass


class BackupCorrupt(BackupError):
    pass


class BackupHasDependents(BackupError):
    """Incremental backups depend on this one (Cinder: "Incremental backups exist for this backup")."""

    def __init__(self, backup_id: str, children: list[str]) -> None:
        super().__init__(f"Incremental backups exist for backup {backup_id}: {', '.join(children)}")
        self.children = children


class SwiftApi(Protocol):
    """The few object-storage calls the engine needs."""

    def ensure_container(self, container: str) -> None: ...

    def put_object(self, container: str, name: str, data: bytes) -> None: ...

    def get_object(self, container: str, name: str) -> bytes | None:
        """The object's bytes, None when it does not exist."""
        ...

    def delete_object(self, container: str, name: str) -> None:
        """Remove the object; absent is fine."""
        ...

    def list_objects(self, container: str, prefix: str) -> list[str]:
        """Names starting with ``prefix`` (all of them, across pages)."""
        ...


@dataclass
class Chunk:
    index: int
    length: int
    sha256: str
    object: str | None  # None: an all-zero chunk, not stored
    compression: str = "none"

    def doc(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "length": self.length,
            "sha256": self.sha256,
            "object": self.object,
            "compression": self.compression,
        }


@dataclass
class Manifest:
    backup_id: str
    volume_id: str
    size: int
    chunk_size: int
    parent_id: str | None = None
    created_at: str = ""
    chunks: list[Chunk] = field(default_factory=list)

    def doc(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "backup_id": self.backup_id,
            "volume_id": self.volume_id,
            "size": self.size,
            "chunk_size": self.chunk_size,
            "parent_id": self.parent_id,
            "created_at": self.created_at,
            "chunks": [c.doc() for c in self.chunks],
        }

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        try:
            d = json.loads(raw)
            return cls(
                backup_id=str(d["backup_id"]),
                volume_id=str(d["volume_id"]),
                size=int(d["size"]),
                chunk_size=int(d["chunk_size"]),
                parent_id=d.get("parent_id"),
                created_at=str(d.get("created_at") or ""),
                chunks=[
                    Chunk(
                        index=int(c["index"]),
                        length=int(c["length"]),
                        sha256=str(c["sha256"]),
                        object=c.get("object"),
                        compression=str(c.get("compression") or "none"),
                    )
                    for c in d["chunks"]
                ],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupCorrupt(f"backup manifest is unreadable: {exc}") from None

    @property
    def own_objects(self) -> list[str]:
        prefix = _prefix(self.backup_id)
        return [c.object for c in self.chunks if c.object and c.object.startswith(prefix)]


@dataclass(frozen=True)
class BackupResult:
    backup_id: str
    container: str
    size: int  # bytes read from the source
    size_gb: int  # rounded up, what Cinder shows as the backup's size
    chunks: int  # chunks in the manifest
    stored: int  # chunks uploaded by this backup (the rest are zero or the parent's)
    stored_bytes: int  # bytes uploaded (after compression)
    parent_id: str | None
    object_count: int  # objects this backup added (chunks + manifest)


@dataclass(frozen=True)
class RestoreResult:
    backup_id: str
    size: int
    chunks: int


def _prefix(backup_id: str) -> str:
    return f"backup_{backup_id}/"


def manifest_name(backup_id: str) -> str:
    return _prefix(backup_id) + "manifest.json"


def _chunk_name(backup_id: str, index: int) -> str:
    return f"{_prefix(backup_id)}chunk-{index:08d}"


def _child_marker(parent_id: str, child_id: str) -> str:
    return f"{_prefix(parent_id)}children/{child_id}"


def _is_zero(data: bytes) -> bool:
    return not data.strip(b"\0")


def _size_of(f: BinaryIO, path: Path) -> int:
    mode = os.fstat(f.fileno()).st_mode
    if stat.S_ISBLK(mode):
        return f.seek(0, os.SEEK_END)
    return os.fstat(f.fileno()).st_size


def show_backup(swift: SwiftApi, backup_id: str, *, container: str = DEFAULT_CONTAINER) -> Manifest:
    raw = swift.get_object(container, manifest_name(backup_id))
    if raw is None:
        raise BackupNotFound(f"Backup {backup_id} is not in container {container}.")
    m = Manifest.parse(raw)
    if m.backup_id != backup_id:
        raise BackupCorrupt(f"manifest of backup {backup_id} names backup {m.backup_id}")
    return m


def dependents(swift: SwiftApi, backup_id: str, *, container: str = DEFAULT_CONTAINER) -> list[str]:
    marker = _prefix(backup_id) + "children/"
    return sorted(name[len(marker) :] for name in swift.list_objects(container, marker))


def create_backup(
    source: Path,
    swift: SwiftApi,
    backup_id: str,
    volume_id: str,
    *,
    parent_id: str | None = None,
    container: str = DEFAULT_CONTAINER,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compress: bool = True,
) -> BackupResult:
    """Back up ``source`` as ``backup_id``; see the module docstring."""
    if chunk_size <= 0:
        raise BackupError("chunk size must be positive")
    parent: Manifest | None = None
    if parent_id:
        parent = show_backup(swift, parent_id, container=container)
        chunk_size = parent.chunk_size  # chunks must line up with the parent's to be compared
    swift.ensure_container(container)
    by_index = {c.index: c for c in parent.chunks} if parent else {}
    chunks: list[Chunk] = []
    stored = stored_bytes = 0
    total = 0
    try:
        fh = open(source, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise BackupError(f"cannot read {source}: {exc.strerror}") from None
    with fh:
        size = _size_of(fh, source)
        fh.seek(0)
        index = 0
        while total < size:
            data = fh.read(min(chunk_size, size - total))
            if not data:
                break
            digest = hashlib.sha256(data).hexdigest()
            old = by_index.get(index)
            if _is_zero(data):
                chunk = Chunk(index, len(data), digest, None)
            elif old is not None and old.sha256 == digest and old.length == len(data) and old.object:
                chunk = Chunk(index, len(data), digest, old.object, old.compression)
            else:
                body = zlib.compress(data, 1) if compress else data
                comp = "zlib" if compress else "none"
                if compress and len(body) >= len(data):
                    body, comp = data, "none"
                name = _chunk_name(backup_id, index)
                swift.put_object(container, name, body)
                chunk = Chunk(index, len(data), digest, name, comp)
                stored += 1
                stored_bytes += len(body)
            chunks.append(chunk)
            total += len(data)
            index += 1
    if total != size:
        raise BackupError(f"{source} shrank while it was read ({total} of {size} bytes)")
    manifest = Manifest(
        backup_id=backup_id,
        volume_id=volume_id,
        size=total,
        chunk_size=chunk_size,
        parent_id=parent_id,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        chunks=chunks,
    )
    if parent_id:
        swift.put_object(container, _child_marker(parent_id, backup_id), backup_id.encode())
    swift.put_object(container, manifest_name(backup_id), json.dumps(manifest.doc()).encode())
    return BackupResult(
        backup_id=backup_id,
        container=container,
        size=total,
        size_gb=max(1, -(-total // 1024**3)),
        chunks=len(chunks),
        stored=stored,
        stored_bytes=stored_bytes,
        parent_id=parent_id,
        object_count=stored + 1,
    )


@contextlib.contextmanager
def _open_target(target: Path, size: int) -> Iterator[tuple[BinaryIO, bool]]:
    """Yields (file, zeroed): zeroed when the target already reads as zeros beyond what we write."""
    try:
        st = os.stat(target)
        is_block, existing = stat.S_ISBLK(st.st_mode), st.st_size
    except FileNotFoundError:
        is_block, existing = False, 0
    try:
        if is_block:
            fh = open(target, "r+b")  # noqa: SIM115
            if fh.seek(0, os.SEEK_END) < size:
                fh.close()
                raise BackupError(f"{target} is smaller than the backup ({size} bytes)")
            fh.seek(0)
        else:
            # truncated, so the whole file reads as zeros; a volume file is never shrunk
            fh = open(target, "w+b")  # noqa: SIM115
            fh.truncate(max(size, existing))
    except OSError as exc:
        raise BackupError(f"cannot write {target}: {exc.strerror}") from None
    with fh:
        yield fh, not is_block
        fh.flush()
        os.fsync(fh.fileno())


def restore_backup(
    swift: SwiftApi, backup_id: str, target: Path, *, container: str = DEFAULT_CONTAINER
) -> RestoreResult:
    """Write the backup's bytes to ``target``; see the module docstring."""
    m = show_backup(swift, backup_id, container=container)
    with _open_target(target, m.size) as (fh, zeroed):
        offset = 0
        for c in sorted(m.chunks, key=lambda c: c.index):
            if c.object is None:
                if not zeroed:
                    fh.seek(offset)
                    fh.write(b"\0" * c.length)
                offset += c.length
                continue
            body = swift.get_object(container, c.object)
            if body is None:
                raise BackupCorrupt(f"backup {backup_id}: chunk object {c.object} is missing")
            if c.compression == "zlib":
                try:
                    body = zlib.decompress(body)
                except zlib.error:
                    raise BackupCorrupt(f"backup {backup_id}: chunk {c.index} does not decompress") from None
            elif c.compression != "none":
                raise BackupCorrupt(f"backup {backup_id}: unknown compression {c.compression}")
            if len(body) != c.length or hashlib.sha256(body).hexdigest() != c.sha256:
                raise BackupCorrupt(f"backup {backup_id}: chunk {c.index} fails its sha256 check")
            fh.seek(offset)
            fh.write(body)
            offset += c.length
        if offset != m.size:
            raise BackupCorrupt(f"backup {backup_id}: chunks cover {offset} of {m.size} bytes")
    return RestoreResult(backup_id=backup_id, size=m.size, chunks=len(m.chunks))


def delete_backup(swift: SwiftApi, backup_id: str, *, container: str = DEFAULT_CONTAINER) -> None:
    """Remove the backup's own objects (refused while incremental children exist)."""
    children = dependents(swift, backup_id, container=container)
    if children:
        raise BackupHasDependents(backup_id, children)
    raw = swift.get_object(container, manifest_name(backup_id))
    own = set(swift.list_objects(container, _prefix(backup_id)))
    parent_id = None
    if raw is not None:
        with contextlib.suppress(BackupCorrupt):
            parent_id = Manifest.parse(raw).parent_id
    # manifest last: an interrupted delete can be run again and still finds what is left
    for name in sorted(own - {manifest_name(backup_id)}):
        swift.delete_object(container, name)
    swift.delete_object(container, manifest_name(backup_id))
    if parent_id:
        swift.delete_object(container, _child_marker(parent_id, backup_id))


# -- Swift clients ---------------------------------------------------------------------------


class MemorySwift:
    """An in-memory object store (for tests and dry runs)."""

    def __init__(self) -> None:
        self.containers: dict[str, dict[str, bytes]] = {}

    def ensure_container(self, container: str) -> None:
        self.containers.setdefault(container, {})

    def put_object(self, container: str, name: str, data: bytes) -> None:
        if container not in self.containers:
            raise BackupError(f"container {container} does not exist")
        self.containers[container][name] = bytes(data)

    def get_object(self, container: str, name: str) -> bytes | None:
        return self.containers.get(container, {}).get(name)

    def delete_object(self, container: str, name: str) -> None:
        self.containers.get(container, {}).pop(name, None)

    def list_objects(self, container: str, prefix: str) -> list[str]:
        return sorted(n for n in self.containers.get(container, {}) if n.startswith(prefix))


class HttpSwift:
    """The Swift API over httpx: ``storage_url`` is ``<endpoint>/v1/AUTH_<project>``.

    ``token`` is a string or a callable returning a fresh one (called again after a 401).
    """

    def __init__(
        self,
        storage_url: str,
        token: str | Callable[[], str],
        client: httpx.Client | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.url = storage_url.rstrip("/")
        self._token_source = token
        self._token = token if isinstance(token, str) else ""
        self._client = client or httpx.Client(timeout=timeout)
        self._own_client = client is None

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> HttpSwift:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        for attempt in range(2):
            if not self._token and callable(self._token_source):
                self._token = self._token_source()
            headers = dict(kw.pop("headers", None) or {})
            headers["X-Auth-Token"] = self._token
            try:
                r = self._client.request(method, self.url + path, headers=headers, **kw)
            except httpx.HTTPError as exc:
                raise TemporaryError(f"object storage is not reachable: {exc}", delay=5.0) from None
            if r.status_code == 401 and attempt == 0 and callable(self._token_source):
                self._token = ""
                continue
            if r.status_code >= 500 or r.status_code == 503:
                raise TemporaryError(f"object storage answered {r.status_code} to {method}", delay=5.0)
            if r.status_code in (401, 403):
                raise BackupError(f"object storage refused {method} {path}: {r.status_code}")
            return r
        raise BackupError("object storage refused the token")  # pragma: no cover

    @staticmethod
    def _path(container: str, name: str | None = None) -> str:
        p = "/" + quote(container, safe="")
        return p + "/" + quote(name, safe="/") if name is not None else p

    def ensure_container(self, container: str) -> None:
        r = self._request("PUT", self._path(container))
        if r.status_code not in (201, 202, 204):
            raise BackupError(f"cannot create container {container}: {r.status_code} {r.text[:200]}")

    def put_object(self, container: str, name: str, data: bytes) -> None:
        r = self._request(
            "PUT",
            self._path(container, name),
            content=data,
            headers={"Content-Type": "application/octet-stream", "ETag": hashlib.md5(data).hexdigest()},  # noqa: S324 - Swift's ETag is md5
        )
        if r.status_code == 404:
            raise BackupError(f"container {container} does not exist")
        if r.status_code == 422:
            raise TemporaryError(f"object {name} was corrupted in transit", delay=1.0)
        if r.status_code not in (201, 202):
            raise BackupError(f"cannot store {name}: {r.status_code} {r.text[:200]}")

    def get_object(self, container: str, name: str) -> bytes | None:
        r = self._request("GET", self._path(container, name))
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise BackupError(f"cannot read {name}: {r.status_code} {r.text[:200]}")
        return r.content

    def delete_object(self, container: str, name: str) -> None:
        r = self._request("DELETE", self._path(container, name))
        if r.status_code not in (204, 200, 404):
            raise BackupError(f"cannot delete {name}: {r.status_code} {r.text[:200]}")

    def list_objects(self, container: str, prefix: str) -> list[str]:
        names: list[str] = []
        marker = ""
        while True:
            params = {"format": "json", "prefix": prefix}
            if marker:
                params["marker"] = marker
            r = self._request("GET", self._path(container), params=params)
            if r.status_code == 404:
                return names
            if r.status_code not in (200, 204):
                raise BackupError(f"cannot list {container}: {r.status_code} {r.text[:200]}")
            page = [o["name"] for o in (r.json() if r.status_code == 200 and r.content else [])]
            if not page:
                return names
            names.extend(page)
            marker = page[-1]
