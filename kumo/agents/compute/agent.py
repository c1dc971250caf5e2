"""The compute agent: registers its host, heartbeats, and reconciles the servers placed on it.

It reaches the control plane only over HTTP (the internal agent API under
``/compute/v2.1/kumo-agent``); in all-in-one mode through an in-process ASGI
transport. Level-triggered: every pass compares what the API wants with what the
driver observes, so a lost wake-up or a restart only delays convergence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Mapping
from typing import Any

import anyio.to_thread
import httpx

from kumo.agents.compute.driver import (
    BlockDeviceMapping,
    Driver,
    FlavorSpec,
    ImageRef,
    PortSpec,
    PowerState,
    VmSpec,
    VolumeSpec,
)
from kumo.agents.compute.errors import PermanentError, TemporaryError

log = logging.getLogger("kumo.agents.compute")


def to_spec(doc: Mapping[str, Any]) -> VmSpec:
    f = doc["flavor"]
    image = doc.get("image")
    return VmSpec(
        id=doc["id"],
        name=doc["name"],
        hostname=doc.get("hostname") or doc["name"],
        project_id=doc["project_id"],
        flavor=FlavorSpec(
            name=f.get("name", ""),
            vcpus=f["vcpus"],
            ram_mb=f["ram_mb"],
            disk_gb=f["disk_gb"],
            ephemeral_gb=f.get("ephemeral_gb", 0),
            swap_mb=f.get("swap_mb", 0) or 0,
            extra_specs=dict(f.get("extra_specs") or {}),
        ),
        image=ImageRef(id=image["id"], url=image.get("url") or "") if image else None,
        block_devices=tuple(
            BlockDeviceMapping(
                boot_index=b.get("boot_index"),
                source_type=b["source_type"],
                destination_type=b["destination_type"],
                uuid=b.get("uuid"),
                size_gb=b.get("volume_size"),
                device_name=b.get("device_name"),
                delete_on_termination=b.get("delete_on_termination", True),
            )
            for b in doc.get("block_devices") or []
        ),
        ports=tuple(
            PortSpec(
                id=p["id"],
                network_id=p.get("network_id", ""),
                mac_address=p.get("mac_address", ""),
                fixed_ips=tuple(p.get("fixed_ips") or ()),
            )
            for p in doc.get("ports") or []
        ),
        user_data=doc.get("user_data", "").encode() if doc.get("user_data") else None,
        metadata=dict(doc.get("metadata") or {}),
        config_drive=bool(doc.get("config_drive")),
        key_name=doc.get("key_name"),
        public_key=doc.get("public_key"),
        config_drive_doc=doc.get("config_drive_doc") or None,
        volumes=tuple(
            VolumeSpec(
                volume_id=v["volume_id"],
                attachment_id=v.get("attachment_id") or "",
                connection_info=dict(v.get("connection_info") or {}),
                device_name=v.get("device_name"),
                boot_index=v.get("boot_index"),
                read_only=bool(v.get("read_only")),
                qos=dict(v.get("qos") or {}),
            )
            for v in doc.get("volumes") or []
        ),
    )


class ComputeAgent:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        secret: str,
        driver: Driver,
        host: str = "",
        heartbeat_interval: float = 10.0,
        zone: str = "nova",
        credentials: Any = None,
    ) -> None:
        self.client = client
        self.credentials = credentials  # this host's image-service token source (snapshot uploads)
        self.base = base_url.rstrip("/") + "/kumo-agent"
        self.headers = {"X-Kumo-Agent-Secret": secret}
        self.driver = driver
        self.host = host or socket.gethostname()
        self.heartbeat_interval = heartbeat_interval
        self.zone = zone
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._queued: dict[str, dict[str, Any]] = {}  # newer desired state seen while a worker was busy
        self._console_sent: dict[str, str] = {}  # the console text last reported per server
        self._stop = asyncio.Event()

    async def _post(self, path: str, body: Any = None) -> httpx.Response:
        r = await self.client.post(self.base + path, json=body, headers=self.headers)
        if r.status_code >= 500:
            raise TemporaryError(f"control plane answered {r.status_code}", delay=1.0)
        return r

    async def register(self) -> None:
        inv = dict(self.driver.inventory())
        r = await self._post(
            "/hosts",
            {
                "host": self.host,
                "hypervisor_type": self.driver.type,
                "inventory": inv,
                "zone": self.zone,
                "hypervisor_hostname": self.host,
            },
        )
        r.raise_for_status()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.register()
                break
            except Exception as exc:  # control plane not up yet
                log.info("compute agent: registering failed (%s); retrying", exc)
                await asyncio.sleep(1.0)
        hb = asyncio.create_task(self._heartbeats())
        generation = -1
        try:
            while not self._stop.is_set():
                try:
                    r = await self.client.get(
                        f"{self.base}/hosts/{self.host}/servers",
                        params={"generation": generation, "wait": 5},
                        headers=self.headers,
                        timeout=30.0,
                    )
                    r.raise_for_status()
                    doc = r.json()
                    generation = doc["generation"]
                    for server in doc["servers"]:
                        self._dispatch(server)
                    for sid in doc.get("evacuated") or ():
                        await self._destroy_evacuated(sid)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("compute agent: sync failed: %s", exc)
                    await asyncio.sleep(1.0)
                    generation = -1
        finally:
            hb.cancel()
            for t in list(self._busy.values()):
                t.cancel()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                r = await self._post(f"/hosts/{self.host}/heartbeat")
                if r.status_code == 404:
                    await self.register()
            except Exception as exc:
                log.warning("compute agent: heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()

    async def _destroy_evacuated(self, sid: str) -> None:
        """A server evacuated to another host while this one was down: destroy the stale local copy."""
        task = self._busy.get(sid)
        if task is not None and not task.done():
            return  # the next sync retries once the worker is gone
        try:
            await anyio.to_thread.run_sync(self.driver.ensure_deleted, sid)
            r = await self._post(f"/hosts/{self.host}/evacuated/{sid}")
            if r.status_code >= 400 and r.status_code != 404:
                log.warning("compute agent: confirming cleanup of evacuated %s: %s", sid, r.status_code)
        except Exception as exc:
            log.warning("compute agent: cleaning up evacuated %s failed: %s", sid, exc)

    def _dispatch(self, server: dict[str, Any]) -> None:
        sid = server["id"]
        task = self._busy.get(sid)
        if task is not None and not task.done():
            self._queued[sid] = server  # one worker per server: run this when the current one ends
            return
        self._busy[sid] = asyncio.create_task(self._run_worker(server))

    async def _run_worker(self, server: dict[str, Any]) -> None:
        sid = server["id"]
        while True:
            await self._reconcile(server)
            done = (server.get("pending") or {}).get("seq")
            nxt = self._queued.pop(sid, None)
            if nxt is None or (done is not None and (nxt.get("pending") or {}).get("seq") == done):
                return
            server = nxt

    async def _reconcile(self, server: dict[str, Any]) -> None:
        sid = server["id"]
        pending = server.get("pending") or None
        spec = to_spec(server["spec"])
        report: dict[str, Any] = {}
        if pending and pending.get("op"):
            report["seq"] = pending["seq"]
            try:
                power = await anyio.to_thread.run_sync(self._apply, pending["op"], spec, pending)
                report.update(ok=True, power_state=int(power) if power is not None else 0)
            except TemporaryError as exc:
                await asyncio.sleep(getattr(exc, "delay", 1.0))
                return
            except PermanentError as exc:
                report.update(ok=False, fault=str(exc) or "The driver failed.")
            except Exception as exc:  # an unexpected failure is permanent for this operation
                log.exception("compute agent: %s of %s failed", pending["op"], sid)
                report.update(ok=False, fault=f"{type(exc).__name__}: {exc}")
        else:
            desired = server.get("desired")
            power = await anyio.to_thread.run_sync(self._converge, desired, spec)
            if power is None or int(power) == server.get("power_state"):
                await self._refresh_console(sid)
                return
            report["power_state"] = int(power)
        if pending is None or pending.get("op") != "delete":
            with contextlib.suppress(Exception):
                report["console"] = await anyio.to_thread.run_sync(self.driver.console_output, sid, 200)
        if pending is not None and pending.get("op") == "delete":
            self._console_sent.pop(sid, None)
        try:
            await self._post(f"/servers/{sid}/report", report)
            if "console" in report:
                self._console_sent[sid] = report["console"]
        except Exception as exc:
            log.warning("compute agent: report for %s failed: %s", sid, exc)

    async def _refresh_console(self, sid: str) -> None:
        """A real guest keeps writing to its console: send the text again when it changed."""
        try:
            text = await anyio.to_thread.run_sync(self.driver.console_output, sid, 200)
        except Exception:
            return
        if not text or self._console_sent.get(sid) == text:
            return
        with contextlib.suppress(Exception):
            r = await self._post(f"/servers/{sid}/report", {"console": text})
            if r.status_code < 400:
                self._console_sent[sid] = text

    def _apply(self, op: str, spec: VmSpec, pending: Mapping[str, Any]) -> PowerState | None:
        d = self.driver
        if op in ("build", "start", "unpause", "resume", "rescue", "unrescue"):
            return d.ensure_running(spec)
        if op in ("reboot", "reboot_hard"):
            return d.reboot(spec, hard=op == "reboot_hard")
        if op == "stop":
            return d.ensure_stopped(spec.id)
        if op == "pause":
            return d.ensure_paused(spec.id)
        if op == "suspend":
            return d.ensure_suspended(spec.id)
        if op == "rebuild":
            state = d.rebuild(spec)
            return d.ensure_stopped(spec.id) if pending.get("from") == "stopped" else state
        if op in ("resize", "revert_resize"):
            if pending.get("from") == "stopped" or d.observe(spec.id) == PowerState.SHUTDOWN:
                d.ensure_stopped(spec.id)
                return PowerState.SHUTDOWN  # a stopped server stays stopped through resize/revert
            return d.ensure_running(spec)
        if op == "shelve" and pending.get("image_url"):  # snapshot into <name>-shelved, then offload
            from kumo.agents.compute import snapshot

            snapshot.run(d, self.credentials, spec.id, pending, getattr(d, "root", None))
        if op in ("delete", "shelve"):
            d.ensure_deleted(spec.id)
            if pending.get("snapshot_image_url"):  # deleted while a snapshot was queued or running
                from kumo.agents.compute import snapshot

                snapshot.discard_unfinished(self.credentials, pending["snapshot_image_url"])
            return PowerState.NOSTATE
        if op == "snapshot":
            from kumo.agents.compute import snapshot

            snapshot.run(d, self.credentials, spec.id, pending, getattr(d, "root", None))
            return d.observe(spec.id)
        if op in ("attach_volume", "detach_volume"):
            # hot-plug into a running or paused VM; a stopped one gets spec.volumes at its next start
            power = d.observe(spec.id)
            if power in (PowerState.RUNNING, PowerState.PAUSED):
                if op == "detach_volume":
                    d.detach_volume(spec.id, pending["volume_id"])
                else:
                    volume = next((v for v in spec.volumes if v.volume_id == pending["volume_id"]), None)
                    if volume is None:
                        raise PermanentError(f"volume {pending['volume_id']} is not in the server's spec")
                    d.attach_volume(spec.id, volume)
            return power
        raise PermanentError(f"unknown operation {op}")

    def _converge(self, desired: str | None, spec: VmSpec) -> PowerState | None:
        """Resync: make the driver match the settled state (after a restart the fake driver is empty)."""
        d = self.driver
        current = d.observe(spec.id)
        if desired == "running" and current != PowerState.RUNNING:
            return d.ensure_running(spec)
        if desired == "stopped":
            return (
                d.ensure_stopped(spec.id)
                if current not in (PowerState.SHUTDOWN, PowerState.NOSTATE)
                else None
            )
        if desired == "paused" and current != PowerState.PAUSED:
            d.ensure_running(spec)
            return d.ensure_paused(spec.id)
        if desired == "suspended" and current != PowerState.SUSPENDED:
            d.ensure_running(spec)
            return d.ensure_suspended(spec.id)
        return current if desired is not None else None
