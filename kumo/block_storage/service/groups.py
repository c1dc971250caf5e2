"""Generic volume groups (3.11+ group types, 3.13+ groups, 3.14+ group snapshots).

A group is a logical set of volumes of given volume types; its snapshots are one snapshot per
volume taken together. Groups hold no data themselves, so they are available at once; a group
snapshot's status follows its member snapshots unless an operator reset it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, Conflict, NotFound, invalid_status
from kumo.block_storage.models import Group, GroupSnapshot, GroupType, Snapshot, Volume, VolumeType
from kumo.block_storage.service import listing, quotas
from kumo.block_storage.service import snapshots as snaps
from kumo.block_storage.service import types as vtypes
from kumo.block_storage.service import volumes as vols
from kumo.block_storage.service.core import BlockStorageService, is_uuid, new_uuid, now
from kumo.block_storage.service.validate import action_body, boolean, check_metadata, string_field
from kumo.common.context import RequestContext
from kumo.common.microversion import APIVersion

GROUP_STATUSES = ("available", "creating", "deleting", "error", "updating", "error_deleting", "in-use")


# --- group types ---------------------------------------------------------------------------------


def _gtype(s: Session, svc: BlockStorageService, ctx: RequestContext, ref: str) -> GroupType:
    t = s.get(GroupType, ref) if is_uuid(ref) else None
    if t is None:
        t = s.execute(select(GroupType).where(GroupType.name == ref)).scalar_one_or_none()
    if t is None or (not t.is_public and not svc.is_admin(ctx)):
        raise NotFound(f"Group type {ref} could not be found.")
    return t


def list_group_types(svc: BlockStorageService, ctx: RequestContext, query: Any) -> list[GroupType]:
    with svc.db.reader() as s:
        rows = list(s.execute(select(GroupType).order_by(GroupType.created_at)).scalars())
    flag = query.get("is_public")
    if svc.is_admin(ctx) and flag is not None and flag.lower() != "none":
        want = boolean(flag, "is_public")
        rows = [t for t in rows if t.is_public == want]
    elif not svc.is_admin(ctx) or flag is None:
        rows = [t for t in rows if t.is_public]
    if query.get("sort") or query.get("sort_key") or query.get("sort_dir"):
        pairs = listing.parse_sort(query, {"id", "name", "is_public", "description", "created_at"}, default="name")
        rows = listing.sort_rows(rows, pairs, getattr)
    return rows


def get_group_type(svc: BlockStorageService, ctx: RequestContext, ref: str) -> GroupType:
    with svc.db.reader() as s:
        if ref == "default":
            t = s.execute(select(GroupType).where(GroupType.name == "default_group_type")).scalar_one_or_none()
            if t is None:
                raise NotFound("Default group type could not be found.")
            return t
        return _gtype(s, svc, ctx, ref)


def create_group_type(svc: BlockStorageService, ctx: RequestContext, body: Any) -> GroupType:
    svc.require_admin(ctx, "group:group_types:create")
    gt = body.get("group_type") if isinstance(body, dict) else None
    if not isinstance(gt, dict):
        raise BadRequest("Missing required element 'group_type' in request body.")
    name = string_field(gt.get("name"), "name", required=True)
    if not name or not name.strip():
        raise BadRequest("Group type name can not be empty.")
    with svc.db.session() as s:
        if s.execute(select(GroupType).where(GroupType.name == name)).scalar_one_or_none():
            raise Conflict(f"Group Type {name} already exists.")
        t = GroupType(id=new_uuid(), name=name, description=string_field(gt.get("description"), "description",
                                                                         maximum=65535),
                      is_public=boolean(gt.get("is_public", True), "is_public"),
                      group_specs=check_metadata(gt.get("group_specs"), "group_specs"), created_at=now())
        s.add(t)
    return t


def update_group_type(svc: BlockStorageService, ctx: RequestContext, ref: str, body: Any) -> GroupType:
    svc.require_admin(ctx, "group:group_types:update")
    gt = body.get("group_type") if isinstance(body, dict) else None
    if not isinstance(gt, dict) or not gt:
        raise BadRequest("Missing required element 'group_type' in request body.")
    with svc.db.session() as s:
        t = _gtype(s, svc, ctx, ref)
        if "name" in gt:
            name = string_field(gt["name"], "name")
            if not name or not name.strip():
                raise BadRequest("Group type name can not be empty.")
            if name != t.name and s.execute(select(GroupType).where(GroupType.name == name)).scalar_one_or_none():
                raise Conflict(f"Group Type {name} already exists.")
            t.name = name
        if "description" in gt:
            t.description = string_field(gt["description"], "description", maximum=65535)
        if "is_public" in gt:
            t.is_public = boolean(gt["is_public"], "is_public")
    return t


def delete_group_type(svc: BlockStorageService, ctx: RequestContext, ref: str) -> None:
    svc.require_admin(ctx, "group:group_types:delete")
    with svc.db.session() as s:
        t = _gtype(s, svc, ctx, ref)
        if s.execute(select(Group.id).where(Group.group_type_id == t.id).limit(1)).first():
            raise BadRequest(f"Group type {t.id} is still in use.")
        s.delete(t)


def set_group_specs(svc: BlockStorageService, ctx: RequestContext, ref: str, specs: Any) -> dict[str, str]:
    svc.require_admin(ctx, "group:group_types_specs")
    if not isinstance(specs, dict) or not specs:
        raise BadRequest("Malformed request body: group specs are required.")
    values = check_metadata(specs, "group_specs")
    with svc.db.session() as s:
        t = _gtype(s, svc, ctx, ref)
        t.group_specs = {**(t.group_specs or {}), **values}
    return values


def delete_group_spec(svc: BlockStorageService, ctx: RequestContext, ref: str, key: str) -> None:
    svc.require_admin(ctx, "group:group_types_specs")
    with svc.db.session() as s:
        t = _gtype(s, svc, ctx, ref)
        specs = dict(t.group_specs or {})
        if key not in specs:
            raise NotFound(f"Group type {ref} has no specs with key {key}.")
        specs.pop(key)
        t.group_specs = specs


# --- groups ----------------------------------------------------------------------------------------


def _group(s: Session, svc: BlockStorageService, ctx: RequestContext, group_id: str) -> Group:
    g = s.get(Group, group_id) if is_uuid(group_id) else None
    if g is None or (g.project_id != ctx.project_id and not svc.is_admin(ctx)):
        raise NotFound(f"Group {group_id} could not be found.")
    return g


def members(s: Session, group_id: str) -> list[Volume]:
    return list(s.execute(select(Volume).where(Volume.group_id == group_id).order_by(Volume.seq)).scalars())


def get_group(svc: BlockStorageService, ctx: RequestContext, group_id: str) -> tuple[Group, list[str]]:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    with svc.db.reader() as s:
        g = _group(s, svc, ctx, group_id)
        return g, [v.id for v in members(s, g.id)]


def list_groups(svc: BlockStorageService, ctx: RequestContext, query: Any) -> list[tuple[Group, list[str]]]:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    with svc.db.reader() as s:
        q = select(Group).order_by(Group.created_at.desc())
        if not (svc.is_admin(ctx) and str(query.get("all_tenants", "0")).lower() in ("1", "true")):
            q = q.where(Group.project_id == (ctx.project_id or ""))
        return [(g, [v.id for v in members(s, g.id)]) for g in s.execute(q).scalars()]


def _volume_types(s: Session, svc: BlockStorageService, ctx: RequestContext, refs: Any) -> list[str]:
    if isinstance(refs, str):
        refs = [r for r in refs.split(",") if r]
    if not isinstance(refs, list) or not refs:
        raise BadRequest("volume_types must be provided to create group.")
    return [vtypes.find(s, svc, ctx, str(r)).id for r in refs]


def create_group(svc: BlockStorageService, ctx: RequestContext, body: Any) -> Group:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    g = body.get("group") if isinstance(body, dict) else None
    if not isinstance(g, dict):
        raise BadRequest("Missing required element 'group' in request body.")
    if not g.get("group_type"):
        raise BadRequest("group_type must be provided to create group.")
    zone = g.get("availability_zone") or svc.settings.zone
    if zone != svc.settings.zone:
        raise BadRequest(f"Availability zone '{zone}' is invalid.")
    with svc.db.session() as s:
        gt = _gtype(s, svc, ctx, str(g["group_type"]))
        types = _volume_types(s, svc, ctx, g.get("volume_types"))
        row = Group(id=new_uuid(), project_id=ctx.project_id or "", user_id=ctx.user_id or "",
                    name=string_field(g.get("name"), "name"),
                    description=string_field(g.get("description"), "description", maximum=65535),
                    status="available", availability_zone=zone, group_type_id=gt.id, volume_type_ids=types,
                    created_at=now())
        s.add(row)
    return row


def _volume_ids(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise BadRequest("add_volumes and remove_volumes are comma separated volume ids.")
    return [v.strip() for v in value.split(",") if v.strip()]


def update_group(svc: BlockStorageService, ctx: RequestContext, group_id: str, body: Any) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    g = body.get("group") if isinstance(body, dict) else None
    if not isinstance(g, dict) or not any(k in g for k in ("name", "description", "add_volumes", "remove_volumes")):
        raise BadRequest("Name, description, add_volumes, and remove_volumes can not be all empty in the request body.")
    with svc.db.session() as s:
        grp = _group(s, svc, ctx, group_id)
        if grp.status != "available":
            raise invalid_status("group", grp.id, grp.status, "update")
        if "name" in g:
            grp.name = string_field(g["name"], "name")
        if "description" in g:
            grp.description = string_field(g["description"], "description", maximum=65535)
        for vid in _volume_ids(g.get("add_volumes")):
            v = vols.load(s, svc, ctx, vid, lock=True)
            if v.group_id and v.group_id != grp.id:
                raise BadRequest(f"Invalid volume: Volume {vid} is already in group {v.group_id}.")
            if v.volume_type_id not in grp.volume_type_ids:
                raise BadRequest(f"Invalid volume: Volume {vid}'s type is not supported by group {grp.id}.")
            if v.status not in ("available", "in-use"):
                raise invalid_status("volume", v.id, v.status, "add to a group")
            v.group_id = grp.id
        for vid in _volume_ids(g.get("remove_volumes")):
            v = vols.load(s, svc, ctx, vid, lock=True)
            if v.group_id != grp.id:
                raise BadRequest(f"Invalid volume: Volume {vid} is not in group {grp.id}.")
            v.group_id = None


def group_action(svc: BlockStorageService, ctx: RequestContext, group_id: str, body: Any) -> None:
    name, args = action_body(body)
    if name == "delete":
        delete_volumes = boolean((args or {}).get("delete-volumes", False), "delete-volumes") \
            if isinstance(args, dict) or args is None else False
        _delete_group(svc, ctx, group_id, delete_volumes)
        return
    if name == "reset_status":
        svc.require_admin(ctx, "group:reset_status")
        status = args.get("status") if isinstance(args, dict) else None
        if status not in GROUP_STATUSES:
            raise BadRequest(f"Must specify a valid status: {status} is not one.")
        with svc.db.session() as s:
            _group(s, svc, ctx, group_id).status = status
        return
    with svc.db.reader() as s:
        _group(s, svc, ctx, group_id)
    raise BadRequest(f"There is no such action: {name}")


def _delete_group(svc: BlockStorageService, ctx: RequestContext, group_id: str, delete_volumes: bool) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    with svc.db.session() as s:
        grp = _group(s, svc, ctx, group_id)
        vol_rows = members(s, grp.id)
        if vol_rows and not delete_volumes:
            raise BadRequest(f"Invalid group: group {grp.id} still contains volumes; delete them with it.")
        if s.execute(select(GroupSnapshot.id).where(GroupSnapshot.group_id == grp.id).limit(1)).first():
            raise BadRequest(f"Invalid group: group {grp.id} has group snapshots.")
        for v in vol_rows:
            if v.status not in vols.DELETABLE or v.attach_status == "attached":
                raise invalid_status("volume", v.id, v.status, "delete with its group")
            if s.execute(select(Snapshot.id).where(Snapshot.volume_id == v.id).limit(1)).first():
                raise BadRequest(f"Invalid volume: Volume {v.id} has snapshots.")
        ids = [v.id for v in vol_rows]
        s.delete(grp)
    for vid in ids:
        vols.delete_volume(svc, ctx, vid)


def create_from_source(svc: BlockStorageService, ctx: RequestContext, body: Any, mv: APIVersion) -> Group:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    src = body.get("create-from-src") if isinstance(body, dict) else None
    if not isinstance(src, dict) or not (src.get("group_snapshot_id") or src.get("source_group_id")):
        raise BadRequest("Either 'group_snapshot_id' or 'source_group_id' must be provided.")
    if src.get("group_snapshot_id") and src.get("source_group_id"):
        raise BadRequest("Only one of 'group_snapshot_id' or 'source_group_id' may be provided.")
    with svc.db.reader() as s:
        if src.get("group_snapshot_id"):
            gs = _gsnap(s, svc, ctx, str(src["group_snapshot_id"]))
            base = _group(s, svc, ctx, gs.group_id)
            sources = [("snapshot_id", x.id) for x in s.execute(
                select(Snapshot).where(Snapshot.group_snapshot_id == gs.id).order_by(Snapshot.seq)).scalars()]
        else:
            base = _group(s, svc, ctx, str(src["source_group_id"]))
            gs = None
            sources = [("source_volid", v.id) for v in members(s, base.id)]
    with svc.db.session() as s:
        grp = Group(id=new_uuid(), project_id=ctx.project_id or "", user_id=ctx.user_id or "",
                    name=string_field(src.get("name"), "name"),
                    description=string_field(src.get("description"), "description", maximum=65535),
                    status="available", availability_zone=base.availability_zone, group_type_id=base.group_type_id,
                    volume_type_ids=list(base.volume_type_ids), group_snapshot_id=gs.id if gs else None,
                    source_group_id=None if gs else base.id, created_at=now())
        s.add(grp)
    for key, sid in sources:
        v = vols.create_volume(svc, ctx, {"volume": {key: sid}})
        with svc.db.session() as s:
            row = s.get(Volume, v.id)
            if row is not None:
                row.group_id = grp.id
    return grp


# --- group snapshots -------------------------------------------------------------------------------


def _gsnap(s: Session, svc: BlockStorageService, ctx: RequestContext, gs_id: str) -> GroupSnapshot:
    gs = s.get(GroupSnapshot, gs_id) if is_uuid(gs_id) else None
    if gs is None or (gs.project_id != ctx.project_id and not svc.is_admin(ctx)):
        raise NotFound(f"GroupSnapshot {gs_id} could not be found.")
    return gs


def gsnap_status(s: Session, gs: GroupSnapshot) -> str:
    if gs.status:
        return gs.status
    states = {x.status for x in s.execute(select(Snapshot).where(Snapshot.group_snapshot_id == gs.id)).scalars()}
    if not states or states == {"available"}:
        return "available"
    if states & {"error"}:
        return "error"
    if states & {"deleting", "error_deleting"}:
        return "deleting"
    return "creating"


def create_group_snapshot(svc: BlockStorageService, ctx: RequestContext, body: Any, mv: APIVersion) -> GroupSnapshot:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    gs = body.get("group_snapshot") if isinstance(body, dict) else None
    if not isinstance(gs, dict) or not gs.get("group_id"):
        raise BadRequest("Missing required element 'group_id' in request body.")
    with svc.db.session() as s:
        grp = _group(s, svc, ctx, str(gs["group_id"]))
        vol_rows = members(s, grp.id)
        if not vol_rows:
            raise BadRequest(f"Invalid group: group {grp.id} has no volumes to snapshot.")
        for v in vol_rows:
            if v.status not in ("available", "in-use"):
                raise invalid_status("volume", v.id, v.status, "snapshot with its group")
        vt_names = {t.id: t.name for t in s.execute(select(VolumeType)).scalars()}
        quotas.check(svc, s, grp.project_id, snapshots=len(vol_rows), gigabytes=sum(v.size for v in vol_rows))
        del vt_names
        row = GroupSnapshot(id=new_uuid(), project_id=grp.project_id, group_id=grp.id,
                            group_type_id=grp.group_type_id, name=string_field(gs.get("name"), "name"),
                            description=string_field(gs.get("description"), "description", maximum=65535),
                            status=None, created_at=now())
        s.add(row)
        for v in vol_rows:
            snap = Snapshot(id=new_uuid(), seq=svc.next_seq(s, "snapshot"), project_id=v.project_id,
                            user_id=ctx.user_id or "", volume_id=v.id, name=f"snapshot-{row.id}", description=None,
                            size=v.size, status="creating", progress="0%", metadata_={}, host=v.host,
                            group_snapshot_id=row.id, created_at=now())
            snap.task = vols.next_task(svc, s, "create")
            s.add(snap)
    svc.wake_agents()
    return row


def get_group_snapshot(svc: BlockStorageService, ctx: RequestContext, gs_id: str) -> tuple[GroupSnapshot, str]:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    with svc.db.reader() as s:
        gs = _gsnap(s, svc, ctx, gs_id)
        return gs, gsnap_status(s, gs)


def list_group_snapshots(svc: BlockStorageService, ctx: RequestContext, query: Any) -> list[tuple[GroupSnapshot, str]]:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    with svc.db.reader() as s:
        q = select(GroupSnapshot).order_by(GroupSnapshot.created_at.desc())
        if not (svc.is_admin(ctx) and str(query.get("all_tenants", "0")).lower() in ("1", "true")):
            q = q.where(GroupSnapshot.project_id == (ctx.project_id or ""))
        rows = [(gs, gsnap_status(s, gs)) for gs in s.execute(q).scalars()]
    if query.get("group_id"):
        rows = [r for r in rows if r[0].group_id == query["group_id"]]
    return rows


def delete_group_snapshot(svc: BlockStorageService, ctx: RequestContext, gs_id: str) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    with svc.db.session() as s:
        gs = _gsnap(s, svc, ctx, gs_id)
        status = gsnap_status(s, gs)
        if status not in ("available", "error"):
            raise invalid_status("group snapshot", gs.id, status, "delete")
        ids = [x.id for x in s.execute(select(Snapshot).where(Snapshot.group_snapshot_id == gs.id)).scalars()]
        s.delete(gs)
    for sid in ids:
        snaps.delete_snapshot(svc, ctx, sid, force=True)


def reset_group_snapshot(svc: BlockStorageService, ctx: RequestContext, gs_id: str, body: Any) -> None:
    name, args = action_body(body)
    if name != "reset_status":
        raise BadRequest(f"There is no such action: {name}")
    svc.require_admin(ctx, "group:reset_group_snapshot_status")
    status = args.get("status") if isinstance(args, dict) else None
    if status not in ("available", "creating", "deleting", "error", "error_deleting"):
        raise BadRequest(f"Must specify a valid status: {status} is not one.")
    with svc.db.session() as s:
        _gsnap(s, svc, ctx, gs_id).status = status
