"""Fetching image data from a URL (web-download) without becoming a proxy into private networks.

A URI passes filtering when its scheme is http or https, its port is one of
``web_download_allowed_ports``, its host is not in ``web_download_deny_hosts``, and
every address the host resolves to is public: loopback, private, link-local,
multicast, reserved and unspecified addresses are refused unless the host (or the
address) is listed in ``web_download_allow_hosts`` (a listed host may also use any
port). Redirects are followed by
hand, each hop filtered again.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

import httpx

from kumo.common.config import ImageSettings
from kumo.image.errors import BadRequest

MAX_REDIRECTS = 5
CHUNK = 1024 * 1024


class FetchError(Exception):
    """The remote server could not be reached or did not send the image."""


def _refused(uri: str, why: str) -> BadRequest:
    return BadRequest(f"URI {uri} does not pass filtering: {why}.")


def _public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


def resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def check_uri(uri: object, st: ImageSettings, resolver=resolve) -> str:  # type: ignore[no-untyped-def]
    """The URI if it may be fetched; 400 (``does not pass filtering``) otherwise."""
    if not isinstance(uri, str) or not uri:
        raise BadRequest("web-download needs a 'uri' string in the method.")
    if len(uri) > 2048:
        raise BadRequest("The URI is too long (2048 characters at most).")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise _refused(uri, "it is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _refused(uri, f"scheme {scheme or 'none'!r} is not allowed (http and https are)")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise _refused(uri, "it names no host")
    if parts.username or parts.password:
        raise _refused(uri, "credentials in the URL are not allowed")
    port = port or (443 if scheme == "https" else 80)
    allow = {h.lower() for h in st.web_download_allow_hosts}
    deny = {h.lower() for h in st.web_download_deny_hosts}
    # a host the operator listed may use any port; others only the allowed ports
    if port not in st.web_download_allowed_ports and host not in allow:
        raise _refused(
            uri, f"port {port} is not allowed ({', '.join(map(str, st.web_download_allowed_ports))})"
        )
    if host in deny:
        raise _refused(uri, f"host {host} is denied")
    addresses = resolver(host)
    if not addresses:
        raise _refused(uri, f"host {host} cannot be resolved")
    if deny & set(addresses):
        raise _refused(uri, f"host {host} resolves to a denied address")
    if host in allow:
        return uri
    for raw in addresses:
        addr = ipaddress.ip_address(raw.split("%", 1)[0])
        if raw not in allow and not _public(addr):
            raise _refused(uri, f"host {host} resolves to {raw}, a non-public address")
    return uri


def _chunks(r: httpx.Response, uri: str) -> Iterator[bytes]:
    try:
        yield from r.iter_bytes(CHUNK)
    except httpx.HTTPError as exc:
        raise FetchError(f"could not fetch {uri}: {exc}") from None


@contextmanager
def open_uri(uri: str, st: ImageSettings) -> Iterator[tuple[int | None, Iterator[bytes]]]:
    """Stream the body at ``uri`` (filtered, redirects re-filtered): (length or None, chunks)."""
    timeout = httpx.Timeout(st.web_download_timeout)
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        current = check_uri(uri, st)
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                with client.stream("GET", current, headers={"Accept": "*/*"}) as r:
                    if r.status_code in (301, 302, 303, 307, 308) and r.headers.get("location"):
                        current = check_uri(urljoin(current, r.headers["location"]), st)
                        continue
                    if r.status_code != 200:
                        raise FetchError(f"{current} answered HTTP {r.status_code}")
                    length = r.headers.get("content-length")
                    size = int(length) if length and length.isdigit() else None
                    yield size, _chunks(r, current)
                    return
            except httpx.HTTPError as exc:
                raise FetchError(f"could not fetch {current}: {exc}") from None
        raise FetchError(f"too many redirects from {uri}")
