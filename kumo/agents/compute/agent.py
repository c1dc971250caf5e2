"""The compute agent: registers its host, heartbeats, and reconciles the servers placed on it.

It reaches the control plane only over HTTP (the internal agent API under
``/compute/v2.1/kumo-agent``); in all-in-one mode through an in-process ASGI
transport. Level-triggered: every pass compares what the API wants with what the
driver observes, so a lost wake-up or a restart only delays convergence.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Mapping
from typing import Any

import anyio.to_thread
import httpx

from kumo.agents.compute import hostinfo, migrate
from kumo.agents.compute.driver import (
    BlockDeviceMapping,
    Driver,
    FlavorSpec,
    ImageRef,
    PortSpec,
    PowerState,
    RescueSpec,
    VmSpec,
    VolumeSpec,
)
from kumo.agents.compute.errors import PermanentError, TemporaryError

log = logging.getLogger("kumo.agents.compute")
CONSOLE_FOLLOW = 120.0  # seconds after an operation during which a guest's console is sent every second


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
        rescue=_rescue_spec(doc.get("rescue")),
    )


def _rescue_spec(doc: Mapping[str, Any] | None) -> RescueSpec | None:
    if not doc:
        return None
    image = doc["image"]
    return RescueSpec(image=ImageRef(id=image["id"], url=image.get("url") or ""), stable=bool(doc.get("stable")),
                      device=doc.get("device") or "disk", bus=doc.get("bus") or "virtio")


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
        self._vif_deadlines: dict[str, tuple[int, float]] = {}  # server -> (build seq, monotonic deadline)
        self._last_doc: dict[str, dict[str, Any]] = {}  # the newest desired state seen per server
        self._following: dict[str, float] = {}  # server -> until when its console is sent every second
        self._caching: dict[str, asyncio.Task[None]] = {}  # image pre-cache fetches in flight (2.81)
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
                "uptime": hostinfo.uptime(),
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
        follow = asyncio.create_task(self._follow_consoles())
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
                    self._cache_images(doc.get("image_cache") or ())
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("compute agent: sync failed: %s", exc)
                    await asyncio.sleep(1.0)
                    generation = -1
        finally:
            hb.cancel()
            follow.cancel()
            for t in list(self._busy.values()):
                t.cancel()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                r = await self._post(f"/hosts/{self.host}/heartbeat", {"uptime": hostinfo.uptime()})
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

    def _cache_images(self, images: Any) -> None:
        """Images the API asked this host to pre-cache (2.81): one fetch per image at a time."""
        for image in images:
            iid = image.get("id") if isinstance(image, dict) else None
            task = self._caching.get(iid or "")
            if iid and (task is None or task.done()):
                self._caching[iid] = asyncio.create_task(self._cache_image(image))

    async def _cache_image(self, image: dict[str, Any]) -> None:
        iid = image["id"]
        ref = ImageRef(id=iid, url=image.get("url") or "", checksum=image.get("checksum"))
        fetch = getattr(self.driver, "cache_image", None)
        try:
            if fetch is None:
                body = {"status": "error", "message": f"the {self.driver.type} driver has no image cache"}
            else:
                try:
                    await anyio.to_thread.run_sync(fetch, ref)
                    body = {"status": "cached"}
                except TemporaryError as exc:  # still pending: the next sync tries again
                    log.warning("compute agent: caching image %s: %s", iid, exc)
                    await asyncio.sleep(exc.delay)
                    return
                except Exception as exc:
                    body = {"status": "error", "message": str(exc) or type(exc).__name__}
            r = await self._post(f"/hosts/{self.host}/image-cache/{iid}", body)
            if r.status_code >= 400:
                log.warning("compute agent: reporting cached image %s: %s", iid, r.status_code)
        except Exception as exc:
            log.warning("compute agent: caching image %s failed: %s", iid, exc)

    def _dispatch(self, server: dict[str, Any]) -> None:
        sid = server["id"]
        self._last_doc[sid] = server
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
            if sid in self._vif_deadlines:  # still waiting for the network: the newer state may carry the event
                done = None
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
                if not await self._network_ready(sid, pending, spec):
                    await self._refresh_console(sid)
                    return  # the guest waits paused: an event (a new document) or the deadline goes on
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
            self._last_doc.pop(sid, None)
            self._vif_deadlines.pop(sid, None)
            self._following.pop(sid, None)
        elif pending is not None:  # a guest (re)booting writes its console now: follow it closely
            self._following[sid] = time.monotonic() + CONSOLE_FOLLOW
        try:
            await self._post(f"/servers/{sid}/report", report)
            if "console" in report:
                self._console_sent[sid] = report["console"]
        except Exception as exc:
            log.warning("compute agent: report for %s failed: %s", sid, exc)

    async def _network_ready(self, sid: str, pending: Mapping[str, Any], spec: VmSpec) -> bool:
        """Nova's wait for network-vif-plugged: a new guest is created paused (vCPUs stopped) until
        the network reported each of its bound ports plugged, so it never asks for a DHCP lease
        before its MAC is known. At the deadline: a fault when fatal, else the guest runs anyway.
        After an agent restart the paused guest is found again and the wait starts over."""
        if pending.get("op") != "build" or not pending.get("vif_wait") or not getattr(self.driver, "plugs_vifs", False):
            return True
        missing = sorted(set(pending["vif_wait"]) - set(pending.get("vif_plugged") or ()))
        failed = sorted(pending.get("vif_failed") or ())
        if not missing and not failed:
            self._vif_deadlines.pop(sid, None)
            return True
        seq, timeout = int(pending["seq"]), float(pending.get("vif_timeout") or 300.0)
        entry = self._vif_deadlines.get(sid)
        if entry is None or entry[0] != seq:
            entry = self._vif_deadlines[sid] = (seq, time.monotonic() + timeout)
            asyncio.get_running_loop().call_later(timeout + 0.05, self._redispatch, sid)
        if failed or time.monotonic() >= entry[1]:
            self._vif_deadlines.pop(sid, None)
            why = (f"the network reported port(s) {', '.join(failed)} failed" if failed else
                   f"no network-vif-plugged for port(s) {', '.join(missing)} within {timeout:g} s")
            if pending.get("vif_fatal", True):
                await anyio.to_thread.run_sync(self.driver.ensure_stopped, sid)  # as Nova: the guest is destroyed
                raise PermanentError(f"Virtual Interface creation failed: {why}")
            log.warning("compute agent: %s: %s; starting the guest anyway", sid, why)
            return True
        await anyio.to_thread.run_sync(self.driver.ensure_running, dataclasses.replace(spec, start_paused=True))
        return False

    async def _follow_consoles(self) -> None:
        """Send the console of recently (re)started guests every second, not only at each resync,
        so a boot's progress (its boot marker) shows through the API within about a second."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for sid, until in list(self._following.items()):
                if until < now:
                    self._following.pop(sid, None)
                elif not (task := self._busy.get(sid)) or task.done():
                    await self._refresh_console(sid)

    def _redispatch(self, sid: str) -> None:
        doc = self._last_doc.get(sid)
        if doc is not None and not self._stop.is_set():
            self._dispatch(doc)

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
        if op == "build" and pending.get("shelved_image_url"):  # unshelved from its <name>-shelved snapshot
            from kumo.agents.compute import snapshot

            state = d.ensure_running(spec)
            snapshot.discard_shelved(self.credentials, pending["shelved_image_url"])
            return state
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
        if op == "extend_volume" or op.startswith("volume_snapshot_"):  # kumo.agents.compute.volume_changes
            from kumo.agents.compute import volume_changes

            return volume_changes.run(d, op, spec, pending)
        if op in migrate.OPS:  # a step of a cold or live migration (kumo.agents.compute.migrate)
            return migrate.run(d, op, spec, pending)
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
