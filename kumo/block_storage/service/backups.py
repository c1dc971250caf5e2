"""Backup records: create (full or incremental), list, show, update, delete, restore, status
actions, export/import of records. The volume agent moves the data (the backup engine stores
chunks in object storage); this module keeps the records and the state machine."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, NotFound, invalid_status
from kumo.block_storage.models import Backup, Snapshot, Volume
from kumo.block_storage.service import listing, peers, quotas
from kumo.block_storage.service import volumes as vols
from kumo.block_storage.service.core import BlockStorageService, is_uuid, new_uuid, now
from kumo.block_storage.service.validate import action_body, boolean, check_metadata, string_field
from kumo.common.context import RequestContext
from kumo.common.microversion import APIVersion

STATUSES = ("creating", "available", "deleting", "error", "error_deleting", "restoring")
SORT_KEYS = {"id", "name", "status", "size", "created_at", "updated_at", "volume_id", "display_name"}


def backup_not_found(backup_id: str) -> NotFound:
    return NotFound(f"Backup {backup_id} could not be found.")


def load(s: Session, svc: BlockStorageService, ctx: RequestContext, backup_id: str) -> Backup:
    b = s.get(Backup, backup_id) if is_uuid(backup_id) else None
    if b is None or (b.project_id != ctx.project_id and not svc.is_admin(ctx)):
        raise backup_not_found(backup_id)
    return b


def has_dependents(s: Session, backup_id: str) -> bool:
    return s.execute(select(Backup.id).where(Backup.parent_id == backup_id).limit(1)).first() is not None


def get_backup(svc: BlockStorageService, ctx: RequestContext, backup_id: str) -> tuple[Backup, bool]:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    with svc.db.reader() as s:
        b = load(s, svc, ctx, backup_id)
        return b, has_dependents(s, b.id)


def create_backup(svc: BlockStorageService, ctx: RequestContext, body: Any, mv: APIVersion) -> Backup:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    bk = body.get("backup") if isinstance(body, dict) else None
    if not isinstance(bk, dict):
        raise BadRequest("Missing required element 'backup' in request body.")
    volume_id = bk.get("volume_id")
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest("Invalid input: 'volume_id' is a required property.")
    name = string_field(bk.get("name", bk.get("display_name")), "name")
    description = string_field(bk.get("description"), "description", maximum=65535)
    container = string_field(bk.get("container"), "container") or svc.settings.backup_container
    incremental = boolean(bk.get("incremental", False), "incremental")
    force = boolean(bk.get("force", False), "force")
    metadata = check_metadata(bk.get("metadata"))
    snapshot_id = bk.get("snapshot_id")
    with svc.db.session() as s:
        v = vols.load(s, svc, ctx, volume_id, lock=True)
        allowed = ("available", "in-use") if force else ("available",)
        if v.status not in allowed:
            raise invalid_status("volume", v.id, v.status, "back up")
        if snapshot_id:
            snap = s.get(Snapshot, snapshot_id) if is_uuid(snapshot_id) else None
            if snap is None or snap.volume_id != v.id:
                raise NotFound(f"Snapshot {snapshot_id} could not be found.")
            if snap.status != "available":
                raise invalid_status("snapshot", snap.id, snap.status, "back up")
        parent = None
        if incremental:
            parent = s.execute(select(Backup).where(Backup.volume_id == v.id, Backup.status == "available")
                               .order_by(Backup.data_timestamp.desc(), Backup.seq.desc()).limit(1)).scalar_one_or_none()
            if parent is None:
                raise BadRequest("Invalid backup: No backups available to do an incremental backup.")
        quotas.check(svc, s, v.project_id, backups=1, backup_gigabytes=v.size)
        b = Backup(
            id=new_uuid(), seq=svc.next_seq(s, "backup"), project_id=v.project_id, user_id=ctx.user_id or "",
            volume_id=v.id, snapshot_id=snapshot_id or None, parent_id=parent.id if parent else None, name=name,
            description=description, size=v.size, status="creating", container=container, object_count=0,
            is_incremental=parent is not None, availability_zone=v.availability_zone, metadata_=metadata,
            host=v.host, data_timestamp=now(), created_at=now(),
            volume_meta={"metadata": dict(v.metadata_ or {}), "image_metadata": dict(v.image_metadata or {}),
                         "bootable": bool(v.bootable)},
        )
        b.task = vols.next_task(svc, s, "create", volume_id=v.id, snapshot_id=b.snapshot_id,
                                parent_id=b.parent_id, container=container,
                                **peers.peer_args(svc, ctx, "object-store"))
        s.add(b)
        v.previous_status = v.status
        v.status = "backing-up"
        v.updated_at = now()
    svc.wake_agents()
    return b


def list_backups(svc: BlockStorageService, ctx: RequestContext, query: Any) -> list[tuple[Backup, bool]]:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    admin = svc.is_admin(ctx)
    with svc.db.reader() as s:
        q = select(Backup)
        if admin and query.get("project_id"):
            q = q.where(Backup.project_id == query["project_id"])
        elif not (admin and str(query.get("all_tenants", "0")).lower() in ("1", "true", "yes")):
            q = q.where(Backup.project_id == (ctx.project_id or ""))
        rows = list(s.execute(q).scalars())
        parents = {p for p in s.execute(select(Backup.parent_id).where(Backup.parent_id.is_not(None))).scalars()}
    for key, raw in query.multi_items():
        if key in ("name", "display_name"):
            rows = [b for b in rows if b.name == raw]
        elif key in ("status", "volume_id", "id"):
            rows = [b for b in rows if getattr(b, key) == raw]
    pairs = listing.parse_sort(query, SORT_KEYS)
    rows = listing.sort_rows(rows, pairs, lambda b, k: getattr(b, "name" if k == "display_name" else k))
    return [(b, b.id in parents) for b in rows]


def update_backup(svc: BlockStorageService, ctx: RequestContext, backup_id: str, body: Any) -> Backup:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    u = body.get("backup") if isinstance(body, dict) else None
    if not isinstance(u, dict):
        raise BadRequest("Missing required element 'backup' in request body.")
    bad = set(u) - {"name", "description", "metadata"}
    if bad:
        raise BadRequest(f"Invalid input: unexpected properties {', '.join(sorted(bad))}.")
    with svc.db.session() as s:
        b = load(s, svc, ctx, backup_id)
        if "name" in u:
            b.name = string_field(u["name"], "name")
        if "description" in u:
            b.description = string_field(u["description"], "description", maximum=65535)
        if "metadata" in u:
            b.metadata_ = check_metadata(u["metadata"])
        b.updated_at = now()
    return b


def delete_backup(svc: BlockStorageService, ctx: RequestContext, backup_id: str, *, force: bool = False) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    with svc.db.session() as s:
        b = load(s, svc, ctx, backup_id)
        if not force and b.status not in ("available", "error"):
            raise invalid_status("backup", b.id, b.status, "delete")
        if has_dependents(s, b.id):
            raise BadRequest("Invalid backup: Incremental backups exist for this backup.")
        if b.host is None:
            s.delete(b)
        else:
            b.status = "deleting"
            b.task = vols.next_task(svc, s, "delete", container=b.container,
                                    **peers.peer_args(svc, ctx, "object-store"))
            b.updated_at = now()
    svc.wake_agents()


def restore(svc: BlockStorageService, ctx: RequestContext, backup_id: str, body: Any) -> dict[str, str]:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    r = body.get("restore") if isinstance(body, dict) else None
    if not isinstance(r, dict):
        raise BadRequest("Missing required element 'restore' in request body.")
    volume_id, name = r.get("volume_id"), string_field(r.get("name"), "name")
    if volume_id is None:
        v = vols.create_volume(svc, ctx, {"volume": {"backup_id": backup_id,
                                                     "name": name or f"restore_backup_{backup_id}"}})
        return {"backup_id": backup_id, "volume_id": v.id, "volume_name": v.name or ""}
    with svc.db.session() as s:
        b = load(s, svc, ctx, backup_id)
        if b.status != "available":
            raise invalid_status("backup", b.id, b.status, "restore")
        v = vols.load(s, svc, ctx, str(volume_id), lock=True)
        if v.status != "available":
            raise invalid_status("volume", v.id, v.status, "restore a backup into")
        if v.size < b.size:
            raise BadRequest(f"Invalid volume: volume size {v.size}GB is smaller than the backup size {b.size}GB.")
        b.status = "restoring"
        b.task = vols.next_task(svc, s, "restore", volume_id=v.id, volume_host=v.host, container=b.container,
                                **peers.peer_args(svc, ctx, "object-store"))
        v.status = "restoring-backup"
        v.updated_at = now()
        result = {"backup_id": b.id, "volume_id": v.id, "volume_name": v.name or ""}
    svc.wake_agents()
    return result


def action(svc: BlockStorageService, ctx: RequestContext, backup_id: str, body: Any) -> None:
    name, args = action_body(body)
    if name == "os-reset_status":
        svc.require_admin(ctx, "volume_extension:backup_admin_actions:reset_status")
        status = args.get("status") if isinstance(args, dict) else None
        if status not in ("available", "error"):
            raise BadRequest(f"Must specify a valid status: {status} is not one.")
        with svc.db.session() as s:
            b = load(s, svc, ctx, backup_id)
            b.status, b.task, b.updated_at = status, None, now()
        return
    if name == "os-force_delete":
        svc.require_admin(ctx, "volume_extension:backup_admin_actions:force_delete")
        delete_backup(svc, ctx, backup_id, force=True)
        return
    with svc.db.reader() as s:
        load(s, svc, ctx, backup_id)
    raise BadRequest(f"There is no such action: {name}")


# Tempest expects Cinder's driver naming; the records themselves are kumo's (importable into kumo).
BACKUP_SERVICE = "cinder.backup.drivers.swift"
RECORD_FIELDS = ("id", "volume_id", "snapshot_id", "parent_id", "name", "description", "size", "container",
                 "object_count", "is_incremental", "availability_zone", "host", "project_id", "user_id")


def export_record(svc: BlockStorageService, ctx: RequestContext, backup_id: str) -> dict[str, str]:
    svc.require_admin(ctx, "backup:export-import")
    with svc.db.reader() as s:
        b = load(s, svc, ctx, backup_id)
    if b.status != "available":
        raise invalid_status("backup", b.id, b.status, "export")
    doc = {k: getattr(b, k) for k in RECORD_FIELDS}
    doc["metadata"] = dict(b.metadata_ or {})
    doc["volume_meta"] = dict(b.volume_meta or {})
    doc["data_id"] = (b.volume_meta or {}).get("data_id") or b.id  # where the chunks live in object storage
    doc["data_timestamp"] = b.data_timestamp.isoformat()
    return {"backup_service": BACKUP_SERVICE, "backup_url": base64.b64encode(json.dumps(doc).encode()).decode()}


def import_record(svc: BlockStorageService, ctx: RequestContext, body: Any) -> Backup:
    svc.require_admin(ctx, "backup:export-import")
    rec = body.get("backup-record") if isinstance(body, dict) else None
    if not isinstance(rec, dict) or not isinstance(rec.get("backup_url"), str) or not rec.get("backup_service"):
        raise BadRequest("Invalid input: 'backup_service' and 'backup_url' are required.")
    if rec["backup_service"] != BACKUP_SERVICE:
        raise BadRequest(f"Unsupported backup service {rec['backup_service']}.")
    try:
        doc = json.loads(base64.b64decode(rec["backup_url"], validate=True))
        assert isinstance(doc, dict) and is_uuid(doc["id"])
    except Exception:
        raise BadRequest("Invalid backup_url: not an exported kumo backup record.") from None
    from datetime import datetime

    with svc.db.session() as s:
        existing = s.get(Backup, doc["id"])
        if existing is not None and existing.status != "deleted":
            raise BadRequest(f"Invalid backup: Backup {doc['id']} already exists.")
        b = Backup(
            id=doc["id"], seq=svc.next_seq(s, "backup"), project_id=ctx.project_id or "", user_id=ctx.user_id or "",
            volume_id=str(doc.get("volume_id")), snapshot_id=doc.get("snapshot_id"), parent_id=doc.get("parent_id"),
            name=doc.get("name"), description=doc.get("description"), size=int(doc.get("size") or 1),
            status="available", container=doc.get("container"), object_count=int(doc.get("object_count") or 0),
            is_incremental=bool(doc.get("is_incremental")), availability_zone=doc.get("availability_zone"),
            metadata_=dict(doc.get("metadata") or {}), host=doc.get("host"),
            volume_meta={**dict(doc.get("volume_meta") or {}), "data_id": str(doc.get("data_id") or doc["id"])},
            data_timestamp=datetime.fromisoformat(doc["data_timestamp"]) if doc.get("data_timestamp") else now(),
            created_at=now(),
        )
        s.add(b)
    return b


def volume_has_backups(s: Session, volume: Volume) -> bool:
    return s.execute(select(Backup.id).where(Backup.volume_id == volume.id).limit(1)).first() is not None
