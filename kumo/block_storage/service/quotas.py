"""Quotas, quota classes and usage, computed from the resources a project holds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, Forbidden, OverQuota
from kumo.block_storage.models import Backup, Quota, Snapshot, Volume, VolumeType
from kumo.block_storage.service.core import BlockStorageService
from kumo.common.context import RequestContext

BASE = ("volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes", "groups", "per_volume_gigabytes")
PER_TYPE = ("volumes", "snapshots", "gigabytes")
CLASS_PREFIX = "__class__"


def defaults(svc: BlockStorageService, s: Session) -> dict[str, int]:
    st = svc.settings
    out = {
        "volumes": st.quota_volumes,
        "snapshots": st.quota_snapshots,
        "gigabytes": st.quota_gigabytes,
        "backups": st.quota_backups,
        "backup_gigabytes": st.quota_backup_gigabytes,
        "groups": st.quota_groups,
        "per_volume_gigabytes": st.quota_per_volume_gigabytes,
    }
    for name in s.execute(select(VolumeType.name)).scalars():
        for r in PER_TYPE:
            out[f"{r}_{name}"] = -1
    for row in s.execute(select(Quota).where(Quota.project_id == CLASS_PREFIX + "default")).scalars():
        out[row.resource] = row.hard_limit
    return out


def limits(svc: BlockStorageService, s: Session, project_id: str) -> dict[str, int]:
    out = defaults(svc, s)
    for row in s.execute(select(Quota).where(Quota.project_id == project_id)).scalars():
        out[row.resource] = row.hard_limit
    return out


def usage(s: Session, project_id: str) -> dict[str, int]:
    out = dict.fromkeys(BASE, 0)
    vols = s.execute(
        select(Volume.volume_type_id, func.count(Volume.id), func.coalesce(func.sum(Volume.size), 0))
        .where(Volume.project_id == project_id)
        .group_by(Volume.volume_type_id)
    ).all()
    names = dict(s.execute(select(VolumeType.id, VolumeType.name)).all())
    for type_id, count, size in vols:
        out["volumes"] += count
        out["gigabytes"] += int(size)
        if type_id in names:
            out[f"volumes_{names[type_id]}"] = out.get(f"volumes_{names[type_id]}", 0) + count
            out[f"gigabytes_{names[type_id]}"] = out.get(f"gigabytes_{names[type_id]}", 0) + int(size)
    snaps = s.execute(
        select(Volume.volume_type_id, func.count(Snapshot.id), func.coalesce(func.sum(Snapshot.size), 0))
        .join(Volume, Volume.id == Snapshot.volume_id, isouter=True)
        .where(Snapshot.project_id == project_id)
        .group_by(Volume.volume_type_id)
    ).all()
    for type_id, count, size in snaps:
        out["snapshots"] += count
        out["gigabytes"] += int(size)
        if type_id in names:
            out[f"snapshots_{names[type_id]}"] = out.get(f"snapshots_{names[type_id]}", 0) + count
    count, size = s.execute(
        select(func.count(Backup.id), func.coalesce(func.sum(Backup.size), 0)).where(Backup.project_id == project_id)
    ).one()
    out["backups"], out["backup_gigabytes"] = count, int(size)
    return out


def check(
    svc: BlockStorageService,
    s: Session,
    project_id: str,
    *,
    volumes: int = 0,
    gigabytes: int = 0,
    snapshots: int = 0,
    backups: int = 0,
    backup_gigabytes: int = 0,
    type_name: str | None = None,
    volume_size: int | None = None,
) -> None:
    """Raise 413 when adding these amounts would exceed the project's limits."""
    lim = limits(svc, s, project_id)
    if volume_size is not None and lim.get("per_volume_gigabytes", -1) >= 0 and volume_size > lim["per_volume_gigabytes"]:
        raise OverQuota(f"VolumeSizeExceedsLimit: Requested volume size {volume_size}G is larger than maximum "
                        f"allowed limit {lim['per_volume_gigabytes']}G.")
    use = usage(s, project_id)
    wants = {"volumes": volumes, "gigabytes": gigabytes, "snapshots": snapshots, "backups": backups,
             "backup_gigabytes": backup_gigabytes}
    if type_name:
        wants |= {f"volumes_{type_name}": volumes, f"gigabytes_{type_name}": gigabytes,
                  f"snapshots_{type_name}": snapshots}
    for res, amount in wants.items():
        limit = lim.get(res, -1)
        if amount and limit >= 0 and use.get(res, 0) + amount > limit:
            what = res.split("_")[0] if res.startswith(("volumes_", "snapshots_", "gigabytes_")) else res
            if what in ("gigabytes", "backup_gigabytes"):
                raise OverQuota(f"VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
                                f"{res} quota. Requested {amount}G, quota is {limit}G and "
                                f"{use.get(res, 0)}G has been consumed.")
            raise OverQuota(f"Maximum number of {what} allowed ({limit}) exceeded for quota '{res}'.")


def _target(svc: BlockStorageService, ctx: RequestContext, project_id: str) -> None:
    if not svc.is_admin(ctx) and ctx.project_id != project_id:
        raise Forbidden("Policy doesn't allow volume_extension:quotas:show to be performed.")


def show(svc: BlockStorageService, ctx: RequestContext, project_id: str, with_usage: bool = False) -> dict[str, Any]:
    _target(svc, ctx, project_id)
    with svc.db.reader() as s:
        lim = limits(svc, s, project_id)
        use = usage(s, project_id) if with_usage else {}
    if with_usage:
        body: dict[str, Any] = {k: {"limit": v, "in_use": use.get(k, 0), "reserved": 0, "allocated": 0}
                                for k, v in lim.items()}
    else:
        body = dict(lim)
    body["id"] = project_id
    return body


def show_defaults(svc: BlockStorageService, ctx: RequestContext, project_id: str) -> dict[str, Any]:
    with svc.db.reader() as s:
        body: dict[str, Any] = defaults(svc, s)
    body["id"] = project_id
    return body


def _values(body: Any, key: str, known: set[str]) -> dict[str, int]:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"Missing required element '{key}' in request body.")
    out: dict[str, int] = {}
    for k, v in body[key].items():
        if k in ("tenant_id", "id", "class_name"):
            continue
        if k not in known:
            raise BadRequest(f"Bad key(s) in quota set: {k}")
        if isinstance(v, bool):
            raise BadRequest(f"Quota limit for {k} must be an integer.")
        try:
            n = int(v)
        except (TypeError, ValueError):
            raise BadRequest(f"Quota limit for {k} must be an integer.") from None
        if n < -1:
            raise BadRequest(f"Quota limit {n} for {k} must be -1 or greater.")
        out[k] = n
    return out


def update(svc: BlockStorageService, ctx: RequestContext, project_id: str, body: Any) -> dict[str, Any]:
    svc.require_admin(ctx, "volume_extension:quotas:update")
    with svc.db.session() as s:
        known = set(defaults(svc, s))
        values = _values(body, "quota_set", known)
        use = usage(s, project_id)
        for k, n in values.items():
            if n >= 0 and k != "per_volume_gigabytes" and use.get(k, 0) > n:
                raise BadRequest(f"Quota {k} limit must be equal or greater than existing resources. "
                                 f"Current usage is {use.get(k, 0)} and the requested limit is {n}.")
            row = s.get(Quota, (project_id, k))
            if row is None:
                s.add(Quota(project_id=project_id, resource=k, hard_limit=n))
            else:
                row.hard_limit = n
        s.flush()
        return dict(limits(svc, s, project_id))


def delete(svc: BlockStorageService, ctx: RequestContext, project_id: str) -> None:
    svc.require_admin(ctx, "volume_extension:quotas:delete")
    with svc.db.session() as s:
        for row in s.execute(select(Quota).where(Quota.project_id == project_id)).scalars():
            s.delete(row)


def show_class(svc: BlockStorageService, ctx: RequestContext, name: str) -> dict[str, Any]:
    svc.require_admin(ctx, "volume_extension:quota_classes")
    with svc.db.reader() as s:
        body: dict[str, Any] = defaults(svc, s)
        for row in s.execute(select(Quota).where(Quota.project_id == CLASS_PREFIX + name)).scalars():
            body[row.resource] = row.hard_limit
    body["id"] = name
    return body


def update_class(svc: BlockStorageService, ctx: RequestContext, name: str, body: Any) -> dict[str, Any]:
    svc.require_admin(ctx, "volume_extension:quota_classes:update")
    if len(name) > 255:
        raise BadRequest("The quota class name is too long.")
    with svc.db.session() as s:
        values = _values(body, "quota_class_set", set(defaults(svc, s)))
        for k, n in values.items():
            row = s.get(Quota, (CLASS_PREFIX + name, k))
            if row is None:
                s.add(Quota(project_id=CLASS_PREFIX + name, resource=k, hard_limit=n))
            else:
                row.hard_limit = n
    out = show_class(svc, ctx, name)
    out.pop("id", None)
    return out


def absolute_limits(svc: BlockStorageService, ctx: RequestContext) -> dict[str, int]:
    project = ctx.project_id or ""
    with svc.db.reader() as s:
        lim = limits(svc, s, project)
        use = usage(s, project)
    return {
        "maxTotalVolumes": lim["volumes"],
        "maxTotalSnapshots": lim["snapshots"],
        "maxTotalVolumeGigabytes": lim["gigabytes"],
        "maxTotalBackups": lim["backups"],
        "maxTotalBackupGigabytes": lim["backup_gigabytes"],
        "totalVolumesUsed": use["volumes"],
        "totalSnapshotsUsed": use["snapshots"],
        "totalGigabytesUsed": use["gigabytes"],
        "totalBackupsUsed": use["backups"],
        "totalBackupGigabytesUsed": use["backup_gigabytes"],
    }
