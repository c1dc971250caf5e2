"""Attachments: the 3.27+ attachments API and the legacy os-reserve / os-initialize_connection /
os-attach / os-detach actions Nova used before it, on one state model.

attachment: reserved -> attaching (connector given) -> attached (os-complete / os-attach) -> deleted.
volume: available -> reserved/attaching -> in-use -> detaching -> available (when no attachment is left).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, NotFound, invalid_status
from kumo.block_storage.models import Attachment, Host, Volume, VolumeType
from kumo.block_storage.service import types as vtypes
from kumo.block_storage.service.core import BlockStorageService, is_uuid, new_uuid, now
from kumo.block_storage.service.volumes import load
from kumo.common.context import RequestContext


def attachment_not_found(attachment_id: str) -> NotFound:
    return NotFound(f"Volume attachment {attachment_id} could not be found.")


def live(s: Session, volume_id: str) -> list[Attachment]:
    return list(s.execute(select(Attachment).where(Attachment.volume_id == volume_id)
                          .order_by(Attachment.created_at)).scalars())


def connection_info(s: Session, v: Volume, connector: dict[str, Any] | None, mode: str = "rw",
                    export: str | None = None) -> dict[str, Any]:
    """What the hypervisor needs to open the volume (the agent reported it when it created the volume)."""
    if not v.provider:
        raise BadRequest(f"Invalid volume: Volume {v.id} is not ready on its storage host yet.")
    info = {
        "driver_volume_type": v.provider.get("driver_volume_type", "file"),
        "data": dict(v.provider.get("data") or {}),
    }
    vtype = s.get(VolumeType, v.volume_type_id) if v.volume_type_id else None
    info["data"].update(
        volume_id=v.id,
        access_mode="ro" if v.read_only or mode == "ro" else "rw",
        encrypted=False,
        qos_specs=vtypes.qos_of(s, vtype) or None,
        discard=True,
    )
    info["serial"] = v.id
    if connector and connector.get("host") and v.host and connector["host"] != v.host.split("@")[0]:
        info["data"]["remote_host"] = v.host.split("@")[0]
        endpoint = nbd_endpoint(s, v)
        if endpoint is not None and export:
            # The storage host exports the volume over NBD for this attachment only (the agent
            # serves it raw whatever the back end's format); the name is the only credential.
            keep = {k: info["data"][k] for k in ("volume_id", "access_mode", "encrypted", "qos_specs", "discard",
                                                  "remote_host")}
            info = {"driver_volume_type": "nbd", "serial": v.id,
                    "data": {**keep, "host": endpoint["host"], "port": endpoint["port"], "export": export,
                             "format": "raw"}}
    info["multiattach"] = bool(v.multiattach)  # as Nova marks it: the hypervisor opens the disk shared
    return info


def nbd_endpoint(s: Session, v: Volume) -> dict[str, Any] | None:
    """The NBD server the volume's storage host advertises (multi-node), or None."""
    h = s.get(Host, (v.host or "").split("#")[0])
    nbd = (h.capacity or {}).get("nbd") if h is not None else None
    if isinstance(nbd, dict) and isinstance(nbd.get("host"), str) and isinstance(nbd.get("port"), int):
        return nbd
    return None


EXPORT_WAIT = 30.0  # seconds the API waits for the storage host to serve a new NBD export


def wait_exported(svc: BlockStorageService, att: Attachment, timeout: float | None = None) -> None:
    """Wake the volume agents and wait until the attachment's NBD export is served (the
    hypervisor opens it right after this call returns). Returns on timeout too: the attach then
    fails on the compute host with QEMU's error, and the export appears on the agent's next pass."""
    info = att.connection_info or {}
    if info.get("driver_volume_type") != "nbd":
        return
    name = (info.get("data") or {}).get("export")
    svc.wake_agents()
    deadline = time.monotonic() + (EXPORT_WAIT if timeout is None else timeout)
    while True:
        with svc.db.reader() as s:
            v = s.get(Volume, att.volume_id)
            endpoint = nbd_endpoint(s, v) if v is not None else None
            if endpoint is None or name in (endpoint.get("exports") or []):
                return
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)


def wanted_exports(s: Session, pool: str) -> list[dict[str, Any]]:
    """The NBD exports a storage host must serve: one per live remote attachment of its volumes."""
    rows = s.execute(select(Attachment, Volume).join(Volume, Volume.id == Attachment.volume_id)
                     .where(Volume.host == pool)).all()
    out = []
    for att, v in rows:
        info = att.connection_info or {}
        if info.get("driver_volume_type") == "nbd" and (info.get("data") or {}).get("export"):
            out.append({"name": info["data"]["export"], "volume_id": v.id,
                        "read_only": info["data"].get("access_mode") == "ro"})
    return out


def _settle(v: Volume, s: Session) -> None:
    """The volume's status from its attachments."""
    rows = [a for a in live(s, v.id)]
    if any(a.status == "attached" for a in rows):
        v.status, v.attach_status = "in-use", "attached"
    elif any(a.status in ("attaching",) for a in rows):
        v.status, v.attach_status = "attaching", "attaching"
    elif any(a.status == "reserved" for a in rows):
        v.status, v.attach_status = "reserved", "reserved"
    else:
        v.status, v.attach_status = "available", "detached"
    v.updated_at = now()


def _attachable(v: Volume, s: Session, instance: str | None = None) -> None:
    if v.status == "available":
        return
    if v.multiattach and v.status in ("in-use", "reserved", "attaching"):
        return
    rows = live(s, v.id)
    if instance and v.status in ("in-use", "reserved") and rows and all(a.instance_uuid == instance for a in rows):
        return  # as Cinder: a new attachment for the same server (compute swaps attachments on rebuild)
    raise invalid_status("volume", v.id, v.status, "attach")


# --- the attachments API (3.27+) ----------------------------------------------------------------


def create_attachment(svc: BlockStorageService, ctx: RequestContext, body: Any) -> Attachment:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    a = body.get("attachment") if isinstance(body, dict) else None
    if not isinstance(a, dict):
        raise BadRequest("Missing required element 'attachment' in request body.")
    volume_id = a.get("volume_uuid")
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest("Invalid input: 'volume_uuid' is a required property.")
    instance = a.get("instance_uuid")
    if instance is not None and (not isinstance(instance, str) or not is_uuid(instance)):
        raise BadRequest(f"Invalid input: instance_uuid {instance!r} is not a valid uuid.")
    connector = a.get("connector")
    if connector is not None and not isinstance(connector, dict):
        raise BadRequest("Invalid input: 'connector' must be an object.")
    mode = a.get("mode", "rw")
    if mode not in ("rw", "ro"):
        raise BadRequest("Invalid input: mode must be 'rw' or 'ro'.")
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        _attachable(v, s, instance)
        if v.read_only and mode == "rw" and connector:
            mode = "ro"
        att = Attachment(id=new_uuid(), volume_id=v.id, project_id=v.project_id, instance_uuid=instance,
                         attach_mode=mode, status="reserved", created_at=now())
        s.add(att)
        s.flush()
        if connector:
            _connect(s, v, att, connector)
        _settle(v, s)
    wait_exported(svc, att)
    return att


def _connect(s: Session, v: Volume, att: Attachment, connector: dict[str, Any]) -> None:
    att.connector = connector
    previous = (att.connection_info or {}).get("data") or {}
    export = previous.get("export") or secrets.token_urlsafe(24)  # per attachment, 192 random bits
    att.connection_info = connection_info(s, v, connector, att.attach_mode, export=export)
    att.attached_host = connector.get("host")
    att.mountpoint = connector.get("mountpoint") or att.mountpoint
    att.status = "attaching"


def load_attachment(s: Session, svc: BlockStorageService, ctx: RequestContext, attachment_id: str) -> Attachment:
    att = s.get(Attachment, attachment_id) if is_uuid(attachment_id) else None
    if att is None or (att.project_id != ctx.project_id and not svc.is_admin(ctx)):
        raise attachment_not_found(attachment_id)
    return att


def update_attachment(svc: BlockStorageService, ctx: RequestContext, attachment_id: str, body: Any) -> Attachment:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    a = body.get("attachment") if isinstance(body, dict) else None
    if not isinstance(a, dict) or not isinstance(a.get("connector"), dict):
        raise BadRequest("Invalid input: 'connector' is a required property of 'attachment'.")
    with svc.db.session() as s:
        att = load_attachment(s, svc, ctx, attachment_id)
        v = s.get(Volume, att.volume_id)
        if v is None:
            raise attachment_not_found(attachment_id)
        if att.status == "attached":
            raise BadRequest(f"Invalid volume attachment: attachment {att.id} is already attached.")
        _connect(s, v, att, a["connector"])
        _settle(v, s)
    wait_exported(svc, att)
    return att


def complete_attachment(svc: BlockStorageService, ctx: RequestContext, attachment_id: str) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    with svc.db.session() as s:
        att = load_attachment(s, svc, ctx, attachment_id)
        v = s.get(Volume, att.volume_id)
        if v is None:
            raise attachment_not_found(attachment_id)
        if att.connection_info is None:
            raise BadRequest(f"Invalid volume attachment: attachment {att.id} has no connector yet.")
        att.status, att.attach_time = "attached", now()
        _settle(v, s)


def delete_attachment(svc: BlockStorageService, ctx: RequestContext, attachment_id: str) -> list[Attachment]:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    with svc.db.session() as s:
        att = load_attachment(s, svc, ctx, attachment_id)
        v = s.get(Volume, att.volume_id)
        remote = (att.connection_info or {}).get("driver_volume_type") == "nbd"
        s.delete(att)
        s.flush()
        rows: list[Attachment] = []
        if v is not None:
            _settle(v, s)
            rows = live(s, v.id)
    if remote:
        svc.wake_agents()  # the storage host drops the export
    return rows


def list_attachments(svc: BlockStorageService, ctx: RequestContext, query: Any) -> list[Attachment]:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    admin = svc.is_admin(ctx)
    with svc.db.reader() as s:
        q = select(Attachment).order_by(Attachment.created_at.desc())
        if not (admin and str(query.get("all_tenants", "0")).lower() in ("1", "true")):
            q = q.where(Attachment.project_id == (ctx.project_id or ""))
        rows = list(s.execute(q).scalars())
    for key in ("volume_id", "instance_id", "status", "attach_status"):
        if query.get(key):
            attr = {"instance_id": "instance_uuid", "attach_status": "status"}.get(key, key)
            rows = [a for a in rows if getattr(a, attr) == query[key]]
    return rows


def get_attachment(svc: BlockStorageService, ctx: RequestContext, attachment_id: str) -> Attachment:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    with svc.db.reader() as s:
        return load_attachment(s, svc, ctx, attachment_id)


# --- legacy actions -----------------------------------------------------------------------------


def reserve(svc: BlockStorageService, ctx: RequestContext, volume_id: str) -> None:
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        if v.status != "available" and not (v.multiattach and v.status == "in-use"):
            raise invalid_status("volume", v.id, v.status, "reserve")
        v.previous_status = v.status
        v.status = "attaching"
        v.updated_at = now()


def unreserve(svc: BlockStorageService, ctx: RequestContext, volume_id: str) -> None:
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        if v.status == "attaching":
            _settle(v, s)


def begin_detaching(svc: BlockStorageService, ctx: RequestContext, volume_id: str) -> None:
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        if v.status != "in-use" or v.attach_status != "attached":
            raise invalid_status("volume", v.id, v.status, "begin detaching")
        v.status = "detaching"
        v.updated_at = now()


def roll_detaching(svc: BlockStorageService, ctx: RequestContext, volume_id: str) -> None:
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        if v.status == "detaching":
            _settle(v, s)


def initialize_connection(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any) -> dict[str, Any]:
    connector = args.get("connector") if isinstance(args, dict) else None
    if not isinstance(connector, dict):
        raise BadRequest("Must specify 'connector'.")
    with svc.db.reader() as s:
        v = load(s, svc, ctx, volume_id)
        return connection_info(s, v, connector)


def terminate_connection(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any) -> None:
    connector = args.get("connector") if isinstance(args, dict) else None
    if not isinstance(connector, dict):
        raise BadRequest("Must specify 'connector'.")
    with svc.db.reader() as s:
        load(s, svc, ctx, volume_id)


def attach(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any) -> None:
    if not isinstance(args, dict):
        raise BadRequest("Invalid request to attach volume: missing arguments.")
    instance = args.get("instance_uuid")
    host = args.get("host_name")
    if instance is None and host is None:
        raise BadRequest("Invalid request to attach volume to an invalid target.")
    if instance is not None and (not isinstance(instance, str) or not is_uuid(instance)):
        raise BadRequest(f"Invalid instance_uuid {instance!r}.")
    mountpoint = args.get("mountpoint")
    if not isinstance(mountpoint, str) or not mountpoint:
        raise BadRequest("Must specify 'mountpoint'.")
    mode = args.get("mode", "rw")
    if mode not in ("rw", "ro"):
        raise BadRequest("Invalid request to attach volume with an invalid mode. Attaching mode should be 'rw' or 'ro'.")
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        if v.status not in ("attaching", "available", "reserved") and not (v.multiattach and v.status == "in-use"):
            raise invalid_status("volume", v.id, v.status, "attach")
        if v.read_only and mode == "rw":
            raise BadRequest(f"Invalid volume: Volume {v.id} is read-only; attach it in 'ro' mode.")
        att = next((a for a in live(s, v.id) if a.instance_uuid == instance and a.status != "attached"), None)
        if att is None:
            att = Attachment(id=new_uuid(), volume_id=v.id, project_id=v.project_id, instance_uuid=instance,
                             created_at=now())
            s.add(att)
        att.attached_host, att.mountpoint, att.attach_mode = host, mountpoint, mode
        att.status, att.attach_time = "attached", now()
        s.flush()
        _settle(v, s)


def detach(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, *, force: bool = False) -> None:
    attachment_id = args.get("attachment_id") if isinstance(args, dict) else None
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        rows = live(s, v.id)
        if attachment_id:
            rows = [a for a in rows if a.id == attachment_id]
            if not rows:
                raise attachment_not_found(attachment_id)
        elif len(rows) > 1:
            raise BadRequest("Invalid volume: Volume has more than one attachment; give attachment_id.")
        for a in rows:
            s.delete(a)
        s.flush()
        _settle(v, s)
