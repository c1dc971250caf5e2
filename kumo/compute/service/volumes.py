"""Volume attachments of servers (block-device mappings to Cinder volumes): the database side.

The HTTP side (kumo/compute/api/volume_attachments.py) talks to the block-storage API; this
module validates, records the mapping, and hands attach/detach to the compute agent through
``Server.pending`` ({"op": "attach_volume" | "detach_volume", "volume_id": ...}).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from kumo.common.context import RequestContext
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.models import Server, VolumeAttachment
from kumo.compute.service import validate as v
from kumo.compute.service.core import ComputeService, new_uuid, now
from kumo.compute.service.servers import check_lock, get_server, is_uuid, new_action
from kumo.compute.service.states import ACTIVE, PAUSED, RESIZED, SHELVED_OFFLOADED, STOPPED

# vm_states in which Nova attaches and detaches volumes (task_state must be None)
ATTACH_STATES = (ACTIVE, PAUSED, STOPPED, RESIZED, "soft-delete", "shelved", SHELVED_OFFLOADED)
VOLUME_OPS = ("attach_volume", "detach_volume")
# rows shown by the API; "plugged": the agent attached it, Cinder's attachment is not completed yet;
# "detach_failed": the unplug failed, Cinder's detaching is not rolled back yet
LIVE = ("attaching", "plugged", "attached", "detaching", "detach_failed")
# rows whose block-storage side is still to be finished (kumo.compute.api.volume_flows.repair)
UNFINISHED = ("plugged", "detached", "error", "detach_failed")
_DEVICE = re.compile(r"^/dev/x{0,1}[a-z]{0,1}d{0,1}[a-z]+[0-9]*$")


def parse_attach(body: Any, mv: Any) -> dict[str, Any]:
    data = v.body_key(body, "volumeAttachment")
    allowed = {"volumeId", "device"}
    if mv.matches("2.49"):
        allowed.add("tag")
    if mv.matches("2.79"):
        allowed.add("delete_on_termination")
    v.only_keys(data, allowed)
    vid = data.get("volumeId")
    if vid is None:
        raise BadRequest(
            "Invalid input for field/attribute volumeAttachment. 'volumeId' is a required property"
        )
    if not is_uuid(vid):
        raise BadRequest(f"Invalid input for field/attribute volumeId. Value: {vid}. '{vid}' is not a 'uuid'")
    device = data.get("device")
    if device is not None and (not isinstance(device, str) or not _DEVICE.match(device)):
        raise BadRequest(f"Invalid input for field/attribute device. Value: {device}.")
    tag = data.get("tag")
    if tag is not None and (not isinstance(tag, str) or not 1 <= len(tag) <= 60 or "/" in tag or "," in tag):
        raise BadRequest(f"Invalid input for field/attribute tag. Value: {tag}.")
    dot = v.boolean(data.get("delete_on_termination", False), "delete_on_termination")
    return {"volume_id": vid, "device": device, "tag": tag, "delete_on_termination": dot}


def check_state(server: Server, action: str) -> None:
    if server.vm_state not in ATTACH_STATES:
        raise Conflict(f"Cannot '{action}' instance {server.id} while it is in vm_state {server.vm_state}")
    if server.task_state is not None or server.pending is not None:
        raise Conflict(
            f"Cannot '{action}' instance {server.id} while it is in task_state {server.task_state or 'busy'}"
        )


def server_for_attach(svc: ComputeService, ctx: RequestContext, server_id: str, action: str) -> Server:
    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    check_state(server, action)
    return server


def list_attachments(svc: ComputeService, server_id: str) -> list[VolumeAttachment]:
    with svc.db.reader() as s:
        return list(
            s.execute(
                select(VolumeAttachment)
                .where(VolumeAttachment.server_id == server_id, VolumeAttachment.status.in_(LIVE))
                .order_by(VolumeAttachment.id)
            ).scalars()
        )


def all_attachments(svc: ComputeService, server_id: str) -> list[VolumeAttachment]:
    with svc.db.reader() as s:
        return list(
            s.execute(
                select(VolumeAttachment)
                .where(VolumeAttachment.server_id == server_id)
                .order_by(VolumeAttachment.id)
            ).scalars()
        )


def attached_map(svc: ComputeService, server_ids: list[str]) -> dict[str, list[VolumeAttachment]]:
    out: dict[str, list[VolumeAttachment]] = {sid: [] for sid in server_ids}
    if not server_ids:
        return out
    with svc.db.reader() as s:
        rows = s.execute(
            select(VolumeAttachment)
            .where(VolumeAttachment.server_id.in_(server_ids), VolumeAttachment.status.in_(LIVE))
            .order_by(VolumeAttachment.id)
        ).scalars()
        for r in rows:
            out.setdefault(r.server_id, []).append(r)
    return out


def get_attachment(svc: ComputeService, server_id: str, volume_id: str) -> VolumeAttachment:
    for row in list_attachments(svc, server_id):
        if row.volume_id == volume_id:
            return row
    raise NotFound(f"volume_id not found: {volume_id}")


def next_device(used: list[str | None]) -> str:
    taken = {d.rsplit("/", 1)[-1] for d in used if d}
    taken.add("vda")  # the root disk
    for c in "bcdefghijklmnopqrstuvwxyz":
        if f"vd{c}" not in taken:
            return f"/dev/vd{c}"
    for c1 in "abcdefghijklmnopqrstuvwxyz":
        for c2 in "abcdefghijklmnopqrstuvwxyz":
            if f"vd{c1}{c2}" not in taken:
                return f"/dev/vd{c1}{c2}"
    raise BadRequest("No free disk device names for this server.")


def reserve(
    svc: ComputeService, ctx: RequestContext, server_id: str, req: dict[str, Any], attachment_id: str
) -> VolumeAttachment:
    """Record the mapping (status attaching) once Cinder reserved the volume; picks the device."""
    ts = now()
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        check_state(server, "attach_volume")
        rows = list(
            s.execute(
                select(VolumeAttachment).where(
                    VolumeAttachment.server_id == server_id, VolumeAttachment.status.in_(LIVE)
                )
            ).scalars()
        )
        if any(r.volume_id == req["volume_id"] for r in rows):
            raise BadRequest(f"Invalid volume: volume {req['volume_id']} already attached")
        device = req.get("device")
        if device and any(r.device == device for r in rows):
            device = None  # as libvirt: a taken name is not honoured, the next free one is used
        row = VolumeAttachment(
            uuid=new_uuid(),
            server_id=server_id,
            volume_id=req["volume_id"],
            attachment_id=attachment_id,
            device=device or next_device([r.device for r in rows]),
            tag=req.get("tag"),
            delete_on_termination=bool(req.get("delete_on_termination")),
            boot_index=req.get("boot_index"),
            status="attaching",
            connection_info={},
            created_at=ts,
            updated_at=ts,
        )
        s.add(row)
        if req.get("boot_index") is None:
            s.add(new_action(ctx, server_id, "attach_volume", ts))
        s.flush()
        return row


def start_attach(svc: ComputeService, row_id: int, connection_info: dict[str, Any]) -> bool:
    """Store the connection and hand the hot-plug to the agent; False when no agent is needed
    (the server has no host: shelved offloaded — the volume is connected at unshelve)."""
    with svc.db.session() as s:
        row = s.get(VolumeAttachment, row_id)
        if row is None:
            return False
        row.connection_info = connection_info or {}
        row.updated_at = now()
        server = s.get(Server, row.server_id)
        if server is None or server.deleted or not server.host or server.vm_state == SHELVED_OFFLOADED:
            row.status = "attached"
            return False
        if server.pending is not None:
            raise Conflict(f"Cannot 'attach_volume' instance {server.id} while it is in task_state busy")
        server.op_seq += 1
        server.pending = {"op": "attach_volume", "seq": server.op_seq, "volume_id": row.volume_id}
        server.updated_at = now()
    svc.notifier.bump()
    return True


def start_detach(
    svc: ComputeService, ctx: RequestContext, server_id: str, volume_id: str
) -> tuple[VolumeAttachment, bool]:
    """Mark the mapping detaching; returns it and whether the agent has to act."""
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        check_state(server, "detach_volume")
        row = s.execute(
            select(VolumeAttachment).where(
                VolumeAttachment.server_id == server_id,
                VolumeAttachment.volume_id == volume_id,
                VolumeAttachment.status.in_(LIVE),
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"volume_id not found: {volume_id}")
        if row.status != "attached":
            raise BadRequest(f"Invalid volume: volume {volume_id} is {row.status}")
        row.status = "detaching"
        row.updated_at = now()
        s.add(new_action(ctx, server_id, "detach_volume"))
        agent = bool(server.host) and server.vm_state != SHELVED_OFFLOADED
        if agent:
            server.op_seq += 1
            server.pending = {"op": "detach_volume", "seq": server.op_seq, "volume_id": volume_id}
            server.updated_at = now()
        else:
            row.status = "detached"
        s.flush()
    if agent:
        svc.notifier.bump()
    return row, agent


def check_detach(
    svc: ComputeService, ctx: RequestContext, server_id: str, volume_id: str
) -> VolumeAttachment:
    server_for_attach(svc, ctx, server_id, "detach_volume")
    row = get_attachment(svc, server_id, volume_id)
    if row.boot_index == 0:
        raise BadRequest("Cannot detach a root device volume")
    return row


def finish_op(s: Any, server: Server, pending: dict[str, Any], ok: bool) -> None:
    """The agent reported an attach/detach (called from the agent report, in its session)."""
    row = s.execute(
        select(VolumeAttachment).where(
            VolumeAttachment.server_id == server.id,
            VolumeAttachment.volume_id == pending.get("volume_id"),
            VolumeAttachment.status.in_(("attaching", "detaching")),
        )
    ).scalar_one_or_none()
    if row is not None:
        if pending["op"] == "attach_volume":
            row.status = "plugged" if ok else "error"
        else:
            row.status = "detached" if ok else "detach_failed"
        row.updated_at = now()
    server.pending = None
    server.task_state = None
    server.updated_at = now()


def row_status(svc: ComputeService, row_id: int) -> str | None:
    with svc.db.reader() as s:
        row = s.get(VolumeAttachment, row_id)
        return row.status if row is not None else None


def server_pending(svc: ComputeService, server_id: str) -> dict[str, Any] | None:
    with svc.db.reader() as s:
        server = s.get(Server, server_id)
        return server.pending if server is not None and not server.deleted else None


def set_status(svc: ComputeService, row_id: int, status: str, only_from: str | None = None) -> None:
    with svc.db.session() as s:
        row = s.get(VolumeAttachment, row_id)
        if row is not None and (only_from is None or row.status == only_from):
            row.status, row.updated_at = status, now()


def forget(svc: ComputeService, row_id: int) -> None:
    with svc.db.session() as s:
        row = s.get(VolumeAttachment, row_id)
        if row is not None:
            s.delete(row)


def record_boot_volume(
    svc: ComputeService,
    server_id: str,
    volume_id: str,
    attachment_id: str,
    connection_info: dict[str, Any],
    boot_index: int | None,
    delete_on_termination: bool,
    device: str | None,
) -> None:
    """A volume mapped at build time (already complete in Cinder)."""
    ts = now()
    with svc.db.session() as s:
        used = [
            r.device
            for r in s.execute(
                select(VolumeAttachment).where(VolumeAttachment.server_id == server_id)
            ).scalars()
        ]
        if boot_index == 0:
            device = "/dev/vda"
        s.add(
            VolumeAttachment(
                uuid=new_uuid(),
                server_id=server_id,
                volume_id=volume_id,
                attachment_id=attachment_id,
                device=device if device and device not in used else next_device(used),
                tag=None,
                delete_on_termination=delete_on_termination,
                boot_index=boot_index,
                status="attached",
                connection_info=connection_info or {},
                created_at=ts,
                updated_at=ts,
            )
        )


def set_task(svc: ComputeService, server_id: str, task_state: str) -> None:
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is not None and not server.deleted:
            server.task_state, server.updated_at = task_state, now()


def spec_volume_map(svc: ComputeService, server_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The agent's view per server: volumes the VM should have (attaching ones included)."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not server_ids:
        return out
    with svc.db.reader() as s:
        rows = s.execute(
            select(VolumeAttachment)
            .where(
                VolumeAttachment.server_id.in_(server_ids),
                VolumeAttachment.status.in_(("attaching", "plugged", "attached")),
            )
            .order_by(VolumeAttachment.id)
        ).scalars()
        for r in rows:
            out.setdefault(r.server_id, []).append(
                {
                    "volume_id": r.volume_id,
                    "attachment_id": r.attachment_id or "",
                    "connection_info": r.connection_info or {},
                    "device_name": r.device,
                    "boot_index": r.boot_index,
                    "read_only": ((r.connection_info or {}).get("data") or {}).get("access_mode") == "ro",
                    # the volume type's front-end QoS specs, applied by the driver as I/O throttling
                    "qos": ((r.connection_info or {}).get("data") or {}).get("qos_specs") or {},
                }
            )
    return out


def render(row: VolumeAttachment, mv: Any, shown: bool = False) -> dict[str, Any]:
    """One attachment; ``shown`` for GET list/show, where 2.89 drops ``id`` and adds
    ``attachment_id`` (the block storage attachment) and ``bdm_uuid``."""
    body: dict[str, Any] = {
        "id": row.volume_id,
        "serverId": row.server_id,
        "volumeId": row.volume_id,
        "device": row.device,
    }
    if mv.matches("2.70"):
        body["tag"] = row.tag
    if mv.matches("2.79"):
        body["delete_on_termination"] = bool(row.delete_on_termination)
    if shown and mv.matches("2.89"):
        del body["id"]
        body["attachment_id"] = row.attachment_id
        body["bdm_uuid"] = row.uuid
    return body


def parse_update(body: Any, mv: Any) -> dict[str, Any]:
    """``PUT .../os-volume_attachments/{volume_id}``: swap (``volumeId`` differs) or, from 2.85,
    change ``delete_on_termination`` (``id``, ``serverId``, ``device``, ``tag`` may only repeat)."""
    data = v.body_key(body, "volumeAttachment")
    allowed = {"volumeId"}
    if mv.matches("2.85"):
        allowed |= {"device", "tag", "delete_on_termination", "id", "serverId"}
    v.only_keys(data, allowed)
    vid = data.get("volumeId")
    if vid is None:
        raise BadRequest(
            "Invalid input for field/attribute volumeAttachment. 'volumeId' is a required property"
        )
    if not is_uuid(vid):
        raise BadRequest(f"Invalid input for field/attribute volumeId. Value: {vid}. '{vid}' is not a 'uuid'")
    if "delete_on_termination" in data:
        data["delete_on_termination"] = v.boolean(data["delete_on_termination"], "delete_on_termination")
    return data


def update_attachment(
    svc: ComputeService, ctx: RequestContext, server_id: str, volume_id: str, data: dict[str, Any]
) -> None:
    """2.85: the attachment's ``delete_on_termination``; its other fields are not mutable."""
    get_server(svc, ctx, server_id, write=True)
    row = get_attachment(svc, server_id, volume_id)
    for key, current in (("id", row.volume_id), ("serverId", row.server_id), ("device", row.device),
                         ("tag", row.tag)):  # fmt: skip
        if key in data and data[key] != current:
            raise BadRequest(f"The {key} property is not mutable")
    if "delete_on_termination" in data:
        with svc.db.session() as s:
            r = s.get(VolumeAttachment, row.id)
            if r is None:
                raise NotFound(f"volume_id not found: {volume_id}")
            r.delete_on_termination = data["delete_on_termination"]
            r.updated_at = now()


def server_row(svc: ComputeService, server_id: str) -> Server:
    with svc.db.reader() as s:
        server = s.get(Server, server_id)
    if server is None:
        raise NotFound(f"Instance {server_id} could not be found.")
    return server


def has_attachments(s: Any, server_id: str) -> bool:
    """Whether ``server_id`` still holds volume mappings (in the caller's session)."""
    return s.execute(select(VolumeAttachment.id).where(VolumeAttachment.server_id == server_id).limit(1)).first() is not None


def vm_gone(svc: ComputeService, server_id: str) -> bool:
    """The server's VM is destroyed: the server is deleted, or waits for its volumes' release."""
    with svc.db.reader() as s:
        server = s.get(Server, server_id)
        return server is None or bool(server.deleted) or (server.pending or {}).get("op") == "release_volumes"


def finish_release(svc: ComputeService, server_id: str) -> None:
    """The volumes are released: the delete that waited for it ends."""
    from kumo.compute.service.servers import finish_delete

    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is not None and not server.deleted and (server.pending or {}).get("op") == "release_volumes":
            finish_delete(s, server)


def row(svc: ComputeService, row_id: int) -> VolumeAttachment | None:
    with svc.db.reader() as s:
        return s.get(VolumeAttachment, row_id)
