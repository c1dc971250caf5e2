"""Listing updates sent by an object node, and what it keeps when they cannot be sent.

After an object write, the node that stored it tells one container replica (the one the
proxy named) about the new row.  If that container server is down, the update is kept on
this node as an *async pending* file and the updater replays it later.  Objects with an
X-Delete-At also get an entry in this device's expiring-objects queue, which the expirer
works through.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kumo.object_store.utils import hash_path, quote_path

ASYNC_DIR = "async_pending"
EXPIRING_DIR = "expiring"
STAT_HEADERS = ("x-put-timestamp", "x-delete-timestamp", "x-container-object-count", "x-container-bytes-used")


@dataclass(slots=True)
class ListingUpdate:
    op: str  # PUT or DELETE
    account: str
    container: str
    obj: str
    headers: dict[str, str]  # x-timestamp, x-size, x-content-type, x-etag

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "account": self.account, "container": self.container, "obj": self.obj,
                "headers": self.headers}  # fmt: skip


def _atomic_write(path: Path, data: bytes, tmp_dir: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


async def send_update(
    client: httpx.AsyncClient, device: str, part: int | str, update: ListingUpdate
) -> dict[str, str] | None:
    """One container replica's answer (its totals) or None when it did not take the update."""
    url = f"/container/{device}/{part}/{quote_path(update.account, update.container, update.obj)}"
    try:
        resp = await client.request(update.op, url, headers=update.headers)
    except httpx.HTTPError:
        return None
    if resp.status_code >= 300:
        return None
    return {k: v for k, v in resp.headers.items() if k.lower() in STAT_HEADERS}


def save_async_pending(device_root: Path, update: ListingUpdate, hash_suffix: str, done: list[str]) -> Path:
    """Keep an update for the updater; ``done`` lists the container replicas that already have it."""
    h = hash_path(update.account, update.container, update.obj, suffix=hash_suffix)
    ts = update.headers.get("x-timestamp", "0")
    path = device_root / ASYNC_DIR / h[-3:] / f"{h}-{ts}"
    body = {**update.to_dict(), "done": done}
    _atomic_write(path, json.dumps(body).encode(), device_root / "tmp")
    return path


def async_pendings(device_root: Path) -> list[Path]:
    root = device_root / ASYNC_DIR
    out: list[Path] = []
    with contextlib.suppress(FileNotFoundError):
        for suffix in sorted(os.listdir(root)):
            with contextlib.suppress(NotADirectoryError, FileNotFoundError):
                out.extend(root / suffix / n for n in sorted(os.listdir(root / suffix)))
    return out


def queue_expiring(device_root: Path, delete_at: str, part: int, name: str, name_hash: str) -> None:
    path = device_root / EXPIRING_DIR / f"{int(delete_at):010d}-{name_hash}"
    _atomic_write(path, json.dumps({"partition": part, "name": name}).encode(), device_root / "tmp")


def due_expiring(device_root: Path, now: float) -> list[tuple[Path, str, dict[str, Any]]]:
    """(queue file, delete-at, entry) for every entry whose time has come, oldest first."""
    root = device_root / EXPIRING_DIR
    out: list[tuple[Path, str, dict[str, Any]]] = []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return out
    for name in names:
        delete_at = name.split("-", 1)[0]
        if not delete_at.isdigit():
            continue
        if int(delete_at) > now:
            break
        try:
            entry = json.loads((root / name).read_text())
        except (FileNotFoundError, ValueError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(root / name)
            continue
        out.append((root / name, str(int(delete_at)), entry))
    return out
