"""Volume type encryption specs (``/v3/types/{id}/encryption``), as Cinder keeps them.

The spec says how an attaching host would encrypt volumes of the type. kumo has no key manager
yet, so it records and serves specs but refuses to create a volume of an encrypted type (a clear
400) rather than hand out an unencrypted volume under an encrypted type."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.block_storage.errors import BadRequest, NotFound
from kumo.block_storage.models import Volume, VolumeType, VolumeTypeEncryption
from kumo.block_storage.service.core import BlockStorageService, new_uuid, now
from kumo.common.context import RequestContext

LOCATIONS = ("front-end", "back-end")
FIELDS = ("provider", "cipher", "key_size", "control_location")


def _type(s: Session, type_id: str) -> VolumeType:
    t = s.get(VolumeType, type_id)
    if t is None:
        raise NotFound(f"Volume type {type_id} could not be found.")
    return t


def _spec(s: Session, type_id: str) -> VolumeTypeEncryption | None:
    return s.execute(
        select(VolumeTypeEncryption).where(VolumeTypeEncryption.volume_type_id == type_id)
    ).scalar_one_or_none()


def _in_use(s: Session, type_id: str) -> bool:
    return s.execute(select(Volume.id).where(Volume.volume_type_id == type_id).limit(1)).first() is not None


def _validate(body: Any, *, create: bool) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("encryption"), dict):
        raise BadRequest("Missing required element 'encryption' in request body.")
    enc = body["encryption"]
    unknown = sorted(set(enc) - set(FIELDS))
    if unknown:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(map(repr, unknown))} were unexpected)")
    if create and "provider" not in enc:
        raise BadRequest("Invalid input for field/attribute encryption. 'provider' is a required property")
    out: dict[str, Any] = {}
    if "provider" in enc:
        if not isinstance(enc["provider"], str) or not 0 < len(enc["provider"].strip()) <= 255:
            raise BadRequest("Invalid input for field/attribute provider: a non-empty string of at most 255 characters.")
        out["provider"] = enc["provider"].strip()
    if "cipher" in enc:
        if enc["cipher"] is not None and (not isinstance(enc["cipher"], str) or len(enc["cipher"]) > 255):
            raise BadRequest("Invalid input for field/attribute cipher: a string of at most 255 characters or null.")
        out["cipher"] = enc["cipher"]
    if "key_size" in enc:
        size = enc["key_size"]
        if isinstance(size, str) and size.strip().isdigit():
            size = int(size)
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise BadRequest("Invalid input for field/attribute key_size: a non-negative integer or null.")
        out["key_size"] = size
    if "control_location" in enc:
        if enc["control_location"] not in LOCATIONS:
            raise BadRequest(f"Invalid input for field/attribute control_location: must be one of {list(LOCATIONS)}.")
        out["control_location"] = enc["control_location"]
    if create:
        out.setdefault("control_location", "front-end")
    return out


def get_spec(svc: BlockStorageService, ctx: RequestContext, type_id: str) -> VolumeTypeEncryption | None:
    svc.require_admin(ctx, "volume_extension:volume_type_encryption:get")
    with svc.db.reader() as s:
        _type(s, type_id)
        return _spec(s, type_id)


def get_item(svc: BlockStorageService, ctx: RequestContext, type_id: str, key: str) -> dict[str, Any]:
    spec = get_spec(svc, ctx, type_id)
    if spec is None or key not in FIELDS:
        raise NotFound(f"Volume type encryption for type {type_id} does not exist" if spec is None
                       else f"Volume type encryption spec {key} for type {type_id} does not exist")  # fmt: skip
    return {key: getattr(spec, key)}


def create_spec(svc: BlockStorageService, ctx: RequestContext, type_id: str, body: Any) -> VolumeTypeEncryption:
    svc.require_admin(ctx, "volume_extension:volume_type_encryption:create")
    fields = _validate(body, create=True)
    with svc.db.session() as s:
        _type(s, type_id)
        if _spec(s, type_id) is not None:
            raise BadRequest(f"Volume type encryption for type {type_id} already exists.")
        if _in_use(s, type_id):
            raise BadRequest("Cannot create encryption specs. Volume type in use.")
        spec = VolumeTypeEncryption(encryption_id=new_uuid(), volume_type_id=type_id, created_at=now(), **fields)
        s.add(spec)
    return spec


def update_spec(
    svc: BlockStorageService, ctx: RequestContext, type_id: str, encryption_id: str, body: Any
) -> dict[str, Any]:
    svc.require_admin(ctx, "volume_extension:volume_type_encryption:update")
    fields = _validate(body, create=False)
    with svc.db.session() as s:
        _type(s, type_id)
        spec = _spec(s, type_id)
        if spec is None or spec.encryption_id != encryption_id:
            raise NotFound(f"Volume type encryption for type {type_id} does not exist.")
        if _in_use(s, type_id):
            raise BadRequest("Cannot update encryption specs. Volume type in use.")
        for k, v in fields.items():
            setattr(spec, k, v)
        spec.updated_at = now()
    return fields


def delete_spec(svc: BlockStorageService, ctx: RequestContext, type_id: str, encryption_id: str) -> None:
    svc.require_admin(ctx, "volume_extension:volume_type_encryption:delete")
    with svc.db.session() as s:
        _type(s, type_id)
        spec = _spec(s, type_id)
        if spec is None or spec.encryption_id != encryption_id:
            raise NotFound(f"Volume type encryption for type {type_id} does not exist.")
        if _in_use(s, type_id):
            raise BadRequest("Cannot delete encryption specs. Volume type in use.")
        s.delete(spec)


def drop_for_type(s: Session, type_id: str) -> None:
    """The type is being deleted: its spec goes with it."""
    spec = _spec(s, type_id)
    if spec is not None:
        s.delete(spec)


def refuse_encrypted(s: Session, vtype: VolumeType | None) -> None:
    """No key manager yet: a volume of an encrypted type is refused, never silently unencrypted."""
    if vtype is not None and _spec(s, vtype.id) is not None:
        raise BadRequest(
            f"Volume type {vtype.name} is encrypted, and this cloud has no key manager to create "
            "encrypted volumes with; use a type without encryption."
        )
