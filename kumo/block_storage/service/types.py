"""Volume types, their extra specs and access lists; the default type."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, Conflict, NotFound
from kumo.block_storage.models import QosSpec, Volume, VolumeType
from kumo.block_storage.service.core import BlockStorageService, is_uuid, new_uuid, now
from kumo.block_storage.service.validate import check_metadata, string_field
from kumo.common.context import RequestContext


def type_not_found(type_id: str) -> NotFound:
    return NotFound(f"Volume type {type_id} could not be found.")


def bootstrap(svc: BlockStorageService) -> None:
    """Create the default volume type (upstream's ``__DEFAULT__``) when it is missing."""
    name = svc.settings.default_volume_type
    with svc.db.session() as s:
        if s.execute(select(VolumeType).where(VolumeType.name == name)).scalar_one_or_none() is None:
            s.add(VolumeType(id=new_uuid(), name=name, description="Default Volume Type", is_public=True,
                             extra_specs={}, access=[], created_at=now()))


def visible(svc: BlockStorageService, ctx: RequestContext, t: VolumeType) -> bool:
    return t.is_public or svc.is_admin(ctx) or (ctx.project_id in (t.access or []))


def find(s: Session, svc: BlockStorageService, ctx: RequestContext, ref: str, *, by_name: bool = True) -> VolumeType:
    t = s.get(VolumeType, ref) if is_uuid(ref) else None
    if t is None and by_name:
        t = s.execute(select(VolumeType).where(VolumeType.name == ref)).scalar_one_or_none()
    if t is None or not visible(svc, ctx, t):
        raise type_not_found(ref)
    return t


def default_type(s: Session, svc: BlockStorageService) -> VolumeType | None:
    return s.execute(select(VolumeType).where(VolumeType.name == svc.settings.default_volume_type)).scalar_one_or_none()


def list_types(svc: BlockStorageService, ctx: RequestContext, query: Any) -> list[VolumeType]:
    with svc.db.reader() as s:
        rows = list(s.execute(select(VolumeType).order_by(VolumeType.created_at, VolumeType.name)).scalars())
    admin = svc.is_admin(ctx)
    flag = query.get("is_public")
    if admin and flag is not None and flag.lower() == "none":
        pass
    elif admin and flag is not None:
        want = flag.lower() in ("true", "1", "yes", "t", "on")
        rows = [t for t in rows if t.is_public == want]
    elif admin:
        rows = [t for t in rows if t.is_public]
    else:
        rows = [t for t in rows if visible(svc, ctx, t)]
    if "extra_specs" in query:
        import ast

        try:
            wanted = ast.literal_eval(query["extra_specs"])
        except (ValueError, SyntaxError):
            raise BadRequest("Invalid filter extra_specs.") from None
        if not isinstance(wanted, dict):
            raise BadRequest("Invalid filter extra_specs.")
        rows = [t for t in rows if all((t.extra_specs or {}).get(k) == str(v) for k, v in wanted.items())]
    if query.get("sort") or query.get("sort_key") or query.get("sort_dir"):
        from kumo.block_storage.service.listing import parse_sort, sort_rows

        pairs = parse_sort(query, {"id", "name", "is_public", "description", "created_at"}, default="name")
        rows = sort_rows(rows, pairs, getattr)
    return rows


def get_type(svc: BlockStorageService, ctx: RequestContext, type_id: str) -> VolumeType:
    with svc.db.reader() as s:
        if type_id == "default":
            t = default_type(s, svc)
            if t is None:
                raise type_not_found(type_id)
            return t
        return find(s, svc, ctx, type_id, by_name=False) if is_uuid(type_id) else find(s, svc, ctx, type_id)


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "t", "f", "on", "off"):
        return value.lower() in ("true", "1", "yes", "t", "on")
    raise BadRequest(f"Invalid value '{value}' for {name}: must be a boolean.")


def create_type(svc: BlockStorageService, ctx: RequestContext, body: Any) -> VolumeType:
    svc.require_admin(ctx, "volume_extension:types_manage")
    if not isinstance(body, dict) or not isinstance(body.get("volume_type"), dict):
        raise BadRequest("Missing required element 'volume_type' in request body.")
    vt = body["volume_type"]
    name = string_field(vt.get("name"), "name", required=True)
    assert name is not None
    if not name.strip():
        raise BadRequest("Volume type name can not be empty.")
    desc = string_field(vt.get("description"), "description", maximum=65535)
    is_public = _flag(vt.get("os-volume-type-access:is_public", vt.get("is_public", True)), "is_public")
    specs = check_metadata(vt.get("extra_specs") or {}, "extra_specs")
    with svc.db.session() as s:
        if s.execute(select(VolumeType).where(VolumeType.name == name)).scalar_one_or_none():
            raise Conflict(f"Volume Type {name} already exists.")
        t = VolumeType(id=new_uuid(), name=name, description=desc, is_public=is_public, extra_specs=specs,
                       access=[], created_at=now())
        s.add(t)
    return t


def update_type(svc: BlockStorageService, ctx: RequestContext, type_id: str, body: Any) -> VolumeType:
    svc.require_admin(ctx, "volume_extension:types_manage")
    if not isinstance(body, dict) or not isinstance(body.get("volume_type"), dict):
        raise BadRequest("Missing required element 'volume_type' in request body.")
    vt = body["volume_type"]
    if not any(k in vt for k in ("name", "description", "is_public")):
        raise BadRequest("Specify volume type name, description, is_public or a combination thereof.")
    with svc.db.session() as s:
        t = find(s, svc, ctx, type_id, by_name=False)
        if "name" in vt:
            name = string_field(vt["name"], "name")
            if not name or not name.strip():
                raise BadRequest("Volume type name can not be empty.")
            if name != t.name:
                if t.name == svc.settings.default_volume_type:
                    raise BadRequest("The default volume type cannot be renamed.")
                if s.execute(select(VolumeType).where(VolumeType.name == name)).scalar_one_or_none():
                    raise Conflict(f"Volume Type {name} already exists.")
                t.name = name
        if "description" in vt:
            t.description = string_field(vt["description"], "description", maximum=65535)
        if "is_public" in vt:
            t.is_public = _flag(vt["is_public"], "is_public")
        t.updated_at = now()
    return t


def delete_type(svc: BlockStorageService, ctx: RequestContext, type_id: str) -> None:
    svc.require_admin(ctx, "volume_extension:types_manage")
    with svc.db.session() as s:
        t = find(s, svc, ctx, type_id, by_name=False)
        if t.name == svc.settings.default_volume_type:
            raise BadRequest("Default volume type can not be deleted.")
        if s.execute(select(Volume.id).where(Volume.volume_type_id == t.id).limit(1)).first():
            raise BadRequest(f"Target volume type {t.id} is still in use.")
        from kumo.block_storage.service.encryption import drop_for_type

        drop_for_type(s, t.id)
        s.delete(t)


def set_extra_specs(svc: BlockStorageService, ctx: RequestContext, type_id: str, body: Any) -> dict[str, str]:
    svc.require_admin(ctx, "volume_extension:types_extra_specs:create")
    if not isinstance(body, dict) or not isinstance(body.get("extra_specs"), dict):
        raise BadRequest("Missing required element 'extra_specs' in request body.")
    specs = check_metadata(body["extra_specs"], "extra_specs")
    with svc.db.session() as s:
        t = find(s, svc, ctx, type_id, by_name=False)
        _check_not_in_use(s, t)
        t.extra_specs = {**(t.extra_specs or {}), **specs}
    return specs


def _check_not_in_use(s: Session, t: VolumeType) -> None:
    del s, t  # extra specs of a type in use may change in kumo (they apply on the next attach)


def update_extra_spec(svc: BlockStorageService, ctx: RequestContext, type_id: str, key: str, body: Any) -> dict[str, str]:
    svc.require_admin(ctx, "volume_extension:types_extra_specs:update")
    if not isinstance(body, dict) or not body:
        raise BadRequest("Malformed request body.")
    if key not in body:
        raise BadRequest("Request body and URI mismatch.")
    if len(body) > 1:
        raise BadRequest("Request body contains too many items.")
    specs = check_metadata(body, "extra_specs")
    with svc.db.session() as s:
        t = find(s, svc, ctx, type_id, by_name=False)
        t.extra_specs = {**(t.extra_specs or {}), **specs}
    return specs


def get_extra_spec(svc: BlockStorageService, ctx: RequestContext, type_id: str, key: str) -> dict[str, str]:
    svc.require_admin(ctx, "volume_extension:types_extra_specs:show")
    t = get_type(svc, ctx, type_id)
    if key not in (t.extra_specs or {}):
        raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
    return {key: t.extra_specs[key]}


def delete_extra_spec(svc: BlockStorageService, ctx: RequestContext, type_id: str, key: str) -> None:
    svc.require_admin(ctx, "volume_extension:types_extra_specs:delete")
    with svc.db.session() as s:
        t = find(s, svc, ctx, type_id, by_name=False)
        specs = dict(t.extra_specs or {})
        if key not in specs:
            raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
        specs.pop(key)
        t.extra_specs = specs


def list_extra_specs(svc: BlockStorageService, ctx: RequestContext, type_id: str) -> dict[str, str]:
    t = get_type(svc, ctx, type_id)
    return dict(t.extra_specs or {}) if svc.is_admin(ctx) else {}


def type_access(svc: BlockStorageService, ctx: RequestContext, type_id: str) -> list[dict[str, str]]:
    svc.require_admin(ctx, "volume_extension:volume_type_access")
    with svc.db.reader() as s:
        t = find(s, svc, ctx, type_id, by_name=False)
    if t.is_public:
        raise NotFound(f"Access list not available for public volume types ({type_id}).")
    return [{"volume_type_id": t.id, "project_id": p} for p in t.access or []]


def modify_access(svc: BlockStorageService, ctx: RequestContext, type_id: str, body: dict[str, Any], add: bool) -> None:
    svc.require_admin(ctx, "volume_extension:volume_type_access:addProjectAccess")
    key = "addProjectAccess" if add else "removeProjectAccess"
    project = (body.get(key) or {}).get("project") if isinstance(body.get(key), dict) else None
    if not isinstance(project, str) or not project:
        raise BadRequest("Missing required element 'project' in request body.")
    with svc.db.session() as s:
        t = find(s, svc, ctx, type_id, by_name=False)
        if t.is_public:
            raise BadRequest("Invalid volume type: Type access modification is not applicable to public volume type.")
        access = list(t.access or [])
        if add:
            if project in access:
                raise Conflict(f"Volume type access for {type_id}/{project} combination already exists.")
            access.append(project)
        else:
            if project not in access:
                raise NotFound(f"Volume type access not found for {type_id}/{project} combination.")
            access.remove(project)
        t.access = access


def qos_of(s: Session, t: VolumeType | None) -> dict[str, str]:
    """The front-end QoS specs of a type (applied as QEMU I/O throttling on attach)."""
    if t is None or not t.qos_specs_id:
        return {}
    q = s.get(QosSpec, t.qos_specs_id)
    if q is None or q.consumer not in ("front-end", "both"):
        return {}
    return dict(q.specs or {})
