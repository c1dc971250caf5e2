"""The asynchronous halves of volume operations, run after the API call has answered.

Like nova-compute, they finish the block-storage side once the agent has acted: complete the
Cinder attachment after the hot-plug, delete it after the unplug (or roll back), prepare the
volumes of a server booting from volume, and release a deleted server's volumes. They run as
tasks of the API process with the caller's token, polling the database for the agent's report.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Coroutine
from typing import Any

import anyio.to_thread

from kumo.common.microversion import APIVersion
from kumo.compute.api import volume_multiattach
from kumo.compute.errors import APIError, BadRequest
from kumo.compute.models import Server
from kumo.compute.service import servers
from kumo.compute.service import volumes as vols
from kumo.compute.service.core import ComputeService
from kumo.compute.volume_client import Volumes, connector

log = logging.getLogger("kumo.compute.volumes")
AGENT_TIMEOUT = 600.0  # a hot-plug the agent has not reported after this long is left alone


def spawn(service: ComputeService, coro: Coroutine[Any, Any, None]) -> None:
    tasks: set[asyncio.Task[None]] = service.extras.setdefault("volume_tasks", set())
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _wait_row(service: ComputeService, row_id: int, transient: str) -> str | None:
    deadline = time.monotonic() + AGENT_TIMEOUT
    delay = 0.05
    while time.monotonic() < deadline:
        status = await anyio.to_thread.run_sync(vols.row_status, service, row_id)
        if status != transient:
            return status
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    return transient


def _busy(service: ComputeService) -> set[int]:
    """Rows a task of this process is finishing (repair leaves them alone)."""
    return service.extras.setdefault("volume_rows_busy", set())


async def finish_attach(service: ComputeService, vc: Volumes, row_id: int, attachment_id: str) -> None:
    _busy(service).add(row_id)
    try:
        if await _wait_row(service, row_id, "attaching") in vols.UNFINISHED:
            row = await anyio.to_thread.run_sync(vols.row, service, row_id)
            if row is not None:
                await _finish(service, vc, row)
    except Exception:
        log.exception("finishing the attachment %s failed", attachment_id)
    finally:
        _busy(service).discard(row_id)


async def finish_detach(service: ComputeService, vc: Volumes, row_id: int) -> None:
    _busy(service).add(row_id)
    try:
        if await _wait_row(service, row_id, "detaching") in vols.UNFINISHED:
            row = await anyio.to_thread.run_sync(vols.row, service, row_id)
            if row is not None:
                await _finish(service, vc, row)
    except Exception:
        log.exception("finishing the detach of mapping %s failed", row_id)
    finally:
        _busy(service).discard(row_id)


async def _finish(service: ComputeService, vc: Volumes, row: Any) -> None:
    """Bring Cinder in line with what the agent did to this mapping."""
    if row.status == "plugged":  # hot-plugged: complete the attachment -> in-use
        await vc.attachment_complete(row.attachment_id)
        await anyio.to_thread.run_sync(vols.set_status, service, row.id, "attached", "plugged")
    elif row.status in ("detached", "error"):  # unplugged, or the plug failed -> available
        if row.attachment_id:
            await vc.attachment_delete(row.attachment_id)
        await anyio.to_thread.run_sync(vols.forget, service, row.id)
    elif row.status == "detach_failed":  # the volume stays in-use
        await vc.action(row.volume_id, "os-roll_detaching")
        await anyio.to_thread.run_sync(vols.set_status, service, row.id, "attached", "detach_failed")


async def repair(service: ComputeService, vc: Volumes, server_id: str) -> None:
    """Finish what a lost task left undone (the API process restarted while an agent worked):
    run before the server's attachments are listed, attached or detached."""
    rows = await anyio.to_thread.run_sync(vols.all_attachments, service, server_id)
    for row in rows:
        if row.status in vols.UNFINISHED and row.id not in _busy(service):
            try:
                await _finish(service, vc, row)
            except Exception as exc:
                log.warning("repairing volume mapping %s of server %s failed: %s", row.id, server_id, exc)


# -- boot from volume -------------------------------------------------------------------------


async def check_bdms(
    vc: Volumes, bdms: list[dict[str, Any]], count: int = 1, version: APIVersion | None = None
) -> None:
    """Validate volume mappings before the server is recorded (400 as Nova does); ``version``
    (the request's microversion) gates multiattach volumes (2.60)."""
    wanted = [b for b in bdms if b["destination_type"] == "volume"]
    if not wanted:
        return
    if count > 1 and any(b["source_type"] == "volume" for b in wanted):
        raise BadRequest("Block Device Mapping is Invalid: cannot attach one volume to multiple instances.")
    if not vc.available:
        raise BadRequest(
            "Volume block device mappings need the block storage service, which is not available."
        )
    for b in wanted:
        if b["source_type"] != "volume":
            continue
        try:
            vol = await vc.get_volume(b["uuid"])
        except APIError:
            raise BadRequest(f"Block Device Mapping is Invalid: failed to get volume {b['uuid']}.") from None
        if version is not None:
            volume_multiattach.check(vol, version)
        if vol.get("status") != "available" and not (
            vol.get("multiattach") and vol.get("status") == "in-use"
        ):
            raise BadRequest(
                f"Invalid volume: volume {b['uuid']} status must be 'available', not {vol.get('status')}"
            )
        if b.get("boot_index") == 0 and str(vol.get("bootable", "true")).lower() != "true":
            raise BadRequest(f"Block Device {b['uuid']} is not bootable.")


async def _volume_for(vc: Volumes, server: Server, b: dict[str, Any], index: int) -> tuple[str, bool]:
    """The volume a mapping uses, created when needed; returns (volume id, created by us)."""
    src = b["source_type"]
    if src == "volume":
        return b["uuid"], False
    body: dict[str, Any] = {"name": f"{server.name}-vol-{index}" if index else f"{server.name}-root"}
    if b.get("volume_size"):
        body["size"] = int(b["volume_size"])
    if src == "image":
        body["imageRef"] = b["uuid"]
    elif src == "snapshot":
        body["snapshot_id"] = b["uuid"]
    if server.availability_zone:
        body["availability_zone"] = server.availability_zone
    vol = await vc.create_volume(body)
    return vol["id"], True


async def prepare_and_build(
    service: ComputeService, vc: Volumes, server_id: str, ports: list[dict[str, Any]]
) -> None:
    """Create / attach the server's volumes (task_state block_device_mapping), then build."""
    created: list[str] = []
    try:
        server = await anyio.to_thread.run_sync(vols.server_row, service, server_id)
        bdms = [b for b in server.block_devices or [] if b["destination_type"] == "volume"]
        for i, b in enumerate(bdms):
            volume_id, made = await _volume_for(vc, server, b, i)
            if made:
                created.append(volume_id)
            if made or not await volume_multiattach.attached_elsewhere(vc, volume_id):
                await vc.wait_for_volume(volume_id, "available")
            att = await vc.attachment_create(volume_id, server_id)
            device = b.get("device_name")
            upd = await vc.attachment_update(att["id"], connector(server.host, device))
            await vc.attachment_complete(att["id"])
            record = functools.partial(
                vols.record_boot_volume,
                service,
                server_id,
                volume_id,
                att["id"],
                upd.get("connection_info") or {},
                b.get("boot_index"),
                bool(b.get("delete_on_termination")),
                device,
            )
            await anyio.to_thread.run_sync(record)
            if made:
                created.remove(volume_id)  # from now on the mapping owns it (delete_on_termination)
        await anyio.to_thread.run_sync(servers.start_build, service, server_id, ports)
    except Exception as exc:
        message = exc.message if isinstance(exc, APIError) else str(exc)
        log.warning("block device mapping of server %s failed: %s", server_id, message)
        await anyio.to_thread.run_sync(
            servers.fail_build, service, server_id, f"Build of instance {server_id} aborted: {message}"
        )
        for volume_id in created:
            with contextlib.suppress(Exception):  # the volume stays for the user to delete
                await vc.delete_volume(volume_id)


# -- server delete ----------------------------------------------------------------------------


async def release_volumes(service: ComputeService, vc: Volumes, server_id: str) -> None:
    """Once the VM is gone: delete its Cinder attachments, then delete_on_termination volumes;
    then the server's delete ends (Nova releases the volumes before the instance is destroyed, so
    a client that saw the server vanish can delete its volumes at once)."""
    try:
        rows = await anyio.to_thread.run_sync(vols.all_attachments, service, server_id)
        if not rows:
            return
        deadline = time.monotonic() + AGENT_TIMEOUT
        delay = 0.05
        while time.monotonic() < deadline:  # the VM must be gone before its disks are released
            if await anyio.to_thread.run_sync(vols.vm_gone, service, server_id):
                break
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        for row in rows:
            try:
                if row.attachment_id:
                    await vc.attachment_delete(row.attachment_id)
                if row.delete_on_termination:
                    await vc.delete_volume(row.volume_id)
            except Exception as exc:
                log.warning("releasing volume %s of server %s failed: %s", row.volume_id, server_id, exc)
            await anyio.to_thread.run_sync(vols.forget, service, row.id)
    except Exception:
        log.exception("releasing the volumes of server %s failed", server_id)
    finally:
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(vols.finish_release, service, server_id)


# -- rebuild of a volume-backed server (2.93) -------------------------------------------------

REIMAGE_VERSION = {"OpenStack-API-Version": "volume 3.68"}


async def reimage_and_rebuild(service: ComputeService, vc: Volumes, server_id: str, seq: int) -> None:
    """Re-image the root volume of a held rebuild (see kumo.compute.service.reimage), then let the
    agent restart the VM on it. The volume's status is polled instead of Nova's external event."""
    from kumo.compute.service import reimage

    try:
        pending = await anyio.to_thread.run_sync(reimage.state, service, server_id)
        if pending is None or pending.get("seq") != seq:
            return
        if pending.get("from") != "stopped":  # the VM is stopped before its disk is rewritten
            # an ERROR server may have no VM at all, and the agent reports nothing for a VM that is
            # already down: it gets a short wait; an ACTIVE one must be seen stopping
            errored = pending.get("from") == "error"
            deadline = time.monotonic() + (15.0 if errored else AGENT_TIMEOUT)
            delay = 0.05
            while not (pending or {}).get("vm_stopped"):
                if pending is None or pending.get("seq") != seq:
                    return
                if time.monotonic() > deadline:
                    if errored:
                        break
                    raise BadRequest("The compute agent did not stop the server in time.")
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 1.0)
                pending = await anyio.to_thread.run_sync(reimage.state, service, server_id)
        row = await anyio.to_thread.run_sync(reimage.root_mapping, service, server_id)
        if row is None:
            raise BadRequest("The server has no root volume.")
        server = await anyio.to_thread.run_sync(vols.server_row, service, server_id)
        image_id = (pending.get("reimage") or {}).get("image_id")
        # as Nova: a new (reserved) attachment replaces the old one, then Cinder re-images the volume
        att = await vc.attachment_create(row.volume_id, server_id)
        if row.attachment_id:
            await vc.attachment_delete(row.attachment_id)
        await anyio.to_thread.run_sync(reimage.swap_attachment, service, row.id, att["id"], {})
        r = await vc.call("POST", f"/volumes/{row.volume_id}/action", headers=REIMAGE_VERSION,
                          json={"os-reimage": {"image_id": image_id, "reimage_reserved": True}})
        await vc.check(r, 202)
        await vc.wait_for_volume(row.volume_id, "reserved", timeout=AGENT_TIMEOUT)
        upd = await vc.attachment_update(att["id"], connector(server.host, row.device or "/dev/vda"))
        await vc.attachment_complete(att["id"])
        await anyio.to_thread.run_sync(reimage.swap_attachment, service, row.id, att["id"],
                                       upd.get("connection_info") or {})
        await anyio.to_thread.run_sync(reimage.release, service, server_id, seq)
    except Exception as exc:
        message = exc.message if isinstance(exc, APIError) else str(exc)
        log.warning("re-imaging the root volume of server %s failed: %s", server_id, message)
        await anyio.to_thread.run_sync(
            reimage.fail, service, server_id, seq, f"Rebuild of instance {server_id} failed: {message}"
        )
