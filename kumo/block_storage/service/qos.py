"""QoS specs and their associations with volume types (front-end specs become QEMU throttling)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, Conflict, NotFound
from kumo.block_storage.models import QosSpec, VolumeType
from kumo.block_storage.service.core import BlockStorageService, is_uuid, new_uuid, now
from kumo.block_storage.service.validate import boolean, check_metadata
from kumo.common.context import RequestContext

CONSUMERS = ("front-end", "back-end", "both")


def qos_not_found(qos_id: str) -> NotFound:
    return NotFound(f"QoS spec {qos_id} could not be found.")


def _load(s: Session, qos_id: str) -> QosSpec:
    q = s.get(QosSpec, qos_id) if is_uuid(qos_id) else None
    if q is None:
        raise qos_not_found(qos_id)
    return q


def create(svc: BlockStorageService, ctx: RequestContext, body: Any) -> QosSpec:
    svc.require_admin(ctx, "volume_extension:qos_specs_manage:create")
    spec = body.get("qos_specs") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise BadRequest("Missing required element 'qos_specs' in request body.")
    spec = dict(spec)
    name = spec.pop("name", None)
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Please specify a name for QoS specs.")
    consumer = spec.pop("consumer", "back-end")
    if consumer not in CONSUMERS:
        raise BadRequest(f"Invalid QoS specs: consumer {consumer!r} must be one of {', '.join(CONSUMERS)}.")
    specs = check_metadata(spec, "qos_specs")
    with svc.db.session() as s:
        if s.execute(select(QosSpec).where(QosSpec.name == name)).scalar_one_or_none():
            raise Conflict(f"QoS Specs {name} already exists.")
        q = QosSpec(id=new_uuid(), name=name, consumer=consumer, specs=specs, created_at=now())
        s.add(q)
    return q


def list_all(svc: BlockStorageService, ctx: RequestContext) -> list[QosSpec]:
    svc.require_admin(ctx, "volume_extension:qos_specs_manage:get_all")
    with svc.db.reader() as s:
        return list(s.execute(select(QosSpec).order_by(QosSpec.created_at)).scalars())


def show(svc: BlockStorageService, ctx: RequestContext, qos_id: str) -> QosSpec:
    svc.require_admin(ctx, "volume_extension:qos_specs_manage:get")
    with svc.db.reader() as s:
        return _load(s, qos_id)


def set_keys(svc: BlockStorageService, ctx: RequestContext, qos_id: str, body: Any) -> dict[str, str]:
    svc.require_admin(ctx, "volume_extension:qos_specs_manage:update")
    spec = body.get("qos_specs") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise BadRequest("Missing required element 'qos_specs' in request body.")
    spec = dict(spec)
    with svc.db.session() as s:
        q = _load(s, qos_id)
        if "consumer" in spec:
            consumer = spec.pop("consumer")
            if consumer not in CONSUMERS:
                raise BadRequest(f"Invalid QoS specs: consumer {consumer!r} is not valid.")
            q.consumer = consumer
        values = check_metadata(spec, "qos_specs")
        q.specs = {**(q.specs or {}), **values}
    return values


def unset_keys(svc: BlockStorageService, ctx: RequestContext, qos_id: str, body: Any) -> None:
    svc.require_admin(ctx, "volume_extension:qos_specs_manage:update")
    keys = body.get("keys") if isinstance(body, dict) else None
    if not isinstance(keys, list):
        raise BadRequest("Missing required element 'keys' in request body.")
    with svc.db.session() as s:
        q = _load(s, qos_id)
        specs = dict(q.specs or {})
        missing = [k for k in keys if k not in specs]
        if missing:
            raise NotFound(f"QoS spec {qos_id} has no key {missing[0]}.")
        for k in keys:
            specs.pop(k)
        q.specs = specs


def delete(svc: BlockStorageService, ctx: RequestContext, qos_id: str, force: str | None) -> None:
    svc.require_admin(ctx, "volume_extension:qos_specs_manage:delete")
    forced = boolean(force, "force") if force is not None else False
    with svc.db.session() as s:
        q = _load(s, qos_id)
        types = list(s.execute(select(VolumeType).where(VolumeType.qos_specs_id == q.id)).scalars())
        if types and not forced:
            raise BadRequest(f"QoS Specs {qos_id} is still associated with entities.")
        for t in types:
            t.qos_specs_id = None
        s.delete(q)


def associations(svc: BlockStorageService, ctx: RequestContext, qos_id: str) -> list[dict[str, str]]:
    svc.require_admin(ctx, "volume_extension:qos_specs_manage:get")
    with svc.db.reader() as s:
        q = _load(s, qos_id)
        types = s.execute(select(VolumeType).where(VolumeType.qos_specs_id == q.id)).scalars()
        return [{"association_type": "volume_type", "id": t.id, "name": t.name} for t in types]


def _type(s: Session, type_id: str | None) -> VolumeType:
    if not type_id:
        raise BadRequest("Missing required parameter vol_type_id.")
    t = s.get(VolumeType, type_id) if is_uuid(type_id) else None
    if t is None:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return t


def associate(svc: BlockStorageService, ctx: RequestContext, qos_id: str, type_id: str | None) -> None:
    svc.require_admin(ctx, "volume_extension:qos_specs_manage:update")
    with svc.db.session() as s:
        q = _load(s, qos_id)
        t = _type(s, type_id)
        if t.qos_specs_id and t.qos_specs_id != q.id:
            raise BadRequest(f"Volume type {t.id} is already associated with another qos specs: {t.qos_specs_id}")
        t.qos_specs_id = q.id


def disassociate(svc: BlockStorageService, ctx: RequestContext, qos_id: str, type_id: str | None) -> None:
    svc.require_admin(ctx, "volume_extension:qos_specs_manage:update")
    with svc.db.session() as s:
        q = _load(s, qos_id)
        t = _type(s, type_id)
        if t.qos_specs_id != q.id:
            raise BadRequest(f"Volume type {t.id} is not associated with qos specs {q.id}.")
        t.qos_specs_id = None


def disassociate_all(svc: BlockStorageService, ctx: RequestContext, qos_id: str) -> None:
    svc.require_admin(ctx, "volume_extension:qos_specs_manage:update")
    with svc.db.session() as s:
        q = _load(s, qos_id)
        for t in s.execute(select(VolumeType).where(VolumeType.qos_specs_id == q.id)).scalars():
            t.qos_specs_id = None
