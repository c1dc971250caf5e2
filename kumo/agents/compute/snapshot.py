"""The ``snapshot`` operation (Nova's createImage): the driver writes the root disk to a file on
this host, which is streamed in chunks to the image API (``PUT /v2/images/{id}/file``).

The upload uses this host's own credentials (the ``kumo-admin`` cloud of the data dir's
clouds.yaml on the all-in-one host, ``kumo-node`` on a joined node) — never the user's token.
The API put the image's URL into the pending operation; the image was created there, queued,
owned by the user's project. Idempotent: if a report was lost and the operation runs again,
an image that is already active counts as done.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx

from kumo.agents.compute.driver import Driver
from kumo.agents.compute.errors import PermanentError, TemporaryError

log = logging.getLogger("kumo.agents.compute")

CHUNK = 1 << 20


class Credentials(Protocol):
    def token(self, fresh: bool = False) -> str: ...


def host_credentials(data_dir: Path) -> Credentials | None:
    """This host's credentials from ``<data_dir>/clouds.yaml``: kumo-admin, else the node's user."""
    import yaml

    from kumo.agents.compute.qemu.disks import PasswordFetcher

    path = Path(data_dir) / "clouds.yaml"
    if not path.is_file():
        return None
    clouds = (yaml.safe_load(path.read_text()) or {}).get("clouds") or {}
    for name in ("kumo-admin", "kumo-node"):
        if name in clouds and clouds[name].get("auth"):
            return PasswordFetcher(dict(clouds[name]["auth"]))
    return None


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            yield block


def _request(creds: Credentials, method: str, url: str, timeout: float,
             headers: dict[str, str] | None = None,
             body: Callable[[], Iterator[bytes]] | None = None) -> httpx.Response:
    """One call with the host's token, retried once with a fresh token on 401."""
    r: httpx.Response | None = None
    for attempt in (1, 2):
        try:
            r = httpx.request(method, url, timeout=timeout, content=body() if body else None,
                              headers={**(headers or {}), "X-Auth-Token": creds.token(fresh=attempt == 2)})
        except httpx.HTTPError as exc:
            raise TemporaryError(f"the image service is not reachable: {exc}", delay=3.0) from exc
        if r.status_code != 401:
            break
    assert r is not None
    return r


def image_status(creds: Credentials, image_url: str) -> str | None:
    """The image's status, or None when it is gone."""
    r = _request(creds, "GET", image_url, 30.0)
    if r.status_code == 404:
        return None
    if r.status_code >= 400:
        raise TemporaryError(f"the image service answered {r.status_code}", delay=3.0)
    return str(r.json().get("status"))


def delete_image(creds: Credentials, image_url: str) -> None:
    with contextlib.suppress(Exception):
        _request(creds, "DELETE", image_url, 30.0)


def discard_unfinished(creds: Credentials | None, image_url: str) -> None:
    """The server was deleted before its snapshot finished: its queued image goes too (an
    image whose upload completed stays — the user has it)."""
    if creds is None:
        return
    with contextlib.suppress(Exception):
        if image_status(creds, image_url) in ("queued", "saving", "uploading"):
            delete_image(creds, image_url)


def discard_shelved(creds: Credentials | None, image_url: str) -> None:
    """The unshelved server runs on a disk made from its ``<name>-shelved`` snapshot: the
    snapshot goes, as in Nova (already gone: nothing to do)."""
    if creds is None:
        return
    with contextlib.suppress(Exception):
        delete_image(creds, image_url)


def run(driver: Driver, creds: Credentials | None, vm_id: str, pending: Mapping[str, Any],
        work_dir: Path | None = None) -> None:
    """Snapshot ``vm_id`` into the image named by ``pending``; raises PermanentError on failure
    (the half-made image is deleted first) and TemporaryError when the attempt should be retried."""
    image_url = str(pending.get("image_url") or "")
    if not image_url:
        raise PermanentError("the snapshot operation names no image")
    if creds is None:
        raise PermanentError("this compute host has no credentials for the image service")
    status = image_status(creds, image_url)
    if status is None:
        raise PermanentError(f"image {pending.get('image_id')} was deleted during the snapshot")
    if status == "active":
        return  # uploaded by an earlier attempt whose report was lost
    if status not in ("queued", "saving", "uploading"):
        raise PermanentError(f"image {pending.get('image_id')} is {status}; nothing was uploaded")
    try:
        with tempfile.TemporaryDirectory(prefix="kumo-snap-", dir=work_dir) as tmp:
            disk = driver.snapshot_to(vm_id, Path(tmp) / "snapshot")
            r = _request(creds, "PUT", image_url + "/file", 3600.0,
                         headers={"Content-Type": "application/octet-stream"},
                         body=lambda: _chunks(disk))
    except TemporaryError:
        raise
    except PermanentError:
        delete_image(creds, image_url)
        raise
    except Exception as exc:
        delete_image(creds, image_url)
        raise PermanentError(f"snapshot failed: {type(exc).__name__}: {exc}") from exc
    if r.status_code in (404, 410):
        raise PermanentError(f"image {pending.get('image_id')} was deleted during the snapshot")
    if r.status_code == 409 and image_status(creds, image_url) == "active":
        return
    if r.status_code >= 400:
        delete_image(creds, image_url)
        raise PermanentError(f"the image service refused the snapshot ({r.status_code}): {r.text[:200]}")
