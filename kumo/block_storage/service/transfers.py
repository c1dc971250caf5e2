"""Volume transfers: hand a volume to another project with a one-time auth key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, NotFound, invalid_status
from kumo.block_storage.models import Snapshot, Transfer, Volume, VolumeType
from kumo.block_storage.service import quotas
from kumo.block_storage.service import volumes as vols
from kumo.block_storage.service.core import BlockStorageService, is_uuid, new_uuid, now
from kumo.block_storage.service.validate import boolean, string_field
from kumo.common.context import RequestContext


def _hash(salt: str, key: str) -> str:
    return hashlib.sha256((salt + key).encode()).hexdigest()


def transfer_not_found(transfer_id: str) -> NotFound:
    return NotFound(f"Transfer {transfer_id} could not be found.")


def _load(s: Session, svc: BlockStorageService, ctx: RequestContext, transfer_id: str, *, any_project: bool = False
          ) -> Transfer:
    t = s.get(Transfer, transfer_id) if is_uuid(transfer_id) else None
    if t is None or (not any_project and t.project_id != ctx.project_id and not svc.is_admin(ctx)):
        raise transfer_not_found(transfer_id)
    return t


def create(svc: BlockStorageService, ctx: RequestContext, body: Any) -> tuple[Transfer, str]:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    tr = body.get("transfer") if isinstance(body, dict) else None
    if not isinstance(tr, dict):
        raise BadRequest("Missing required element 'transfer' in request body.")
    volume_id = tr.get("volume_id")
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest("Invalid input: 'volume_id' is a required property.")
    name = string_field(tr.get("name"), "name")
    no_snapshots = boolean(tr.get("no_snapshots", False), "no_snapshots")
    key = secrets.token_hex(8)
    salt = secrets.token_hex(8)
    with svc.db.session() as s:
        v = vols.load(s, svc, ctx, volume_id, lock=True)
        if v.status != "available":
            raise invalid_status("volume", v.id, v.status, "transfer")
        if v.project_id != ctx.project_id:
            raise BadRequest("Invalid volume: only the owner can transfer a volume.")
        t = Transfer(id=new_uuid(), volume_id=v.id, project_id=v.project_id, name=name, salt=salt,
                     crypt_hash=_hash(salt, key), no_snapshots=no_snapshots, created_at=now())
        s.add(t)
        v.status = "awaiting-transfer"
        v.updated_at = now()
    return t, key


def get(svc: BlockStorageService, ctx: RequestContext, transfer_id: str) -> Transfer:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    with svc.db.reader() as s:
        return _load(s, svc, ctx, transfer_id)


def list_all(svc: BlockStorageService, ctx: RequestContext, query: Any) -> list[Transfer]:
    svc.enforce(ctx, "volume:read", {"project_id": ctx.project_id})
    admin = svc.is_admin(ctx)
    with svc.db.reader() as s:
        q = select(Transfer).order_by(Transfer.created_at)
        if not (admin and str(query.get("all_tenants", "0")).lower() in ("1", "true")):
            q = q.where(Transfer.project_id == (ctx.project_id or ""))
        rows = list(s.execute(q).scalars())
    if query.get("name"):
        rows = [t for t in rows if t.name == query["name"]]
    if query.get("volume_id"):
        rows = [t for t in rows if t.volume_id == query["volume_id"]]
    return rows


def delete(svc: BlockStorageService, ctx: RequestContext, transfer_id: str) -> None:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    with svc.db.session() as s:
        t = _load(s, svc, ctx, transfer_id)
        v = s.get(Volume, t.volume_id)
        if v is not None and v.status == "awaiting-transfer":
            v.status = "available"
            v.updated_at = now()
        s.delete(t)


def accept(svc: BlockStorageService, ctx: RequestContext, transfer_id: str, body: Any) -> Transfer:
    svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    acc = body.get("accept") if isinstance(body, dict) else None
    if not isinstance(acc, dict) or not isinstance(acc.get("auth_key"), str):
        raise BadRequest("Invalid input: 'auth_key' is a required property of 'accept'.")
    with svc.db.session() as s:
        t = _load(s, svc, ctx, transfer_id, any_project=True)
        if not hmac.compare_digest(t.crypt_hash, _hash(t.salt, acc["auth_key"])):
            raise BadRequest(f"Invalid auth key: Attempt to transfer {t.id} with invalid auth key.")
        v = s.get(Volume, t.volume_id)
        if v is None:
            raise NotFound(f"Volume {t.volume_id} could not be found.")
        if v.status != "awaiting-transfer":
            raise invalid_status("volume", v.id, v.status, "accept a transfer")
        snaps = list(s.execute(select(Snapshot).where(Snapshot.volume_id == v.id)).scalars())
        vtype = s.get(VolumeType, v.volume_type_id) if v.volume_type_id else None
        target = ctx.project_id or ""
        quotas.check(svc, s, target, volumes=1, gigabytes=v.size + sum(x.size for x in snaps if not t.no_snapshots),
                     snapshots=0 if t.no_snapshots else len(snaps), type_name=vtype.name if vtype else None)
        v.project_id, v.user_id, v.status = target, ctx.user_id or "", "available"
        v.updated_at = now()
        for snap in snaps:
            if t.no_snapshots:
                continue
            snap.project_id = target
        result = Transfer(id=t.id, volume_id=t.volume_id, project_id=target, name=t.name, salt="", crypt_hash="",
                          created_at=t.created_at)
        s.delete(t)
    return result
