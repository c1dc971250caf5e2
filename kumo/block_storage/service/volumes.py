"""Volumes: create (empty, from an image, a snapshot, another volume or a backup), list, show,
update, delete; metadata and image metadata. Actions live in :mod:`.volume_actions`.

Status model (as upstream): creating -> available | error; available <-> in-use (attachments);
extending, uploading, backing-up, restoring-backup, deleting; ``error_*`` on failures.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, NotFound, invalid_status
from kumo.block_storage.models import Attachment, Backup, Message, Snapshot, Volume, VolumeType
from kumo.block_storage.service import encryption, listing, peers, quotas, scheduler
from kumo.block_storage.service import types as vtypes
from kumo.block_storage.service.core import BlockStorageService, is_uuid, new_uuid, now
from kumo.block_storage.service.validate import boolean, check_metadata, size_field, string_field
from kumo.common.context import RequestContext

DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")
VOLUME_STATUSES = (
    "creating", "available", "in-use", "attaching", "detaching", "deleting", "error", "error_deleting",
    "error_restoring", "error_extending", "extending", "uploading", "downloading", "backing-up",
    "restoring-backup", "reserved", "maintenance", "retyping", "awaiting-transfer", "error_managing",
)
GiB = 1024**3


def volume_not_found(volume_id: str) -> NotFound:
    return NotFound(f"Volume {volume_id} could not be found.")


def next_task(svc: BlockStorageService, s: Session, op: str, **args: Any) -> dict[str, Any]:
    return {"op": op, "seq": svc.next_seq(s, "task"), **args}


def load(s: Session, svc: BlockStorageService, ctx: RequestContext, volume_id: str, *, lock: bool = False) -> Volume:
    v = None
    if is_uuid(volume_id):
        q = select(Volume).where(Volume.id == volume_id)
        v = s.execute(q.with_for_update() if lock else q).scalar_one_or_none()
    if v is None or (v.project_id != ctx.project_id and not svc.is_admin(ctx)):
        raise volume_not_found(volume_id)
    return v


def get_volume(svc: BlockStorageService, ctx: RequestContext, volume_id: str) -> Volume:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    with svc.db.reader() as s:
        return load(s, svc, ctx, volume_id)


def attachments_of(s: Session, volume_ids: list[str]) -> dict[str, list[Attachment]]:
    out: dict[str, list[Attachment]] = {v: [] for v in volume_ids}
    if volume_ids:
        for a in s.execute(select(Attachment).where(Attachment.volume_id.in_(volume_ids))
                           .order_by(Attachment.created_at)).scalars():
            out.setdefault(a.volume_id, []).append(a)
    return out


def type_names(s: Session) -> dict[str, VolumeType]:
    return {t.id: t for t in s.execute(select(VolumeType)).scalars()}


# --- create ----------------------------------------------------------------------------------


def _zone(svc: BlockStorageService, value: Any) -> str:
    zone = string_field(value, "availability_zone") if value is not None else None
    if not zone:
        return svc.settings.zone
    if zone != svc.settings.zone:
        raise BadRequest(f"Availability zone '{zone}' is invalid.")
    return zone


def create_volume(svc: BlockStorageService, ctx: RequestContext, body: Any) -> Volume:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    if not isinstance(body, dict) or not isinstance(body.get("volume"), dict):
        raise BadRequest("Missing required element 'volume' in request body.")
    v = body["volume"]
    name = string_field(v.get("name", v.get("display_name")), "name")
    description = string_field(v.get("description", v.get("display_description")), "description", maximum=65535)
    metadata = check_metadata(v.get("metadata"))
    multiattach = boolean(v.get("multiattach", False), "multiattach")
    snapshot_id, source_volid = v.get("snapshot_id"), v.get("source_volid")
    backup_id = v.get("backup_id")
    image_ref = v.get("imageRef") or v.get("image_id")
    sources = [x for x in (snapshot_id, source_volid, image_ref, backup_id) if x]
    if len(sources) > 1:
        raise BadRequest("Invalid input received: only one of snapshot_id, source_volid, imageRef or backup_id "
                         "may be given.")
    if v.get("size") is None and not (snapshot_id or source_volid or backup_id):
        raise BadRequest("Invalid input for field/attribute size. Value: None. None is not of type 'integer', "
                         "'string'")
    size = size_field(v["size"]) if v.get("size") is not None else None
    image = peers.fetch_image(svc, ctx, image_ref) if image_ref else None
    if image is not None:
        if image.get("status") != "active":
            raise BadRequest(f"Invalid image identifier or unable to access requested image: image {image['id']} "
                             f"is not active (status {image.get('status')}).")
        image_gb = -(-int(image.get("size") or 0) // GiB)
        virtual_gb = -(-int(image.get("virtual_size") or 0) // GiB)
        need = max(image_gb, virtual_gb, int(image.get("min_disk") or 0))
        if size is None:
            size = max(need, 1)
        if size < need:
            raise BadRequest(f"Invalid input received: Size of specified image {need}GB is larger than volume "
                             f"size {size}GB.")
    zone = _zone(svc, v.get("availability_zone"))
    with svc.db.session() as s:
        vtype: VolumeType | None = None
        if v.get("volume_type"):
            if not isinstance(v["volume_type"], str):
                raise BadRequest("Invalid input for field/attribute volume_type.")
            try:
                vtype = vtypes.find(s, svc, ctx, v["volume_type"])
            except NotFound:
                raise NotFound(f"Volume type with name {v['volume_type']} could not be found.") from None
        task_args: dict[str, Any] = {}
        host = None
        bootable = False
        image_metadata: dict[str, str] = {}
        if snapshot_id:
            snap = s.get(Snapshot, snapshot_id) if is_uuid(snapshot_id) else None
            if snap is None or (snap.project_id != ctx.project_id and not svc.is_admin(ctx)):
                raise NotFound(f"Snapshot {snapshot_id} could not be found.")
            if snap.status != "available":
                raise BadRequest(f"Invalid snapshot: Originating snapshot status must be 'available', "
                                 f"but is {snap.status}.")
            size = size if size is not None else snap.size
            if size < snap.size:
                raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than the "
                                 f"snapshot size {snap.size}GB. They must be >= original snapshot size.")
            src = s.get(Volume, snap.volume_id)
            if src is not None:
                host = src.host
                bootable = src.bootable
                image_metadata = dict(src.image_metadata or {})
                if vtype is None and src.volume_type_id:
                    vtype = s.get(VolumeType, src.volume_type_id)
            task_args = {"source": "snapshot", "snapshot_id": snap.id}
        elif source_volid:
            src = s.get(Volume, source_volid) if is_uuid(source_volid) else None
            if src is None or (src.project_id != ctx.project_id and not svc.is_admin(ctx)):
                raise NotFound(f"Volume {source_volid} could not be found.")
            if src.status not in ("available", "in-use"):
                raise BadRequest(f"Invalid volume: Source volume status must be available or in-use, but is "
                                 f"{src.status}.")
            size = size if size is not None else src.size
            if size < src.size:
                raise BadRequest(f"Invalid input received: Clones of volume {src.id} must be at least "
                                 f"{src.size}GB, not {size}GB.")
            host, bootable, image_metadata = src.host, src.bootable, dict(src.image_metadata or {})
            if vtype is None and src.volume_type_id:
                vtype = s.get(VolumeType, src.volume_type_id)
            task_args = {"source": "volume", "source_volid": src.id}
        elif backup_id:
            bk = s.get(Backup, backup_id) if is_uuid(backup_id) else None
            if bk is None or (bk.project_id != ctx.project_id and not svc.is_admin(ctx)):
                raise NotFound(f"Backup {backup_id} could not be found.")
            if bk.status != "available":
                raise BadRequest(f"Invalid backup: Backup status must be available, but is {bk.status}.")
            size = size if size is not None else bk.size
            if size < bk.size:
                raise BadRequest(f"Invalid input received: Volume size {size}GB cannot be smaller than the "
                                 f"backup size {bk.size}GB.")
            task_args = {"source": "backup", "backup_id": bk.id, "backup_size": bk.size,
                         "backup_data_id": (bk.volume_meta or {}).get("data_id") or bk.id,
                         "container": bk.container, **peers.peer_args(svc, ctx, "object-store")}
        elif image is not None:
            bootable = True
            image_metadata = peers.image_metadata_from(image)
            task_args = {"source": "image", "image_id": image["id"], "image_format": image.get("disk_format"),
                         **peers.peer_args(svc, ctx, "image")}
        assert size is not None
        if vtype is None:
            vtype = vtypes.default_type(s, svc)
        encryption.refuse_encrypted(s, vtype)
        group_id = v.get("group_id")
        if group_id:
            from kumo.block_storage.models import Group

            grp = s.get(Group, group_id) if isinstance(group_id, str) and is_uuid(group_id) else None
            if grp is None or (grp.project_id != ctx.project_id and not svc.is_admin(ctx)):
                raise NotFound(f"Group {group_id} could not be found.")
            if vtype is None or vtype.id not in (grp.volume_type_ids or []):
                raise BadRequest(f"Invalid input received: the volume type is not supported by group {group_id}.")
        quotas.check(svc, s, ctx.project_id or "", volumes=1, gigabytes=size,
                     type_name=vtype.name if vtype else None, volume_size=size)
        vol = Volume(
            id=new_uuid(),
            seq=svc.next_seq(s, "volume"),
            project_id=ctx.project_id or "",
            user_id=ctx.user_id or "",
            name=name,
            description=description,
            size=size,
            status="creating",
            attach_status="detached",
            availability_zone=zone,
            volume_type_id=vtype.id if vtype else None,
            bootable=bootable,
            multiattach=multiattach or (vtype is not None and
                                        (vtype.extra_specs or {}).get("multiattach", "").lower() == "<is> true"),
            read_only=None,
            metadata_=metadata,
            image_metadata=image_metadata,
            source_volid=source_volid or None,
            snapshot_id=snapshot_id or None,
            group_id=group_id or None,
            host=host,
            provider={},
            created_at=now(),
            updated_at=None,
        )
        vol.task = next_task(svc, s, "create", **task_args)
        if vol.host is None:
            try:
                vol.host = scheduler.pick(s, svc, zone, vtype, size)
            except scheduler.NoValidHost as exc:
                vol.status, vol.task, vol.fault = "error", None, str(exc)
                s.add(Message(id=new_uuid(), project_id=vol.project_id, request_id=ctx.request_id or None,
                              resource_type="VOLUME", resource_uuid=vol.id, event_id="VOLUME_000002",
                              message_level="ERROR", created_at=now(), expires_at=now() + timedelta(days=30),
                              user_message="schedule allocate volume:Could not find any available weighted "
                                           "backend."))
        s.add(vol)
        if backup_id:
            bk = s.get(Backup, backup_id)
            assert bk is not None
            bk.status = "restoring"
            vol.status = "restoring-backup"
    svc.wake_agents()
    return vol


# --- list ------------------------------------------------------------------------------------


SORT_KEYS = {"id", "name", "status", "size", "created_at", "updated_at", "availability_zone", "bootable",
             "display_name", "volume_type", "project_id", "user_id"}


def list_volumes(svc: BlockStorageService, ctx: RequestContext, query: Any) -> list[Volume]:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    admin = svc.is_admin(ctx)
    all_tenants = admin and str(query.get("all_tenants", "0")).lower() in ("1", "true", "yes")
    project = query.get("project_id") if admin and query.get("project_id") else None
    with svc.db.reader() as s:
        q = select(Volume)
        if project:
            q = q.where(Volume.project_id == project)
        elif not all_tenants:
            q = q.where(Volume.project_id == (ctx.project_id or ""))
        rows = list(s.execute(q).scalars())
        types = type_names(s)
    simple = {"status", "availability_zone", "bootable", "size", "group_id", "user_id", "volume_type", "id",
              "attach_status", "migration_status", "host"}
    for key, raw in query.multi_items():
        base, like = (key[:-1], True) if key.endswith("~") else (key, False)
        if base in ("name", "display_name"):
            rows = [v for v in rows if v.name is not None and (raw in v.name if like else v.name == raw)]
        elif base == "description":
            rows = [v for v in rows if (v.description or "") == raw or (like and raw in (v.description or ""))]
        elif base in simple:
            rows = [v for v in rows if _matches(v, base, raw, types, like)]
        elif base == "metadata":
            want = listing.literal_dict(raw, "metadata")
            rows = [v for v in rows if all((v.metadata_ or {}).get(k) == str(x) for k, x in want.items())]
        elif base in ("glance_metadata", "image_metadata"):
            want = listing.literal_dict(raw, base)
            rows = [v for v in rows if all((v.image_metadata or {}).get(k) == str(x) for k, x in want.items())]
        elif base in ("created_at", "updated_at"):
            for op, ts in listing.time_filter(raw, base):
                rows = [v for v in rows if getattr(v, base) is not None
                        and listing.compare(op, str(getattr(v, base)), ts)]
    pairs = listing.parse_sort(query, SORT_KEYS)

    def value(v: Volume, key: str) -> Any:
        if key == "display_name":
            key = "name"
        if key == "volume_type":
            t = types.get(v.volume_type_id or "")
            return t.name if t else None
        return getattr(v, key)

    return listing.sort_rows(rows, pairs, value)


def _matches(v: Volume, key: str, raw: str, types: dict[str, VolumeType], like: bool) -> bool:
    if key == "bootable":
        try:
            return v.bootable == boolean(raw, "bootable")
        except BadRequest:
            return False
    if key == "volume_type":
        t = types.get(v.volume_type_id or "")
        return t is not None and raw in (t.name, t.id)
    if key == "host":
        return v.host is not None and v.host.startswith(raw)
    actual = getattr(v, key)
    if like:
        return actual is not None and raw in str(actual)
    return str(actual) == raw if not isinstance(actual, bool) else str(actual).lower() == raw.lower()


def summary(svc: BlockStorageService, ctx: RequestContext, query: Any) -> dict[str, Any]:
    rows = list_volumes(svc, ctx, query)
    meta: dict[str, list[str]] = {}
    for v in rows:
        for k, val in (v.metadata_ or {}).items():
            meta.setdefault(k, [])
            if val not in meta[k]:
                meta[k].append(val)
    return {"total_size": sum(v.size for v in rows), "total_count": len(rows), "metadata": meta}


# --- update / delete ---------------------------------------------------------------------------


def update_volume(svc: BlockStorageService, ctx: RequestContext, volume_id: str, body: Any) -> Volume:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    if not isinstance(body, dict) or not isinstance(body.get("volume"), dict):
        raise BadRequest("Missing required element 'volume' in request body.")
    u = body["volume"]
    allowed = {"name", "description", "display_name", "display_description", "metadata"}
    bad = set(u) - allowed
    if bad:
        raise BadRequest(f"Invalid input: Additional properties are not allowed ({', '.join(sorted(bad))}).")
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        if "name" in u or "display_name" in u:
            v.name = string_field(u.get("name", u.get("display_name")), "name")
        if "description" in u or "display_description" in u:
            v.description = string_field(u.get("description", u.get("display_description")), "description",
                                         maximum=65535)
        if "metadata" in u:
            v.metadata_ = check_metadata(u["metadata"])
        v.updated_at = now()
    return v


def delete_volume(svc: BlockStorageService, ctx: RequestContext, volume_id: str, *, cascade: bool = False,
                  force: bool = False) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    if force:
        svc.require_admin(ctx, "volume_extension:volume_admin_actions:force_delete")
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        if not force:
            if v.status not in DELETABLE:
                raise invalid_status("volume", v.id, v.status, "delete")
            if v.attach_status == "attached" or v.status == "in-use":
                raise BadRequest(f"Invalid volume: Volume {v.id} is attached; detach it first.")
            if v.migration_status not in (None, "", "success", "error"):
                raise BadRequest("Invalid volume: Volume cannot be deleted while migrating.")
        snaps = list(s.execute(select(Snapshot).where(Snapshot.volume_id == v.id)).scalars())
        if snaps and not cascade:
            raise BadRequest(f"Invalid volume: Volume {v.id} still has {len(snaps)} dependent snapshots.")
        if cascade:
            busy = [x for x in snaps if x.status not in ("available", "error", "deleting", "error_deleting")]
            if busy:
                raise BadRequest("Invalid volume: Snapshot of the volume is in an invalid state for cascade delete.")
        for snap in snaps:
            if snap.host is None:
                s.delete(snap)
            else:
                snap.status = "deleting"
                snap.task = next_task(svc, s, "delete")
        for a in s.execute(select(Attachment).where(Attachment.volume_id == v.id)).scalars():
            s.delete(a)
        if v.host is None:
            s.delete(v)  # never placed on a storage host: nothing to remove there
        else:
            v.status = "deleting"
            v.task = next_task(svc, s, "delete", snapshots=[x.id for x in snaps])
            v.updated_at = now()
    svc.wake_agents()


# --- metadata ----------------------------------------------------------------------------------


def _meta_body(body: Any, key: str = "metadata") -> dict[str, str]:
    if not isinstance(body, dict) or key not in body:
        raise BadRequest(f"Malformed request body: '{key}' is required.")
    return check_metadata(body[key])


def set_metadata(svc: BlockStorageService, ctx: RequestContext, volume_id: str, body: Any, *,
                 replace: bool) -> dict[str, str]:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    meta = _meta_body(body)
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        if v.status == "maintenance":
            raise invalid_status("volume", v.id, v.status, "update metadata")
        v.metadata_ = meta if replace else {**(v.metadata_ or {}), **meta}
        v.updated_at = now()
        return dict(v.metadata_)


def set_metadata_item(svc: BlockStorageService, ctx: RequestContext, volume_id: str, key: str,
                      body: Any) -> dict[str, str]:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    if not isinstance(body, dict) or not isinstance(body.get("meta"), dict):
        raise BadRequest("Malformed request body: 'meta' is required.")
    meta = check_metadata(body["meta"])
    if key not in meta:
        raise BadRequest("Request body and URI mismatch")
    if len(meta) > 1:
        raise BadRequest("Request body contains too many items")
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        v.metadata_ = {**(v.metadata_ or {}), **meta}
        v.updated_at = now()
    return meta


def delete_metadata_item(svc: BlockStorageService, ctx: RequestContext, volume_id: str, key: str) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        meta = dict(v.metadata_ or {})
        if key not in meta:
            raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
        meta.pop(key)
        v.metadata_ = meta
        v.updated_at = now()


def set_image_metadata(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any) -> dict[str, str]:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    meta = _meta_body(args)
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        if v.status not in ("available", "in-use"):
            raise invalid_status("volume", v.id, v.status, "set image metadata")
        v.image_metadata = {**(v.image_metadata or {}), **meta}
        return dict(v.image_metadata)


def unset_image_metadata(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    key = args.get("key") if isinstance(args, dict) else None
    if not isinstance(key, str) or not key:
        raise BadRequest("Malformed request body: 'key' is required.")
    with svc.db.session() as s:
        v = load(s, svc, ctx, volume_id, lock=True)
        meta = dict(v.image_metadata or {})
        if key not in meta:
            raise NotFound(f"Glance metadata for volume {volume_id} with key {key} not found.")
        meta.pop(key)
        v.image_metadata = meta
