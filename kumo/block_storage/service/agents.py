"""The volume agents' side of the control plane: registration, heartbeats, the work each
storage host should do (desired state), and the reports that settle volume, snapshot and
backup states. Level-triggered: a task stays in the database until a report with its sequence
number settles it, so a lost report or an agent restart only delays convergence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, NotFound
from kumo.block_storage.models import Backup, Host, Message, Snapshot, Volume
from kumo.block_storage.service import attachments
from kumo.block_storage.service.core import BlockStorageService, new_uuid, now


def is_up(svc: BlockStorageService, host: Host) -> bool:
    return now() - host.heartbeat_at <= timedelta(seconds=svc.settings.service_down_time)


def register(svc: BlockStorageService, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("host"), str) or "@" not in body["host"]:
        raise BadRequest("host (host@backend) is required.")
    with svc.db.session() as s:
        h = s.get(Host, body["host"])
        if h is None:
            h = Host(host=body["host"], backend=str(body.get("backend") or "file"), created_at=now(),
                     heartbeat_at=now())
            s.add(h)
        h.zone = str(body.get("zone") or svc.settings.zone)
        h.capacity = dict(body.get("capacity") or {})
        h.backend = str(body.get("backend") or h.backend)
        h.heartbeat_at = now()
    svc.wake_agents()
    return {"host": body["host"]}


def heartbeat(svc: BlockStorageService, host: str, body: Any) -> None:
    with svc.db.session() as s:
        h = s.get(Host, host)
        if h is None:
            raise NotFound(f"Host {host} is not registered.")
        h.heartbeat_at = now()
        if isinstance(body, dict) and isinstance(body.get("capacity"), dict):
            h.capacity = body["capacity"]


def pool_host(host: str, backend: str) -> str:
    return f"{host}#{backend}"


def desired(svc: BlockStorageService, host: str) -> dict[str, Any]:
    """What ``host`` must do: pending tasks, plus every volume and snapshot it should hold."""
    with svc.db.session() as s:
        h = s.get(Host, host)
        if h is None:
            raise NotFound(f"Host {host} is not registered.")
        pool = pool_host(host, h.backend)
        if not h.disabled:
            _schedule(s, h, pool)
        vols = list(s.execute(select(Volume).where(Volume.host == pool)).scalars())
        snaps = list(s.execute(select(Snapshot).where(Snapshot.host == pool)).scalars())
        backups = list(s.execute(select(Backup).where(Backup.host == pool, Backup.task.is_not(None))).scalars())
        restore_into = {b.task.get("volume_id") for b in backups if b.task and b.task.get("op") == "restore"}
        return {
            "volumes": [
                {"id": v.id, "size": v.size, "status": v.status, "task": v.task, "project_id": v.project_id}
                for v in vols if v.task
            ],
            "snapshots": [
                {"id": x.id, "volume_id": x.volume_id, "size": x.size, "task": x.task} for x in snaps if x.task
            ],
            "backups": [
                {"id": b.id, "data_id": (b.volume_meta or {}).get("data_id") or b.id, "volume_id": b.volume_id,
                 "size": b.size, "project_id": b.project_id,
                 "parent_id": b.parent_id, "snapshot_id": b.snapshot_id, "container": b.container, "task": b.task}
                for b in backups
            ],
            "volume_ids": [v.id for v in vols],
            "snapshot_ids": [x.id for x in snaps],
            "busy_volume_ids": sorted(restore_into),
            "exports": attachments.wanted_exports(s, pool),
        }


def _schedule(s: Session, h: Host, pool: str) -> None:
    """Place volumes nobody holds yet on this host (one back end per zone is the common case)."""
    from kumo.block_storage.models import VolumeType
    from kumo.block_storage.service.scheduler import _satisfies

    for v in s.execute(select(Volume).where(Volume.host.is_(None), Volume.availability_zone == h.zone,
                                            Volume.task.is_not(None))).scalars():
        vtype = s.get(VolumeType, v.volume_type_id) if v.volume_type_id else None
        if _satisfies(h, vtype, 0):
            v.host = pool
    for b in s.execute(select(Backup).where(Backup.host.is_(None), Backup.task.is_not(None))).scalars():
        b.host = pool
    for x in s.execute(select(Snapshot).where(Snapshot.host.is_(None), Snapshot.task.is_not(None))).scalars():
        x.host = pool


def _message(s: Session, project_id: str, resource_type: str, resource_id: str, event: str, text: str) -> None:
    s.add(Message(id=new_uuid(), project_id=project_id, request_id=None, resource_type=resource_type,
                  resource_uuid=resource_id, event_id=event, message_level="ERROR", user_message=text,
                  created_at=now(), expires_at=now() + timedelta(days=30)))


def report(svc: BlockStorageService, body: Any) -> None:
    if not isinstance(body, dict) or body.get("kind") not in ("volume", "snapshot", "backup"):
        raise BadRequest("kind must be volume, snapshot or backup.")
    kind, item_id, seq = body["kind"], str(body.get("id")), body.get("seq")
    ok, fault, result = bool(body.get("ok")), str(body.get("fault") or ""), dict(body.get("result") or {})
    with svc.db.session() as s:
        model = {"volume": Volume, "snapshot": Snapshot, "backup": Backup}[kind]
        row = s.get(model, item_id)
        if row is None or not row.task or row.task.get("seq") != seq:
            return  # stale: the task was settled or replaced meanwhile
        op = row.task["op"]
        grown = kind == "volume" and op == "extend" and ok and bool(row.task.get("attached"))
        if kind == "volume":
            _volume(s, row, op, ok, fault, result)
        elif kind == "snapshot":
            _snapshot(s, row, op, ok, fault)
        else:
            _backup(s, row, op, ok, fault, result)
    if grown:  # an in-use volume grew: compute grows the guests' disks (volume-extended)
        from kumo.block_storage.service.compute_events import volume_extended

        volume_extended(svc, item_id)
    svc.wake_agents()


def _volume(s: Session, v: Volume, op: str, ok: bool, fault: str, result: dict[str, Any]) -> None:
    task = dict(v.task or {})
    v.task, v.updated_at = None, now()
    if op == "create":
        if task.get("source") == "backup":
            b = s.get(Backup, task.get("backup_id"))
            if b is not None and b.status == "restoring":
                b.status = "available"
            if b is not None and ok:
                restore_meta(v, b)
        if ok:
            v.status, v.launched_at, v.fault = "available", now(), None
            v.provider = dict(result.get("connection_info") or {})
        else:
            v.status, v.fault = "error", fault
            _message(s, v.project_id, "VOLUME", v.id, "VOLUME_VOLUME_001_003", f"create volume failed: {fault}")
    elif op == "delete":
        if ok:
            for snap in s.execute(select(Snapshot).where(Snapshot.volume_id == v.id)).scalars():
                s.delete(snap)
            s.delete(v)
        else:
            v.status, v.fault = "error_deleting", fault
    elif op == "extend":
        if ok:
            v.size = int(task.get("new_size") or v.size)
            v.status = v.previous_status or "available"
        else:
            v.status, v.fault = "error_extending", fault
            _message(s, v.project_id, "VOLUME", v.id, "VOLUME_VOLUME_001_004", f"extend volume failed: {fault}")
    elif op == "reimage":
        if ok:  # the volume now holds the image: its image metadata is the new image's
            v.status, v.fault = v.previous_status or "available", None
            v.image_metadata = dict(task.get("image_metadata") or {})
            v.bootable = True
        else:
            v.status, v.fault = "error", fault
            _message(s, v.project_id, "VOLUME", v.id, "VOLUME_VOLUME_003_002", f"reimage volume failed: {fault}")
    elif op == "upload":
        v.status = v.previous_status or "available"
        if not ok:
            v.fault = fault
            _message(s, v.project_id, "VOLUME", v.id, "VOLUME_VOLUME_002_001",
                     f"upload to image failed: {fault}")
    else:
        v.status = v.previous_status or "available"


def _snapshot(s: Session, x: Snapshot, op: str, ok: bool, fault: str) -> None:
    x.task, x.updated_at = None, now()
    if op == "create":
        x.status, x.progress = ("available", "100%") if ok else ("error", "0%")
        x.fault = None if ok else fault
        if not ok:
            _message(s, x.project_id, "SNAPSHOT", x.id, "VOLUME_SNAPSHOT_001_001", f"create snapshot failed: {fault}")
    elif op == "delete":
        if ok:
            s.delete(x)
        else:
            x.status, x.fault = "error_deleting", fault


def _backup(s: Session, b: Backup, op: str, ok: bool, fault: str, result: dict[str, Any]) -> None:
    task = dict(b.task or {})
    b.task, b.updated_at = None, now()
    if op == "create":
        v = s.get(Volume, b.volume_id)
        if v is not None and v.status == "backing-up":
            v.status = v.previous_status or "available"
        if ok:
            b.status, b.fail_reason = "available", None
            b.object_count = int(result.get("object_count") or 0)
        else:
            b.status, b.fail_reason = "error", fault
            _message(s, b.project_id, "VOLUME_BACKUP", b.id, "VOLUME_BACKUP_001_001", f"backup failed: {fault}")
    elif op == "restore":
        v = s.get(Volume, task.get("volume_id"))
        b.status = "available"
        if v is not None:
            if ok:
                restore_meta(v, b)
            v.status = "available" if ok else "error_restoring"
            v.fault = None if ok else fault
            v.updated_at = now()
    elif op == "delete":
        if ok:
            s.delete(b)
        else:
            b.status, b.fail_reason = "error_deleting", fault


def restore_meta(v: Volume, b: Backup) -> None:
    """A restored volume gets the backed-up volume's metadata, image metadata and bootable flag."""
    meta = b.volume_meta or {}
    v.metadata_ = {**(v.metadata_ or {}), **(meta.get("metadata") or {})}
    if meta.get("image_metadata"):
        v.image_metadata = dict(meta["image_metadata"])
    if "bootable" in meta:
        v.bootable = bool(meta["bootable"])


def hosts(svc: BlockStorageService) -> list[Host]:
    with svc.db.reader() as s:
        return list(s.execute(select(Host).order_by(Host.host)).scalars())


def set_service(svc: BlockStorageService, host: str, binary: str | None, disabled: bool, reason: str | None) -> Host:
    with svc.db.session() as s:
        h = None
        if binary == "cinder-volume":
            h = s.get(Host, host) or (None if "@" in host else
                                      s.execute(select(Host).where(Host.host.like(host + "@%"))).scalars().first())
        elif binary == "cinder-backup":
            h = s.execute(select(Host).where(or_(Host.host == host, Host.host.like(host + "@%")))).scalars().first()
        if h is None:
            raise NotFound(f"Service {binary or 'cinder-volume'} on host {host} could not be found.")
        h.disabled, h.disabled_reason = disabled, reason if disabled else None
        return h
