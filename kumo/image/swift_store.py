"""An image store in kumo's object storage, reached through the Swift API.

Like Glance's single-tenant swift store: image data lives in one container of one
account (``swift_user`` in ``swift_project``), found through the identity catalog.
Data is written as a static large object: segments of ``swift_segment_size`` bytes
streamed one at a time (each PUT is fed from a small bounded queue by a helper
thread, so no more than a few MiB is ever held in memory), then a manifest that
names them. Reads stream the manifest back with an optional byte range; deletes
remove the manifest and its segments.

Locations look like ``swift://<container>/<image id>``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from kumo.image.store import StoreError

log = logging.getLogger("kumo.image.swift")

CHUNK = 1024 * 1024
SCHEME = "swift://"


@dataclass
class Credentials:
    auth_url: str  # identity, e.g. http://h:p/identity (without /v3)
    user: str
    password: Callable[[], str]
    project: str
    domain: str = "Default"


class _Session:
    """A token for the store's account and the object-store URL from its catalog."""

    def __init__(self, creds: Credentials, timeout: float = 60.0) -> None:
        self.creds = creds
        self.client = httpx.Client(timeout=timeout)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._url: str | None = None
        self._expires = 0.0

    def _login(self) -> None:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.creds.user,
                            "domain": {"name": self.creds.domain},
                            "password": self.creds.password(),
                        }
                    },
                },
                "scope": {"project": {"name": self.creds.project, "domain": {"name": self.creds.domain}}},
            }
        }
        try:
            r = self.client.post(self.creds.auth_url.rstrip("/") + "/v3/auth/tokens", json=body)
        except httpx.HTTPError as exc:
            raise StoreError(f"identity is not reachable: {exc}") from None
        if r.status_code != 201:
            raise StoreError(f"the object store account could not log in: identity answered {r.status_code}")
        catalog = (r.json().get("token") or {}).get("catalog") or []
        url = None
        for entry in catalog:
            if entry.get("type") == "object-store":
                for ep in entry.get("endpoints") or []:
                    if ep.get("interface") == "public":
                        url = str(ep["url"]).rstrip("/")
        if not url:
            raise StoreError("the catalog has no object-store endpoint")
        self._token = r.headers.get("x-subject-token")
        self._url = url
        self._expires = time.monotonic() + 1800

    def auth(self, *, renew: bool = False) -> tuple[str, str]:
        with self._lock:
            if renew or self._token is None or time.monotonic() > self._expires:
                self._login()
            assert self._token is not None and self._url is not None
            return self._url, self._token

    def request(self, method: str, path: str, **kw: object) -> httpx.Response:
        """One request with the account's token; logs in again once on 401."""
        for attempt in (0, 1):
            url, token = self.auth(renew=attempt == 1)
            headers = {"X-Auth-Token": token, **dict(kw.pop("headers", {}) or {})}  # type: ignore[arg-type]
            try:
                r = self.client.request(method, f"{url}/{path}", headers=headers, **kw)  # type: ignore[arg-type]
            except httpx.HTTPError as exc:
                raise StoreError(f"object store {method} {path} failed: {exc}") from None
            if r.status_code != 401:
                return r
        return r


def _q(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


class _SegmentPut:
    """One segment PUT fed chunk by chunk from another thread."""

    def __init__(self, session: _Session, path: str) -> None:
        self.q: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self.session = session
        self.path = path
        self.size = 0
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"image-swift-put-{path}", daemon=True)
        self.thread.start()

    def _body(self) -> Iterator[bytes]:
        while True:
            chunk = self.q.get()
            if chunk is None:
                return
            yield chunk

    def _run(self) -> None:
        try:
            # chunked transfer: the segment's length is known only at its end
            self.response = self.session.request("PUT", self.path, content=self._body())
        except BaseException as exc:  # noqa: BLE001 - handed to the writer thread
            self.error = exc
            while True:  # unblock the producer
                try:
                    if self.q.get_nowait() is None:
                        break
                except queue.Empty:
                    break

    def put(self, data: bytes) -> None:
        while True:
            if self.error is not None or not self.thread.is_alive():
                raise StoreError(f"object store upload of {self.path} failed: {self.error}")
            try:
                self.q.put(data, timeout=1.0)
                break
            except queue.Full:
                continue
        self.size += len(data)

    def finish(self) -> str:
        """Wait for the PUT; returns the segment's etag."""
        while self.thread.is_alive():
            try:
                self.q.put(None, timeout=1.0)
                break
            except queue.Full:
                continue
        self.thread.join()
        r = self.response
        if self.error is not None or r is None:
            raise StoreError(f"object store upload of {self.path} failed: {self.error}")
        if r.status_code != 201:
            raise StoreError(f"object store refused segment {self.path}: {r.status_code} {r.text[:200]}")
        return r.headers.get("etag", "").strip('"')


class _SwiftWriter:
    def __init__(self, store: SwiftStore, image_id: str) -> None:
        self.store = store
        self.image_id = image_id
        self.prefix = f"{image_id}-segments/{uuid.uuid4().hex}"
        self.segments: list[dict[str, object]] = []
        self.current: _SegmentPut | None = None

    def _segment_path(self, n: int) -> str:
        return _q(self.store.container, f"{self.prefix}/{n:08d}")

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.current is None:
                self.store.ensure_container()
                self.current = _SegmentPut(self.store.session, self._segment_path(len(self.segments) + 1))
            room = self.store.segment_size - self.current.size
            part, view = view[:room], view[room:]
            self.current.put(bytes(part))
            if self.current.size >= self.store.segment_size:
                self._close_segment()

    def _close_segment(self) -> None:
        assert self.current is not None
        seg, self.current = self.current, None
        etag = seg.finish()
        self.segments.append({"path": "/" + seg.path, "etag": etag, "size_bytes": seg.size})

    def commit(self) -> str:
        if self.current is not None:
            self._close_segment()
        self.store.ensure_container()
        path = _q(self.store.container, self.image_id)
        if not self.segments:
            r = self.store.session.request("PUT", path, content=b"")
        else:
            r = self.store.session.request(
                "PUT",
                path,
                params={"multipart-manifest": "put"},
                content=json.dumps(self.segments).encode(),
                headers={"Content-Type": "application/json"},
            )
        if r.status_code != 201:
            self.abort()
            raise StoreError(
                f"object store refused the manifest of {self.image_id}: {r.status_code} {r.text[:200]}"
            )
        return f"{SCHEME}{self.store.container}/{self.image_id}"

    def abort(self) -> None:
        if self.current is not None:
            seg, self.current = self.current, None
            with contextlib.suppress(StoreError):
                seg.finish()
            self.segments.append({"path": "/" + seg.path})
        for segment in self.segments:
            try:
                self.store.session.request("DELETE", str(segment["path"]).lstrip("/"))
            except StoreError:
                log.warning("could not remove segment %s", segment["path"])


class SwiftStore:
    """Image data in kumo's object storage (Glance's ``swift`` store)."""

    kind = "swift"

    def __init__(
        self,
        creds: Credentials,
        *,
        store_id: str = "swift",
        description: str = "Object storage (Swift API)",
        container: str = "kumo-images",
        segment_size: int = 64 * 1024 * 1024,
    ) -> None:
        self.id = store_id
        self.description = description
        self.container = container
        self.segment_size = segment_size
        self.session = _Session(creds)
        self._container_ready = False

    def ensure_container(self) -> None:
        if self._container_ready:
            return
        r = self.session.request("PUT", _q(self.container))
        if r.status_code not in (201, 202, 204):
            raise StoreError(f"object store refused container {self.container}: {r.status_code}")
        self._container_ready = True

    def object_path(self, location: str) -> str:
        rest = location.removeprefix(SCHEME) if location.startswith(SCHEME) else None
        if rest is None or "/" not in rest:
            raise ValueError(f"location {location!r} is not in store {self.id}")
        container, obj = rest.split("/", 1)
        if container != self.container or not obj or "/" in obj:
            raise ValueError(f"location {location!r} is not in store {self.id}")
        return _q(container, obj)

    def owns(self, location: str) -> bool:
        try:
            self.object_path(location)
        except ValueError:
            return False
        return True

    def writer(self, image_id: str) -> _SwiftWriter:
        return _SwiftWriter(self, image_id)

    def read(self, location: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self.object_path(location)
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        url, token = self.session.auth()
        with self.session.client.stream(
            "GET", f"{url}/{path}", headers={"X-Auth-Token": token, **headers}
        ) as r:
            if r.status_code not in (200, 206):
                raise StoreError(f"object store GET {location} answered {r.status_code}")
            yield from r.iter_bytes(CHUNK)

    def delete(self, location: str) -> None:
        path = self.object_path(location)
        r = self.session.request("DELETE", path, params={"multipart-manifest": "delete"})
        if r.status_code not in (200, 204, 404):
            raise StoreError(f"object store DELETE {location} answered {r.status_code}")
