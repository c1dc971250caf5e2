"""A read-only store for image data at http(s) URLs (Glance's ``http`` store).

Images get such locations only through the location APIs (``show_multiple_locations``
JSON patch, ``POST /v2/images/{id}/locations``). Every URL is filtered like a
web-download URI (scheme, port, no private addresses) each time it is read, so a
location cannot turn the image service into a proxy into private networks.
Nothing is ever written or deleted there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx

from kumo.common.config import ImageSettings
from kumo.image.store import StoreError

CHUNK = 1024 * 1024


class HttpStoreError(StoreError):
    """The remote server did not serve the data."""


class _NoWriter:
    def write(self, data: bytes) -> None:
        raise OSError("the http store is read-only")

    def commit(self) -> str:
        raise OSError("the http store is read-only")

    def abort(self) -> None:
        pass


class HttpStore:
    kind = "http"
    read_only = True

    def __init__(
        self,
        settings: ImageSettings,
        check: Callable[[str, ImageSettings], str],
        store_id: str = "web",
        description: str = "Read-only image data at http(s) URLs",
    ) -> None:
        self.id = store_id
        self.description = description
        self.settings = settings
        self.check = check

    def owns(self, location: str) -> bool:
        return urlsplit(location).scheme.lower() in ("http", "https")

    def writer(self, image_id: str) -> _NoWriter:
        return _NoWriter()

    def size(self, location: str) -> int:
        """The data's length, from a HEAD (or the headers of a GET) of the URL."""
        url = self.check(location, self.settings)
        try:
            with httpx.Client(timeout=self.settings.web_download_timeout, follow_redirects=False) as c:
                r = c.head(url)
                length = r.headers.get("content-length")
                if r.status_code != 200 or not (length or "").isdigit():
                    with c.stream("GET", url) as g:
                        length = g.headers.get("content-length")
                        if g.status_code != 200:
                            raise HttpStoreError(f"{url} answered HTTP {g.status_code}")
        except httpx.HTTPError as exc:
            raise HttpStoreError(f"could not reach {url}: {exc}") from None
        if not (length or "").isdigit():
            raise HttpStoreError(f"{url} does not tell its size")
        return int(length or 0)

    def read(self, location: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        url = self.check(location, self.settings)
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            with (
                httpx.Client(timeout=self.settings.web_download_timeout, follow_redirects=False) as c,
                c.stream("GET", url, headers=headers) as r,
            ):
                if r.status_code not in (200, 206):
                    raise HttpStoreError(f"{url} answered HTTP {r.status_code}")
                skip = start if (start and r.status_code == 200) else 0  # server ignored the range
                left = None if end is None else end - start + 1
                for chunk in r.iter_bytes(CHUNK):
                    if skip:
                        cut = min(skip, len(chunk))
                        chunk, skip = chunk[cut:], skip - cut
                    if left is not None:
                        chunk = chunk[:left]
                        left -= len(chunk)
                    if chunk:
                        yield chunk
                    if left == 0:
                        return
        except httpx.HTTPError as exc:
            raise HttpStoreError(f"could not read {url}: {exc}") from None

    def delete(self, location: str) -> None:
        """Nothing to do: the data is not kumo's."""
