"""The volume agent: registers its storage host, heartbeats with the pool's capacity, and carries
out the tasks the block storage API recorded for the volumes, snapshots and backups placed on it.

It reaches the control plane only over HTTP (the internal agent API under
``/volume/v3/kumo-agent``; in all-in-one mode through an in-process ASGI transport). Image and
object storage are called with the requester's token and endpoints, which the task carries (as
Cinder passes the request context to its volume and backup services). Level-triggered: a task
stays pending until a report with its sequence number settles it, so a lost report or a restart
only repeats idempotent work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx

from kumo.agents.block_storage import nbd
from kumo.agents.block_storage.backend import Backend, PermanentError, TemporaryError
from kumo.agents.block_storage.nbd import NbdExporter

log = logging.getLogger("kumo.agents.block_storage")

CHUNK = 1024 * 1024


class VolumeAgent:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        secret: str,
        backend: Backend,
        host: str = "",
        zone: str = "nova",
        heartbeat_interval: float = 10.0,
        scratch: Path | None = None,
        http: Callable[[], httpx.Client] | None = None,
        exporter: NbdExporter | None = None,
    ) -> None:
        self.client = client
        self.base = base_url.rstrip("/") + "/kumo-agent"
        self.headers = {"X-Kumo-Agent-Secret": secret}
        self.backend = backend
        self.host = f"{host or socket.gethostname()}@{backend.name}"
        self.zone = zone
        self.heartbeat_interval = heartbeat_interval
        self.scratch = scratch or Path(tempfile.gettempdir())
        self._http = http or (lambda: httpx.Client(timeout=httpx.Timeout(60.0, read=600.0)))
        self._busy: dict[str, tuple[int, asyncio.Task[None]]] = {}
        self._stop = asyncio.Event()
        self.exporter = exporter  # NBD exports for remote compute hosts (multi-node); None: local paths only
        self._served: set[str] = set()
        self._exports_task: asyncio.Task[None] | None = None
        self._exports_wanted: Any = None

    # --- control plane ---------------------------------------------------------------------------
    async def _post(self, path: str, body: Any = None) -> httpx.Response:
        r = await self.client.post(self.base + path, json=body, headers=self.headers)
        if r.status_code >= 500:
            raise TemporaryError(f"control plane answered {r.status_code}", delay=1.0)
        return r

    async def _capacity(self) -> dict[str, Any]:
        cap = await anyio.to_thread.run_sync(self.backend.capacity)
        out = {"total_gb": cap.total_gb, "free_gb": cap.free_gb, "provisioned_gb": cap.provisioned_gb,
               "storage_protocol": self.backend.driver_volume_type}
        if self.exporter is not None:
            out["nbd"] = {**self.exporter.endpoint, "exports": sorted(self._served)}
        return out

    async def register(self) -> None:
        r = await self._post("/hosts", {"host": self.host, "backend": self.backend.name, "zone": self.zone,
                                        "capacity": await self._capacity()})
        r.raise_for_status()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.register()
                break
            except Exception as exc:  # control plane not up yet
                log.info("volume agent: registering failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
        hb = asyncio.create_task(self._heartbeats())
        generation = -1
        try:
            while not self._stop.is_set():
                try:
                    r = await self.client.get(f"{self.base}/hosts/{self.host}/work",
                                              params={"generation": generation, "wait": 5},
                                              headers=self.headers, timeout=40.0)
                    if r.status_code == 404:
                        await self.register()
                        continue
                    r.raise_for_status()
                    doc = r.json()
                    generation = doc["generation"]
                    self._dispatch_all(doc)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("volume agent: sync failed: %s", exc)
                    await asyncio.sleep(1.0)
                    generation = -1
        finally:
            hb.cancel()
            if self._exports_task is not None:
                self._exports_task.cancel()
            for _seq, t in list(self._busy.values()):
                t.cancel()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                r = await self._post(f"/hosts/{self.host}/heartbeat", {"capacity": await self._capacity()})
                if r.status_code == 404:
                    await self.register()
            except Exception as exc:
                log.warning("volume agent: heartbeat failed: %s", exc)

    # --- dispatch --------------------------------------------------------------------------------
    def _dispatch_all(self, doc: Mapping[str, Any]) -> None:
        for kind in ("snapshots", "volumes", "backups"):
            for item in doc.get(kind) or []:
                task = item.get("task") or {}
                if task:
                    self._dispatch(kind[:-1], item, task)
        if self.exporter is not None and "exports" in doc:
            self._exports_wanted = doc["exports"]
            if self._exports_task is None or self._exports_task.done():
                self._exports_task = asyncio.create_task(self._sync_exports())

    async def _sync_exports(self) -> None:
        """Serve the NBD exports the control plane wants; report the served set right away
        (the API waits for an attachment's export before it hands out the connection info)."""
        assert self.exporter is not None
        while self._exports_wanted is not None:
            doc, self._exports_wanted = self._exports_wanted, None
            try:
                wanted = nbd.wanted_exports(doc, self.backend.connection_info, self.backend.volume_exists)
                served = await anyio.to_thread.run_sync(self.exporter.reconcile, wanted)
            except Exception as exc:  # retried with the next work document
                log.warning("volume agent: NBD exports failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if served != self._served:
                self._served = served
                try:
                    await self._post(f"/hosts/{self.host}/heartbeat", {"capacity": await self._capacity()})
                except Exception as exc:
                    log.warning("volume agent: reporting exports failed: %s", exc)

    def _dispatch(self, kind: str, item: dict[str, Any], task: dict[str, Any]) -> None:
        key = f"{kind}:{item['id']}"
        busy = self._busy.get(key)
        if busy is not None and not busy[1].done():
            return  # one worker per object; the next poll brings the task again if it changed
        self._busy[key] = (task["seq"], asyncio.create_task(self._work(kind, item, task)))

    async def _work(self, kind: str, item: dict[str, Any], task: dict[str, Any]) -> None:
        report: dict[str, Any] = {"kind": kind, "id": item["id"], "seq": task["seq"]}
        attempts = 0
        while True:
            try:
                result = await anyio.to_thread.run_sync(self._apply, kind, item, task)
                report.update(ok=True, result=result or {})
                break
            except TemporaryError as exc:
                attempts += 1
                if attempts >= 5:
                    report.update(ok=False, fault=str(exc) or "temporary failure")
                    break
                await asyncio.sleep(max(getattr(exc, "delay", 1.0), 0.5))
            except PermanentError as exc:
                report.update(ok=False, fault=str(exc) or "The storage back end failed.")
                break
            except Exception as exc:  # unexpected: permanent for this task, and logged
                log.exception("volume agent: %s %s of %s failed", kind, task.get("op"), item["id"])
                report.update(ok=False, fault=f"{type(exc).__name__}: {exc}")
                break
        for _ in range(30):
            try:
                r = await self._post("/report", report)
                if r.status_code < 400:
                    return
                log.warning("volume agent: report for %s answered %s", item["id"], r.status_code)
                return
            except Exception as exc:
                log.warning("volume agent: report for %s failed: %s", item["id"], exc)
                await asyncio.sleep(1.0)

    # --- the work (in a thread) ------------------------------------------------------------------
    def _apply(self, kind: str, item: Mapping[str, Any], task: Mapping[str, Any]) -> dict[str, Any] | None:
        op = task["op"]
        b = self.backend
        if kind == "snapshot":
            if op == "create":
                b.create_snapshot(item["id"], item["volume_id"])
            elif op == "delete":
                b.delete_snapshot(item["id"])
            else:
                raise PermanentError(f"unknown snapshot operation {op}")
            return None
        if kind == "backup":
            return self._backup(item, task)
        vid, size = item["id"], int(item["size"])
        if op == "create":
            source = task.get("source")
            if source == "image":
                with self._download_image(task) as path:
                    b.create_from_image(vid, size, path, task.get("image_format") or "raw")
            elif source == "snapshot":
                b.create_from_snapshot(vid, size, task["snapshot_id"])
            elif source == "volume":
                b.clone_volume(vid, size, task["source_volid"])
            elif source == "backup":
                b.create_volume(vid, size)
                self._restore(task.get("backup_data_id") or task["backup_id"], vid, task)
                b.extend_volume(vid, size)
            else:
                b.create_volume(vid, size)
            return {"connection_info": b.connection_info(vid)}
        if op == "delete":
            for sid in task.get("snapshots") or []:
                b.delete_snapshot(sid)
            b.delete_volume(vid)
            return None
        if op == "extend":  # an attached volume (3.42) grows under its guest where the back end can
            grow = getattr(b, "extend_attached_volume", None) if task.get("attached") else None
            (grow or b.extend_volume)(vid, int(task["new_size"]))
            return None
        if op == "upload":
            self._upload_image(vid, task)
            return None
        if op == "reimage":
            with self._download_image(task) as path:
                b.reimage(vid, size, path, task.get("image_format") or "raw")
            return None
        raise PermanentError(f"unknown volume operation {op}")

    # --- images ------------------------------------------------------------------------------------
    def _image_url(self, task: Mapping[str, Any]) -> str:
        url = task.get("image_url")
        if not url:
            raise PermanentError("The image service is not in the requester's catalog.")
        return str(url).rstrip("/")

    @contextlib.contextmanager
    def _download_image(self, task: Mapping[str, Any]) -> Iterator[Path]:
        url = f"{self._image_url(task)}/v2/images/{task['image_id']}/file"
        self.scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=self.scratch, prefix="image-", delete=False) as fh:
            path = Path(fh.name)
            try:
                with self._http() as c, c.stream("GET", url, headers={"X-Auth-Token": task.get("auth_token") or ""}) as r:
                    if r.status_code == 204 or r.status_code == 404:
                        raise PermanentError(f"Image {task['image_id']} has no data.")
                    if r.status_code >= 500:
                        raise TemporaryError(f"the image service answered {r.status_code}", delay=2.0)
                    if r.status_code >= 400:
                        raise PermanentError(f"Downloading image {task['image_id']} failed ({r.status_code}).")
                    for chunk in r.iter_bytes(CHUNK):
                        fh.write(chunk)
            except httpx.HTTPError as exc:
                path.unlink(missing_ok=True)
                raise TemporaryError(f"the image service is not reachable: {exc}", delay=2.0) from None
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _upload_image(self, volume_id: str, task: Mapping[str, Any]) -> None:
        fmt = task.get("disk_format") or "raw"
        url = f"{self._image_url(task)}/v2/images/{task['image_id']}/file"
        with self.backend.raw_reader(volume_id) as raw:
            converted: Path | None = None
            source = raw
            try:
                if fmt != "raw":
                    exe = shutil.which("qemu-img")
                    if exe is None:
                        raise PermanentError("qemu-img is not installed on the storage host.")
                    converted = self.scratch / f"upload-{volume_id}.{fmt}"
                    out_fmt = {"vhd": "vpc"}.get(fmt, fmt)
                    done = subprocess.run([exe, "convert", "-q", "-f", "raw", "-O", out_fmt, str(raw), str(converted)],
                                          capture_output=True, text=True, check=False, timeout=3600)
                    if done.returncode != 0:
                        raise PermanentError(f"converting the volume to {fmt} failed: {done.stderr.strip()[-300:]}")
                    source = converted

                def body() -> Iterator[bytes]:
                    with open(source, "rb") as fh:
                        while chunk := fh.read(CHUNK):
                            yield chunk

                try:
                    with self._http() as c:
                        r = c.put(url, content=body(), headers={"X-Auth-Token": task.get("auth_token") or "",
                                                               "Content-Type": "application/octet-stream"})
                except httpx.HTTPError as exc:
                    raise TemporaryError(f"the image service is not reachable: {exc}", delay=2.0) from None
                if r.status_code >= 400:
                    raise PermanentError(f"Uploading to image {task['image_id']} failed ({r.status_code}): "
                                         f"{r.text[:200]}")
            finally:
                if converted is not None:
                    converted.unlink(missing_ok=True)

    # --- backups -----------------------------------------------------------------------------------
    def _swift(self, task: Mapping[str, Any]) -> Any:
        try:
            from kumo.agents.block_storage import backup as engine
        except ImportError:  # pragma: no cover - the engine ships with kumo
            raise PermanentError("The backup engine is not installed.") from None
        url = task.get("object_store_url")
        if not url:
            raise PermanentError("Object storage is not in the requester's catalog.")
        return engine, engine.HttpSwift(str(url), str(task.get("auth_token") or ""))

    def _backup(self, item: Mapping[str, Any], task: Mapping[str, Any]) -> dict[str, Any] | None:
        op = task["op"]
        engine, swift = self._swift(task)
        container = task.get("container") or engine.DEFAULT_CONTAINER
        data_id = item.get("data_id") or item["id"]  # an imported backup record points at another's data
        with swift:
            if op == "create":
                with self.backend.raw_reader(item["volume_id"]) as raw:
                    res = engine.create_backup(raw, swift, item["id"], item["volume_id"],
                                               parent_id=task.get("parent_id"), container=container)
                return {"object_count": res.object_count, "size_gb": res.size_gb}
            if op == "restore":
                size = self.backend.volume_size_gb(task["volume_id"])
                with self.backend.raw_writer(task["volume_id"]) as target:
                    engine.restore_backup(swift, data_id, target, container=container)
                if size:
                    self.backend.extend_volume(task["volume_id"], size)  # a restore never shrinks a volume
                return None
            if op == "delete":
                engine.delete_backup(swift, data_id, container=container)
                return None
        raise PermanentError(f"unknown backup operation {op}")

    def _restore(self, backup_id: str, volume_id: str, task: Mapping[str, Any]) -> None:
        engine, swift = self._swift(task)
        with swift, self.backend.raw_writer(volume_id) as target:
            engine.restore_backup(swift, backup_id, target, container=task.get("container") or engine.DEFAULT_CONTAINER)


def make_backend(kind: str, data_dir: Path, settings: Any) -> Backend:
    """The back end named in settings (``file`` or ``lvm``)."""
    if kind == "file":
        from kumo.agents.block_storage.file import FileBackend

        return FileBackend(data_dir / "volumes", fmt=settings.file_format, capacity_gb=settings.capacity_gb)
    if kind == "lvm":
        from kumo.agents.block_storage.lvm import LvmBackend

        if not settings.lvm_volume_group:
            raise ValueError("the lvm back end needs block_storage.lvm_volume_group")
        return LvmBackend(settings.lvm_volume_group, pool=settings.lvm_thin_pool)  # type: ignore[return-value]
    raise ValueError(f"unknown volume back end {kind!r}")


def make_exporter(settings: Any) -> NbdExporter | None:
    """The NBD exporter when ``block_storage.nbd_port`` is set (multi-node attach), else None."""
    conf = settings.block_storage
    if not conf.nbd_port:
        return None
    address = conf.nbd_address or settings.node.address
    if not address:
        raise ValueError("block_storage.nbd_port needs block_storage.nbd_address or node.address")
    return NbdExporter(settings.data_dir / "volumes" / "nbd", address, conf.nbd_port)
