"""``/os-assisted-volume-snapshots`` (create, delete) and the ``volume-extended`` external event:
changes the host's agent makes to a volume attached to a server.

As Nova: the API checks and hands the work to the host; a task of the API process waits for
the agent and tells the block storage (with the caller's token, the block storage's own service
credentials): ``os-update_snapshot_status`` ``creating``/``deleting`` with progress ``90%`` when
the overlay was made/merged, ``error``/``error_deleting`` when not. Unlike Nova, which answers
at once, the request waits for that (up to ``SYNC_WAIT``): kumo's host runs one operation per
server at a time, so a detach sent right after would otherwise find the server busy.
For ``volume-extended`` it reads the volume's new size and has the agent grow the guest's disk
(an ``extend_volume`` instance action with its ``compute_extend_volume`` event).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

import anyio.from_thread
import anyio.to_thread
from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.common.context import RequestContext
from kumo.compute.api.common import mv, svc
from kumo.compute.api.volume_flows import AGENT_TIMEOUT, spawn
from kumo.compute.errors import APIError, BadRequest
from kumo.compute.service import volume_changes as changes
from kumo.compute.service.core import ComputeService
from kumo.compute.volume_client import Volumes

log = logging.getLogger("kumo.compute.volumes")
api = API()
BASE = "/v2.1/os-assisted-volume-snapshots"
GiB = 1024**3
SYNC_WAIT = 60.0  # seconds an assisted-snapshot request waits for the host before answering


@api.route(BASE, "POST")
async def create_assisted_volume_snapshot(call: Call):
    service, ctx = svc(call), call.ctx
    service.require_admin(ctx, "os_compute_api:os-assisted-volume-snapshots:create")
    volume_id, info = changes.parse_create(call.body)
    args = {"snapshot_id": info["snapshot_id"], "new_file": info["new_file"], "type": info["type"]}
    first = await anyio.to_thread.run_sync(changes.start, service, ctx, volume_id, "volume_snapshot_create", args)
    await _mostly_done(service, report_snapshot(service, ctx, first, volume_id, "volume_snapshot_create", args))
    return {"snapshot": {"id": info.get("id"), "volumeId": volume_id}}


@api.route(BASE + "/{snapshot_id}", "DELETE")
async def delete_assisted_volume_snapshot(call: Call):
    service, ctx = svc(call), call.ctx
    service.require_admin(ctx, "os_compute_api:os-assisted-volume-snapshots:delete")
    snapshot_id = call.params["snapshot_id"]
    info = changes.parse_delete(call.query, mv(call).matches("2.75"))
    args = {"snapshot_id": snapshot_id, "delete_info": info}
    first = await anyio.to_thread.run_sync(changes.start, service, ctx, info["volume_id"], "volume_snapshot_delete",
                                           args)
    await _mostly_done(service, report_snapshot(service, ctx, first, info["volume_id"], "volume_snapshot_delete", args))
    return Response(status_code=204)


async def _mostly_done(service: ComputeService, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` in the background, answering once it is done or after :data:`SYNC_WAIT`.
    The host's part is quick (an overlay, a small merge): waiting for it keeps the server free
    for the caller's next request (a detach would otherwise find it busy), while a long merge
    still finishes, and is reported, after the answer."""
    tasks: set[asyncio.Task[None]] = service.extras.setdefault("volume_tasks", set())
    task = asyncio.get_running_loop().create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    await asyncio.wait({task}, timeout=SYNC_WAIT)


async def started(service: ComputeService, ctx: RequestContext, volume_id: str, op: str, args: dict[str, Any],
                  server_id: str | None = None, first: tuple[str, int | None] | None = None) -> tuple[str, int]:
    """Start ``op`` once the server's agent is done with earlier work (Nova's queue of casts)."""
    deadline = time.monotonic() + AGENT_TIMEOUT
    while True:
        sid, seq = first or await anyio.to_thread.run_sync(changes.start, service, ctx, volume_id, op, args, server_id)
        first = None
        if seq is not None:
            return sid, seq
        if time.monotonic() > deadline:
            raise BadRequest(f"Cannot '{op}' instance {sid}: it stayed busy for {AGENT_TIMEOUT:g} s")
        await asyncio.sleep(0.2)


async def wait_outcome(service: ComputeService, server_id: str, seq: int) -> tuple[bool, str]:
    deadline = time.monotonic() + AGENT_TIMEOUT
    delay = 0.05
    while time.monotonic() < deadline:
        found = await anyio.to_thread.run_sync(changes.outcome, service, server_id, seq)
        if found is not None:
            return found
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    return False, f"the compute host did not report within {AGENT_TIMEOUT:g} s"


async def report_snapshot(service: ComputeService, ctx: RequestContext, first: tuple[str, int | None],
                          volume_id: str, op: str, args: dict[str, Any]) -> None:
    """Run the host's part of the snapshot, then tell the block storage how it went."""
    vc = Volumes(ctx, service.extras)
    snapshot_id, create = str(args["snapshot_id"]), op == "volume_snapshot_create"
    try:
        try:
            server_id, seq = await started(service, ctx, volume_id, op, args, first[0], first)
            ok, fault = await wait_outcome(service, server_id, seq)
        except APIError as exc:  # the attachment went away, or the server stayed busy
            ok, fault, server_id = False, str(exc), first[0]
        if ok:
            status: dict[str, Any] = {"status": "creating" if create else "deleting", "progress": "90%"}
        else:
            log.warning("assisted snapshot %s of server %s failed: %s", snapshot_id, server_id, fault)
            status = {"status": "error" if create else "error_deleting"}
        r = await vc.call("POST", f"/snapshots/{snapshot_id}/action", json={"os-update_snapshot_status": status})
        if r.status_code >= 400:
            log.info("block storage answered %s to the status %s of snapshot %s", r.status_code,
                     status["status"], snapshot_id)
    except Exception:
        log.exception("reporting assisted snapshot %s failed", snapshot_id)


def volumes_extended(call: Call, pairs: list[tuple[str, str]]) -> None:
    """From the (synchronous) external-events handler: grow each (server, volume) in the guest."""
    if not pairs:
        return
    service = svc(call)
    vc = Volumes(call.ctx, service.extras)
    anyio.from_thread.run_sync(spawn, service, grow_in_guests(service, call.ctx, vc, pairs))


async def grow_in_guests(service: ComputeService, ctx: RequestContext, vc: Volumes,
                         pairs: list[tuple[str, str]]) -> None:
    for server_id, volume_id in pairs:
        try:
            size = int((await vc.get_volume(volume_id))["size"]) * GiB
            await started(service, ctx, volume_id, "extend_volume", {"size": size}, server_id)
        except APIError as exc:
            log.warning("volume-extended for volume %s of server %s: %s", volume_id, server_id, exc)
        except Exception:
            log.exception("volume-extended for volume %s of server %s failed", volume_id, server_id)
