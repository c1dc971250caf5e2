"""Snapshots: create (a point-in-time copy on the volume's host), list, show, update, delete,
metadata and the admin status actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, NotFound, invalid_status
from kumo.block_storage.models import Snapshot, Volume, VolumeType
from kumo.block_storage.service import listing, quotas
from kumo.block_storage.service import volumes as vols
from kumo.block_storage.service.core import BlockStorageService, is_uuid, new_uuid, now
from kumo.block_storage.service.validate import action_body, boolean, check_metadata, string_field
from kumo.common.context import RequestContext
from kumo.common.microversion import APIVersion

STATUSES = ("creating", "available", "deleting", "error", "error_deleting", "unmanaging", "backing-up", "restoring")
SORT_KEYS = {"id", "name", "status", "size", "created_at", "updated_at", "volume_id", "display_name"}


def snapshot_not_found(snapshot_id: str) -> NotFound:
    return NotFound(f"Snapshot {snapshot_id} could not be found.")


def load(s: Session, svc: BlockStorageService, ctx: RequestContext, snapshot_id: str) -> Snapshot:
    snap = s.get(Snapshot, snapshot_id) if is_uuid(snapshot_id) else None
    if snap is None or (snap.project_id != ctx.project_id and not svc.is_admin(ctx)):
        raise snapshot_not_found(snapshot_id)
    return snap


def get_snapshot(svc: BlockStorageService, ctx: RequestContext, snapshot_id: str) -> Snapshot:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    with svc.db.reader() as s:
        return load(s, svc, ctx, snapshot_id)


def create_snapshot(svc: BlockStorageService, ctx: RequestContext, body: Any, mv: APIVersion) -> Snapshot:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    sn = body.get("snapshot") if isinstance(body, dict) else None
    if not isinstance(sn, dict):
        raise BadRequest("Missing required element 'snapshot' in request body.")
    volume_id = sn.get("volume_id")
    if volume_id is not None and not isinstance(volume_id, str):
        raise BadRequest("Invalid input: 'volume_id' must be a string.")
    if not volume_id:  # Cinder looks the (absent) volume up: 404
        raise NotFound("Volume None could not be found.")
    name = string_field(sn.get("name", sn.get("display_name")), "name")
    description = string_field(sn.get("description", sn.get("display_description")), "description", maximum=65535)
    force = boolean(sn.get("force", False), "force")
    metadata = check_metadata(sn.get("metadata"))
    with svc.db.session() as s:
        try:
            v = vols.load(s, svc, ctx, volume_id, lock=True)
        except NotFound:
            raise NotFound(f"Volume {volume_id} could not be found.") from None
        allowed = ("available", "in-use") if force or mv.matches("3.66") else ("available",)
        if v.status not in allowed:
            raise invalid_status("volume", v.id, v.status, "create a snapshot")
        vtype = s.get(VolumeType, v.volume_type_id) if v.volume_type_id else None
        quotas.check(svc, s, v.project_id, snapshots=1, gigabytes=v.size, type_name=vtype.name if vtype else None)
        snap = Snapshot(
            id=new_uuid(), seq=svc.next_seq(s, "snapshot"), project_id=v.project_id, user_id=ctx.user_id or "",
            volume_id=v.id, name=name, description=description, size=v.size, status="creating", progress="0%",
            metadata_=metadata, host=v.host, created_at=now(),
        )
        snap.task = vols.next_task(svc, s, "create")
        s.add(snap)
    svc.wake_agents()
    return snap


def list_snapshots(svc: BlockStorageService, ctx: RequestContext, query: Any) -> list[Snapshot]:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    admin = svc.is_admin(ctx)
    all_tenants = admin and str(query.get("all_tenants", "0")).lower() in ("1", "true", "yes")
    with svc.db.reader() as s:
        q = select(Snapshot)
        if admin and query.get("project_id"):
            q = q.where(Snapshot.project_id == query["project_id"])
        elif not all_tenants:
            q = q.where(Snapshot.project_id == (ctx.project_id or ""))
        rows = list(s.execute(q).scalars())
    for key, raw in query.multi_items():
        if key in ("name", "display_name"):
            rows = [x for x in rows if x.name == raw]
        elif key in ("status", "volume_id", "id"):
            rows = [x for x in rows if getattr(x, key) == raw]
        elif key == "metadata":
            want = listing.literal_dict(raw, "metadata")
            rows = [x for x in rows if all((x.metadata_ or {}).get(k) == str(v) for k, v in want.items())]
    pairs = listing.parse_sort(query, SORT_KEYS)
    return listing.sort_rows(rows, pairs, lambda x, k: getattr(x, "name" if k == "display_name" else k))


def update_snapshot(svc: BlockStorageService, ctx: RequestContext, snapshot_id: str, body: Any) -> Snapshot:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    u = body.get("snapshot") if isinstance(body, dict) else None
    if not isinstance(u, dict):
        raise BadRequest("Missing required element 'snapshot' in request body.")
    bad = set(u) - {"name", "description", "display_name", "display_description"}
    if bad or not u:
        raise BadRequest(f"Invalid input: unexpected properties {', '.join(sorted(bad)) or '(none given)'}.")
    with svc.db.session() as s:
        snap = load(s, svc, ctx, snapshot_id)
        if "name" in u or "display_name" in u:
            snap.name = string_field(u.get("name", u.get("display_name")), "name")
        if "description" in u or "display_description" in u:
            snap.description = string_field(u.get("description", u.get("display_description")), "description",
                                             maximum=65535)
        snap.updated_at = now()
    return snap


def delete_snapshot(svc: BlockStorageService, ctx: RequestContext, snapshot_id: str, *, force: bool = False) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    with svc.db.session() as s:
        snap = load(s, svc, ctx, snapshot_id)
        if not force and snap.status not in ("available", "error"):
            raise invalid_status("snapshot", snap.id, snap.status, "delete")
        dependents = s.execute(select(Volume.id).where(Volume.snapshot_id == snap.id,
                                                       Volume.status == "creating")).first()
        if dependents and not force:
            raise BadRequest(f"Invalid snapshot: Snapshot {snap.id} is being used to create a volume.")
        if snap.host is None:
            s.delete(snap)
        else:
            snap.status = "deleting"
            snap.task = vols.next_task(svc, s, "delete")
            snap.updated_at = now()
    svc.wake_agents()


def set_metadata(svc: BlockStorageService, ctx: RequestContext, snapshot_id: str, body: Any, *,
                 replace: bool) -> dict[str, str]:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    if not isinstance(body, dict) or "metadata" not in body:
        raise BadRequest("Malformed request body: 'metadata' is required.")
    meta = check_metadata(body["metadata"])
    with svc.db.session() as s:
        snap = load(s, svc, ctx, snapshot_id)
        snap.metadata_ = meta if replace else {**(snap.metadata_ or {}), **meta}
        return dict(snap.metadata_)


def set_metadata_item(svc: BlockStorageService, ctx: RequestContext, snapshot_id: str, key: str,
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
        snap = load(s, svc, ctx, snapshot_id)
        snap.metadata_ = {**(snap.metadata_ or {}), **meta}
    return meta


def delete_metadata_item(svc: BlockStorageService, ctx: RequestContext, snapshot_id: str, key: str) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    with svc.db.session() as s:
        snap = load(s, svc, ctx, snapshot_id)
        meta = dict(snap.metadata_ or {})
        if key not in meta:
            raise NotFound(f"Snapshot {snapshot_id} has no metadata with key {key}.")
        meta.pop(key)
        snap.metadata_ = meta


def action(svc: BlockStorageService, ctx: RequestContext, snapshot_id: str, body: Any) -> None:
    name, args = action_body(body)
    if name == "os-force_delete":
        svc.require_admin(ctx, "volume_extension:snapshot_admin_actions:force_delete")
        delete_snapshot(svc, ctx, snapshot_id, force=True)
        return
    if name == "os-reset_status":
        svc.require_admin(ctx, "volume_extension:snapshot_admin_actions:reset_status")
        status = args.get("status") if isinstance(args, dict) else None
        if status not in STATUSES:
            raise BadRequest(f"Must specify a valid status: {status} is not one.")
        with svc.db.session() as s:
            snap = load(s, svc, ctx, snapshot_id)
            snap.status = status
            if snap.task and status not in ("creating", "deleting"):
                snap.task = None
            snap.updated_at = now()
        return
    if name == "os-update_snapshot_status":
        svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
        if not isinstance(args, dict) or args.get("status") not in ("available", "error", "creating", "deleting",
                                                                     "error_deleting"):
            raise BadRequest("Must specify a valid status.")
        with svc.db.session() as s:
            snap = load(s, svc, ctx, snapshot_id)
            transitions = {"creating": ("creating", "available", "error"), "deleting": ("deleting", "error_deleting")}
            if args["status"] not in transitions.get(snap.status, (args["status"],)):
                raise BadRequest(f"Provided snapshot status {args['status']} not allowed for snapshot with status "
                                 f"{snap.status}.")
            snap.status = args["status"]
            if "progress" in args:
                snap.progress = str(args["progress"])
            snap.updated_at = now()
        return
    with svc.db.reader() as s:
        load(s, svc, ctx, snapshot_id)
    raise BadRequest(f"There is no such action: {name}")
