"""Listing updates sent by an object node, and what it keeps when they cannot be sent.

After an object write, the node that stored it tells one container replica (the one the
proxy named) about the new row.  If that container server is down, the update is kept on
this node as an *async pending* file and the updater replays it later.  Objects with an
X-Delete-At also get an entry in this device's expiring-objects queue, which the expirer
works through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio.to_thread
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


Row = TypeVar("Row")
Result = TypeVar("Result")


class GroupCommit(Generic[Row, Result]):
    """Many writers' rows for one DB applied in one transaction (a group commit).

    ``submit(key, row)`` queues a row for the DB named by ``key`` and waits for the transaction
    that holds it: while one batch of a DB is being written (in a worker thread), the rows that
    arrive meanwhile gather into the next batch.  ``apply(key, rows)`` writes a batch in one
    transaction and returns the answer every row of it gets (the DB's totals after the commit).
    When a batch fails (and rolls back), its rows are tried again one transaction each, so an
    error reaches only the writer whose row caused it.  A writer is answered only after its
    row committed, so whoever got an answer finds the row in the DB.
    """

    def __init__(self, apply: Callable[[Any, list[Row]], Result], max_batch: int = 512) -> None:
        self.apply = apply
        self.max_batch = max_batch
        self.pending: dict[Any, list[tuple[Row, asyncio.Future[Result]]]] = {}
        self.running: set[Any] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def submit(self, key: Any, row: Row) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.pending.setdefault(key, []).append((row, future))
        if key not in self.running:
            self.running.add(key)
            task = asyncio.ensure_future(self._drain(key))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await asyncio.shield(future)  # a cancelled writer leaves its batch alone

    async def _one_by_one(self, key: Any, count: int) -> None:
        for _ in range(count):
            queued = self.pending.get(key)
            if not queued:
                return
            row, future = queued.pop(0)
            try:
                result = await anyio.to_thread.run_sync(self.apply, key, [row])
            except asyncio.CancelledError:
                future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - this writer's own failure
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)

    async def _drain(self, key: Any) -> None:
        try:
            while self.pending.get(key):
                queued = self.pending[key]
                batch, rest = queued[: self.max_batch], queued[self.max_batch :]
                if rest:
                    self.pending[key] = rest
                else:
                    del self.pending[key]
                try:
                    result = await anyio.to_thread.run_sync(self.apply, key, [row for row, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:
                    if len(batch) == 1:
                        if not batch[0][1].done():
                            batch[0][1].set_exception(exc)
                        continue
                    # the transaction rolled back: each row again on its own, so that a bad row
                    # fails only its writer
                    self.pending[key] = [(row, future) for row, future in batch if not future.done()] + (
                        self.pending.get(key, [])
                    )
                    await self._one_by_one(key, len(batch))
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_result(result)
        finally:
            self.running.discard(key)
            for _, future in self.pending.pop(key, []):  # cancelled (shutdown): nothing waits forever
                if not future.done():
                    future.set_exception(RuntimeError("group commit stopped"))
