"""Response bodies, shaped as Cinder's views (per microversion where fields were added)."""

from __future__ import annotations

from typing import Any

from kumo.block_storage.api.common import iso, links, mv
from kumo.block_storage.models import Attachment, Backup, QosSpec, Snapshot, Transfer, Volume, VolumeType
from kumo.common.asgi import Call


def volume_attachments(v: Volume, atts: list[Attachment]) -> list[dict[str, Any]]:
    return [
        {
            "id": v.id,
            "attachment_id": a.id,
            "volume_id": v.id,
            "server_id": a.instance_uuid,
            "host_name": a.attached_host,
            "device": a.mountpoint,
            "attached_at": iso(a.attach_time),
        }
        for a in atts
        if a.status == "attached"
    ]


def volume(call: Call, v: Volume, atts: list[Attachment], vtype: VolumeType | None, *, admin: bool,
           created: bool = False) -> dict[str, Any]:
    version = mv(call)
    meta = dict(v.metadata_ or {})
    if v.read_only is not None:
        meta["readonly"] = str(bool(v.read_only))
    attached = [a for a in atts if a.status == "attached"]
    if attached:
        meta.setdefault("attached_mode", attached[0].attach_mode)
    body: dict[str, Any] = {
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "status": v.status,
        "size": v.size,
        "availability_zone": v.availability_zone,
        "created_at": iso(v.created_at),
        "updated_at": iso(v.updated_at),
        "attachments": volume_attachments(v, atts),
        "links": links(call, "volumes", v.id),
        "metadata": meta,
        "bootable": "true" if v.bootable else "false",
        "encrypted": False,
        "multiattach": bool(v.multiattach),
        "replication_status": None,
        "consistencygroup_id": None,
        "source_volid": v.source_volid,
        "snapshot_id": v.snapshot_id,
        "user_id": v.user_id,
        "volume_type": vtype.name if vtype else None,
        "migration_status": v.migration_status,
    }
    if v.image_metadata and not created:
        body["volume_image_metadata"] = dict(v.image_metadata)
    if version.matches("3.13"):
        body["group_id"] = v.group_id
    if version.matches("3.21"):
        body["provider_id"] = None
    if version.matches("3.48"):
        body["service_uuid"] = None
        body["shared_targets"] = False
    if version.matches("3.61") and admin and not created:
        body["cluster_name"] = None
    if version.matches("3.63"):
        body["volume_type_id"] = v.volume_type_id
    if version.matches("3.64"):
        body["encryption_key_id"] = None
    if version.matches("3.65"):
        body["consumes_quota"] = True
    if not created:
        body["os-vol-tenant-attr:tenant_id"] = v.project_id
        if admin:
            body["os-vol-host-attr:host"] = v.host
            body["os-vol-mig-status-attr:migstat"] = v.migration_status
            body["os-vol-mig-status-attr:name_id"] = None
    return body


def volume_summary(call: Call, v: Volume) -> dict[str, Any]:
    return {"id": v.id, "name": v.name, "links": links(call, "volumes", v.id)}


def snapshot(call: Call, x: Snapshot, *, detail: bool = True) -> dict[str, Any]:
    version = mv(call)
    body: dict[str, Any] = {
        "id": x.id,
        "name": x.name,
        "description": x.description,
        "status": x.status,
        "size": x.size,
        "volume_id": x.volume_id,
        "metadata": dict(x.metadata_ or {}),
        "created_at": iso(x.created_at),
        "updated_at": iso(x.updated_at),
    }
    if detail:
        body["os-extended-snapshot-attributes:progress"] = x.progress
        body["os-extended-snapshot-attributes:project_id"] = x.project_id
    if version.matches("3.14"):
        body["group_snapshot_id"] = x.group_snapshot_id
    if version.matches("3.41"):
        body["user_id"] = x.user_id
    if version.matches("3.65"):
        body["consumes_quota"] = True
    return body


def volume_type(call: Call, t: VolumeType, *, admin: bool, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "os-volume-type-access:is_public": t.is_public,
        "extra_specs": dict(t.extra_specs or {}) if admin else {},
    }
    if full and admin:
        body["qos_specs_id"] = t.qos_specs_id
    return body


def qos(call: Call, q: QosSpec) -> dict[str, Any]:
    return {"id": q.id, "name": q.name, "consumer": q.consumer, "specs": dict(q.specs or {})}


def attachment(a: Attachment, *, detail: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": a.id,
        "status": a.status,
        "instance": a.instance_uuid,
        "volume_id": a.volume_id,
    }
    if detail:
        body.update(
            attached_at=iso(a.attach_time),
            detached_at=iso(a.detach_time),
            attach_mode=a.attach_mode,
            connection_info=a.connection_info or {},
        )
    return body


def backup(call: Call, b: Backup, *, dependents: bool, detail: bool = True) -> dict[str, Any]:
    if not detail:
        return {"id": b.id, "name": b.name, "links": links(call, "backups", b.id)}
    version = mv(call)
    body: dict[str, Any] = {
        "id": b.id,
        "name": b.name,
        "description": b.description,
        "status": b.status,
        "size": b.size,
        "volume_id": b.volume_id,
        "snapshot_id": b.snapshot_id,
        "container": b.container,
        "object_count": b.object_count,
        "availability_zone": b.availability_zone,
        "created_at": iso(b.created_at),
        "updated_at": iso(b.updated_at),
        "data_timestamp": iso(b.data_timestamp),
        "fail_reason": b.fail_reason,
        "has_dependent_backups": dependents,
        "is_incremental": b.is_incremental,
        "links": links(call, "backups", b.id),
    }
    if version.matches("3.18"):
        body["os-backup-project-attr:project_id"] = b.project_id
    if version.matches("3.43"):
        body["metadata"] = dict(b.metadata_ or {})
    if version.matches("3.56"):
        body["user_id"] = b.user_id
    return body


def transfer(call: Call, t: Transfer, collection: str, *, detail: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": t.id, "name": t.name, "volume_id": t.volume_id,
                            "links": links(call, collection, t.id)}
    if detail:
        body["created_at"] = iso(t.created_at)
        version = mv(call)
        if version.matches("3.55"):
            body["no_snapshots"] = bool(t.no_snapshots)
        if version.matches("3.57"):
            body["destination_project_id"] = None
            body["source_project_id"] = t.project_id
            body["accepted"] = False
    return body
