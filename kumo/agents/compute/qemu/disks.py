"""Base images (downloaded once from the image API, verified) and per-VM qcow2 overlays."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from kumo.agents.compute.driver import ImageRef
from kumo.agents.compute.errors import PermanentError, TemporaryError

GiB = 1024**3

# fetch(url) -> (chunks, expected md5 or None); raises TemporaryError/PermanentError
Fetcher = Callable[[str], "contextlib.AbstractContextManager[tuple[Iterator[bytes], str | None]]"]


def qemu_img(*args: str, timeout: float = 600) -> str:
    try:
        proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise PermanentError("qemu-img is not installed on this compute host") from exc
    except subprocess.TimeoutExpired as exc:
        raise TemporaryError(f"qemu-img {args[0]} timed out", delay=5.0) from exc
    if proc.returncode != 0:
        raise PermanentError(f"qemu-img {args[0]} failed: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def image_info(path: Path) -> dict[str, Any]:
    return json.loads(qemu_img("info", "--output=json", str(path)))


class PasswordFetcher:
    """Downloads image data with a token from password auth (the ``auth`` block of a clouds.yaml cloud)."""

    def __init__(self, auth: dict[str, Any], timeout: float = 300.0) -> None:
        self.auth = auth
        self.timeout = timeout
        self._token: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_clouds_yaml(cls, path: Path, cloud: str = "kumo-admin") -> PasswordFetcher:
        doc = yaml.safe_load(path.read_text())
        return cls(dict(doc["clouds"][cloud]["auth"]))

    def token(self, fresh: bool = False) -> str:
        with self._lock:
            if self._token and not fresh:
                return self._token
            a = self.auth
            body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": a["username"], "password": a["password"],
                "domain": {"name": a.get("user_domain_name", "Default")}}}}}}
            if a.get("project_name"):
                body["auth"]["scope"] = {"project": {"name": a["project_name"],
                                                    "domain": {"name": a.get("project_domain_name", "Default")}}}
            try:
                r = httpx.post(a["auth_url"].rstrip("/") + "/auth/tokens", json=body, timeout=30.0)
            except httpx.HTTPError as exc:
                raise TemporaryError(f"identity is not reachable: {exc}", delay=2.0) from exc
            if r.status_code >= 400:
                raise TemporaryError(f"identity refused the compute host's credentials ({r.status_code})", delay=5.0)
            self._token = r.headers["X-Subject-Token"]
            return self._token

    @contextlib.contextmanager
    def __call__(self, url: str) -> Iterator[tuple[Iterator[bytes], str | None]]:
        with httpx.Client(timeout=self.timeout) as client:
            for attempt in (1, 2):
                try:
                    with client.stream("GET", url, headers={"X-Auth-Token": self.token(fresh=attempt == 2)}) as r:
                        if r.status_code == 401 and attempt == 1:
                            continue
                        if r.status_code in (404, 410):
                            raise PermanentError(f"the image is gone from the image service ({r.status_code})")
                        if r.status_code == 204:
                            raise PermanentError("the image has no data")
                        if r.status_code >= 400:
                            raise TemporaryError(f"image download answered {r.status_code}", delay=3.0)
                        yield r.iter_bytes(1 << 20), r.headers.get("Content-MD5")
                        return
                except httpx.HTTPError as exc:
                    raise TemporaryError(f"image download failed: {exc}", delay=3.0) from exc


class ImageCache:
    """``<root>/images/<image id>``: verified base images, shared by the overlays on this host."""

    def __init__(self, root: Path, fetch: Fetcher | None) -> None:
        self.root = root
        self.fetch = fetch
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, image_id: str) -> Path:
        if not image_id or "/" in image_id or image_id.startswith("."):
            raise PermanentError(f"bad image id {image_id!r}")
        return self.root / image_id

    def ensure(self, image: ImageRef) -> tuple[Path, str]:
        """(path, format) of the base image, downloading and checking it when not cached."""
        with self._guard:
            lock = self._locks.setdefault(image.id, threading.Lock())
        with lock:
            path = self.path(image.id)
            meta = path.with_suffix(".json")
            if path.is_file() and meta.is_file():
                return path, json.loads(meta.read_text())["format"]
            if self.fetch is None or not image.url:
                raise PermanentError(f"image {image.id} cannot be downloaded: no image service URL or credentials")
            self.root.mkdir(parents=True, exist_ok=True)
            part = path.with_suffix(".part")
            md5 = hashlib.md5(usedforsecurity=False)
            size = 0
            try:
                with self.fetch(image.url) as (chunks, expected), open(part, "wb") as fh:
                    for chunk in chunks:
                        md5.update(chunk)
                        size += len(chunk)
                        fh.write(chunk)
                expected = expected or image.checksum
                if expected and md5.hexdigest() != expected:
                    raise TemporaryError(f"image {image.id}: checksum mismatch (got {md5.hexdigest()})", delay=2.0)
                if size == 0:
                    raise PermanentError(f"image {image.id} is empty")
                info = image_info(part)
                fmt = info.get("format")
                if fmt not in ("raw", "qcow2"):
                    raise PermanentError(f"image {image.id}: unsupported disk format {fmt!r}")
                if info.get("backing-filename") or info.get("full-backing-filename"):
                    raise PermanentError(f"image {image.id} refers to a backing file: refused")
                os.replace(part, path)
                meta.write_text(json.dumps({"format": fmt, "virtual_size": info.get("virtual-size", size),
                                            "md5": md5.hexdigest()}))
                return path, str(fmt)
            finally:
                part.unlink(missing_ok=True)

    def virtual_size(self, image_id: str) -> int:
        meta = self.path(image_id).with_suffix(".json")
        return int(json.loads(meta.read_text()).get("virtual_size", 0))


def create_overlay(disk: Path, base: Path, base_format: str, size_bytes: int) -> None:
    """A qcow2 overlay on ``base`` of ``size_bytes`` (at least the base's virtual size)."""
    disk.parent.mkdir(parents=True, exist_ok=True)
    part = disk.with_suffix(".part")
    qemu_img("create", "-q", "-f", "qcow2", "-F", base_format, "-b", str(base), str(part), str(size_bytes))
    os.replace(part, disk)


def grow(disk: Path, size_bytes: int) -> None:
    """Grow ``disk`` to ``size_bytes`` (never shrinks: data would be lost)."""
    if int(image_info(disk).get("virtual-size", 0)) < size_bytes:
        qemu_img("resize", "-q", str(disk), str(size_bytes))


def blank(disk: Path, size_bytes: int) -> None:
    disk.parent.mkdir(parents=True, exist_ok=True)
    qemu_img("create", "-q", "-f", "qcow2", str(disk), str(size_bytes))


def flatten(disk: Path, dest: Path) -> Path:
    """A standalone compressed qcow2 of ``disk`` (backing chain merged) at ``dest``."""
    part = dest.with_suffix(".part")
    qemu_img("convert", "-U", "-c", "-O", "qcow2", str(disk), str(part))
    os.replace(part, dest)
    return dest
