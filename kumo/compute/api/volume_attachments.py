"""``/servers/{id}/os-volume_attachments``: list, show, attach, detach."""

from __future__ import annotations

import time

import anyio
import anyio.to_thread
from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api import volume_multiattach, volume_swap
from kumo.compute.api.common import mv, svc
from kumo.compute.api.volume_flows import finish_attach, finish_detach, repair, spawn
from kumo.compute.errors import BadRequest
from kumo.compute.service import servers
from kumo.compute.service import volumes as vols
from kumo.compute.volume_client import Volumes, connector

api = API()
BASE = "/v2.1/servers/{server_id}/os-volume_attachments"
# Volume work the server's agent does without a task state (Nova runs it under the instance lock,
# one after another): an attach or detach that finds one in flight waits for it instead of a 409.
VOLUME_OPS = ("attach_volume", "detach_volume", "extend_volume", "volume_snapshot_create", "volume_snapshot_delete")
QUEUE_WAIT = 30.0


async def after_volume_work(call: Call, sid: str) -> None:
    deadline = time.monotonic() + QUEUE_WAIT
    while time.monotonic() < deadline:
        server = await anyio.to_thread.run_sync(servers.get_server, svc(call), call.ctx, sid)
        if server.task_state is not None or (server.pending or {}).get("op") not in VOLUME_OPS:
            return
        await anyio.sleep(0.2)


def _int(call: Call, name: str) -> int | None:
    raw = call.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {raw}.") from None
    if value < 0:
        raise BadRequest(f"Invalid input for field/attribute {name}. Value: {raw}.")
    return value


@api.route(BASE, "GET")
async def list_volume_attachments(call: Call):
    service = svc(call)
    sid = call.params["server_id"]
    await anyio.to_thread.run_sync(servers.get_server, service, call.ctx, sid)
    await repair(service, Volumes(call.ctx, service.extras), sid)
    rows = await anyio.to_thread.run_sync(vols.list_attachments, service, sid)
    offset = _int(call, "offset") or 0
    limit = _int(call, "limit")
    rows = rows[offset:] if limit is None else rows[offset : offset + limit]
    return {"volumeAttachments": [vols.render(r, mv(call), shown=True) for r in rows]}


@api.route(BASE + "/{volume_id}", "GET")
def show_volume_attachment(call: Call):
    service = svc(call)
    servers.get_server(service, call.ctx, call.params["server_id"])
    row = vols.get_attachment(service, call.params["server_id"], call.params["volume_id"])
    return {"volumeAttachment": vols.render(row, mv(call), shown=True)}


@api.route(BASE + "/{volume_id}", "PUT")
async def update_volume_attachment(call: Call):
    """Swap to another volume (Cinder's callback: see volume_swap), or from 2.85 change
    ``delete_on_termination`` (then swap if ``volumeId`` differs, as Nova)."""
    service, version = svc(call), mv(call)
    sid, volume_id = call.params["server_id"], call.params["volume_id"]
    data = vols.parse_update(call.body, version)
    only_swap = not version.matches("2.85")
    if only_swap or data["volumeId"] != volume_id:
        service.require_admin(call.ctx, "os_compute_api:os-volumes-attachments:swap")
        await anyio.to_thread.run_sync(servers.get_server, service, call.ctx, sid)
        if not only_swap:
            await anyio.to_thread.run_sync(vols.update_attachment, service, call.ctx, sid, volume_id, data)
        await volume_swap.swap(Volumes(call.ctx, service.extras), volume_id, data["volumeId"])
    else:
        await anyio.to_thread.run_sync(vols.update_attachment, service, call.ctx, sid, volume_id, data)
    return Response(status_code=202)


@api.route(BASE, "POST")
async def attach_volume(call: Call):
    service, ctx, version = svc(call), call.ctx, mv(call)
    sid = call.params["server_id"]
    req = vols.parse_attach(call.body, version)
    await after_volume_work(call, sid)
    server = await anyio.to_thread.run_sync(vols.server_for_attach, service, ctx, sid, "attach_volume")
    vc = Volumes(ctx, service.extras)
    await repair(service, vc, sid)
    volume = await vc.get_volume(req["volume_id"])  # 404 for a volume the caller cannot see
    volume_multiattach.check(volume, version, server.vm_state)
    if any(
        r.volume_id == req["volume_id"]
        for r in await anyio.to_thread.run_sync(vols.list_attachments, service, sid)
    ):
        raise BadRequest(f"Invalid volume: volume {req['volume_id']} already attached")
    att = await vc.attachment_create(req["volume_id"], sid)  # reserves the volume (400 if in use)
    try:
        row = await anyio.to_thread.run_sync(vols.reserve, service, ctx, sid, req, att["id"])
    except Exception:
        await vc.attachment_delete(att["id"])
        raise
    try:
        upd = await vc.attachment_update(att["id"], connector(server.host, row.device))
        agent = await anyio.to_thread.run_sync(
            vols.start_attach, service, row.id, upd.get("connection_info") or {}
        )
    except Exception:
        await vc.attachment_delete(att["id"])
        await anyio.to_thread.run_sync(vols.forget, service, row.id)
        raise
    if agent:
        spawn(service, finish_attach(service, vc, row.id, att["id"]))
    else:
        await vc.attachment_complete(att["id"])
    return {"volumeAttachment": vols.render(row, version)}


@api.route(BASE + "/{volume_id}", "DELETE")
async def detach_volume(call: Call):
    service, ctx = svc(call), call.ctx
    sid, volume_id = call.params["server_id"], call.params["volume_id"]
    vc = Volumes(ctx, service.extras)
    await anyio.to_thread.run_sync(servers.get_server, service, ctx, sid, True)
    await after_volume_work(call, sid)
    await repair(service, vc, sid)
    row = await anyio.to_thread.run_sync(vols.check_detach, service, ctx, sid, volume_id)
    await vc.action(volume_id, "os-begin_detaching")
    try:
        row, agent = await anyio.to_thread.run_sync(vols.start_detach, service, ctx, sid, volume_id)
    except Exception:
        await vc.action(volume_id, "os-roll_detaching")
        raise
    if agent:
        spawn(service, finish_detach(service, vc, row.id))
    else:
        if row.attachment_id:
            await vc.attachment_delete(row.attachment_id)
        await anyio.to_thread.run_sync(vols.forget, service, row.id)
    return Response(status_code=202)
