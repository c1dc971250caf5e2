"""``POST /volumes/{id}/action``: extend, retype, flags, status resets, upload to image, re-image,
and the legacy attach actions (delegated to :mod:`.attachments`)."""

from __future__ import annotations

from typing import Any

from kumo.block_storage.errors import BadRequest, NotFound, invalid_status
from kumo.block_storage.models import Snapshot, Volume, VolumeType
from kumo.block_storage.service import attachments, encryption, multiattach, peers, quotas
from kumo.block_storage.service import types as vtypes
from kumo.block_storage.service import volumes as vols
from kumo.block_storage.service.core import BlockStorageService, is_uuid, now
from kumo.block_storage.service.validate import action_body, boolean, size_field
from kumo.common.context import RequestContext
from kumo.common.microversion import APIVersion

ADMIN_ACTIONS = {"os-reset_status", "os-force_delete", "os-force_detach", "os-migrate_volume"}
RESET_STATUSES = set(vols.VOLUME_STATUSES)
DISK_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx", "ploop")
CONTAINER_FORMATS = ("bare", "ovf", "ova", "docker", "compressed")


def run(svc: BlockStorageService, ctx: RequestContext, volume_id: str, body: Any, mv: APIVersion) -> Any:
    name, args = action_body(body)
    if name in ADMIN_ACTIONS:
        svc.require_admin(ctx, f"volume_extension:volume_admin_actions:{name[3:]}")
    else:
        svc.enforce(ctx, "volume:write", {"project_id": ctx.project_id})
    handler = HANDLERS.get(name)
    if handler is None:
        vols.get_volume(svc, ctx, volume_id)  # 404 first for an unknown volume
        raise BadRequest(f"There is no such action: {name}")
    return handler(svc, ctx, volume_id, args, mv)


def _extend(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> None:
    if not isinstance(args, dict) or "new_size" not in args:
        raise BadRequest("Invalid input: 'new_size' is a required property.")
    if args["new_size"] is None:
        raise BadRequest("Invalid input for field/attribute new_size. Value: None.")
    new_size = size_field(args["new_size"], "new_size")
    with svc.db.session() as s:
        v = vols.load(s, svc, ctx, volume_id, lock=True)
        # from 3.42 an attached volume grows too; compute is then told (volume-extended) to grow the
        # guest's disk (kumo.block_storage.service.compute_events)
        attached = v.status == "in-use" and mv.matches("3.42")
        if v.status != "available" and not attached:
            raise invalid_status("volume", v.id, v.status, "extend")
        if new_size <= v.size:
            raise BadRequest(f"Invalid input received: New size for extend must be greater than current size. "
                             f"(current: {v.size}, extended: {new_size}).")
        vtype = s.get(VolumeType, v.volume_type_id) if v.volume_type_id else None
        quotas.check(svc, s, v.project_id, gigabytes=new_size - v.size, type_name=vtype.name if vtype else None,
                     volume_size=new_size)
        v.previous_status = v.status
        v.status = "extending"
        v.task = vols.next_task(svc, s, "extend", new_size=new_size, **({"attached": True} if attached else {}))
        v.updated_at = now()
    svc.wake_agents()


def _retype(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> None:
    if not isinstance(args, dict) or not isinstance(args.get("new_type"), str) or not args["new_type"]:
        raise BadRequest("Invalid input: 'new_type' is a required property.")
    policy = args.get("migration_policy", "never")
    if policy not in ("never", "on-demand", None):
        raise BadRequest(f"Invalid migration_policy {policy!r}.")
    with svc.db.session() as s:
        v = vols.load(s, svc, ctx, volume_id, lock=True)
        if v.status not in ("available", "in-use"):
            raise invalid_status("volume", v.id, v.status, "retype")
        new = vtypes.find(s, svc, ctx, args["new_type"])
        if new.id == v.volume_type_id:
            raise BadRequest("Invalid input received: New volume type must be different from the current one.")
        encryption.refuse_encrypted(s, new)
        shared = multiattach.retype_target(v, new)
        snaps = s.query(Snapshot).filter(Snapshot.volume_id == v.id).count()
        quotas.check(svc, s, v.project_id, volumes=1, gigabytes=v.size, snapshots=0, type_name=new.name)
        del snaps
        v.volume_type_id = new.id
        v.multiattach = shared
        v.updated_at = now()


def _set_bootable(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> None:
    if not isinstance(args, dict) or "bootable" not in args:
        raise BadRequest("Must specify bootable in request.")
    flag = boolean(args["bootable"], "bootable")
    with svc.db.session() as s:
        v = vols.load(s, svc, ctx, volume_id, lock=True)
        v.bootable = flag
        v.updated_at = now()


def _readonly(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> None:
    if not isinstance(args, dict) or "readonly" not in args:
        raise BadRequest("Must specify readonly in request.")
    flag = boolean(args["readonly"], "readonly")
    with svc.db.session() as s:
        v = vols.load(s, svc, ctx, volume_id, lock=True)
        if v.status != "available":
            raise invalid_status("volume", v.id, v.status, "update the read-only flag")
        v.read_only = flag
        v.updated_at = now()


def _reset_status(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> None:
    if not isinstance(args, dict) or not any(k in args for k in ("status", "attach_status", "migration_status")):
        raise BadRequest("Must specify 'status', 'attach_status' or 'migration_status' for update.")
    status, attach_status = args.get("status"), args.get("attach_status")
    if status is not None and status not in RESET_STATUSES:
        raise BadRequest(f"Must specify a valid status: {status} is not one.")
    if attach_status is not None and attach_status not in ("attached", "detached"):
        raise BadRequest(f"Must specify a valid attach status: {attach_status} is not one.")
    migration = args.get("migration_status")
    if migration is not None and migration not in ("migrating", "error", "success", "completing", "none", "starting"):
        raise BadRequest(f"Must specify a valid migration status: {migration} is not one.")
    with svc.db.session() as s:
        v = vols.load(s, svc, ctx, volume_id, lock=True)
        if status is not None:
            v.status = status
            if v.task and status not in ("creating", "deleting", "extending", "uploading"):
                v.task = None  # the operator settled it: the agent stops working on it
        if attach_status is not None:
            v.attach_status = attach_status
        if migration is not None:
            v.migration_status = None if migration == "none" else migration
        v.updated_at = now()


def _force_delete(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> None:
    vols.delete_volume(svc, ctx, volume_id, force=True)


def _upload(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> dict:
    if not isinstance(args, dict) or not isinstance(args.get("image_name"), str) or not args["image_name"]:
        raise BadRequest("No image_name was specified in request.")
    force = boolean(args.get("force", False), "force")
    disk_format = args.get("disk_format", "raw")
    container_format = args.get("container_format", "bare")
    if disk_format not in DISK_FORMATS:
        raise BadRequest(f"Invalid disk-format '{disk_format}' specified. Allowed disk-formats are "
                         f"{', '.join(DISK_FORMATS)}.")
    if container_format not in CONTAINER_FORMATS:
        raise BadRequest(f"Invalid container-format '{container_format}' specified.")
    visibility = args.get("visibility", "private")
    if visibility not in ("public", "private", "shared", "community"):
        raise BadRequest(f"Invalid visibility {visibility!r}.")
    protected = boolean(args.get("protected", False), "protected")
    with svc.db.reader() as s:
        v = vols.load(s, svc, ctx, volume_id)
    allowed = ("available", "in-use") if force else ("available",)
    if v.status not in allowed:
        raise invalid_status("volume", v.id, v.status, "upload to image")
    meta = {k: x for k, x in (v.image_metadata or {}).items()
            if k not in ("image_id", "image_name", "checksum", "size", "container_format", "disk_format",
                         "min_disk", "min_ram")}
    body = {"name": args["image_name"], "disk_format": disk_format, "container_format": container_format,
            "visibility": visibility, "protected": protected, "min_disk": v.size, **meta}
    r = peers.image_request(svc, ctx, "POST", "/v2/images", json=body)
    if r.status_code >= 400:
        raise BadRequest(f"The image service refused the image: {r.text[:300]}")
    image = r.json()
    with svc.db.session() as s:
        v = vols.load(s, svc, ctx, volume_id, lock=True)
        if v.status not in allowed:
            peers.image_request(svc, ctx, "DELETE", f"/v2/images/{image['id']}")
            raise invalid_status("volume", v.id, v.status, "upload to image")
        v.previous_status = v.status
        v.status = "uploading"
        v.task = vols.next_task(svc, s, "upload", image_id=image["id"], disk_format=disk_format,
                                **peers.peer_args(svc, ctx, "image"))
        v.updated_at = now()
        vtype = s.get(VolumeType, v.volume_type_id) if v.volume_type_id else None
    svc.wake_agents()
    return {
        "os-volume_upload_image": {
            "id": v.id,
            "updated_at": v.updated_at.strftime("%Y-%m-%dT%H:%M:%S.%f") if v.updated_at else None,
            "status": "uploading",
            "display_description": v.description,
            "size": v.size,
            "volume_type": {"id": vtype.id, "name": vtype.name, "description": vtype.description,
                            "is_public": vtype.is_public, "extra_specs": dict(vtype.extra_specs or {})}
            if vtype else None,
            "image_id": image["id"],
            "container_format": container_format,
            "disk_format": disk_format,
            "image_name": args["image_name"],
            "protected": protected,
            "visibility": visibility,
        }
    }


GiB = 1024**3


def _reimage(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> None:
    """Cinder 3.68: replace the volume's whole contents with an image (destroys its data). The volume
    goes ``downloading`` while its storage host rewrites it, then back to its previous status."""
    if not mv.matches("3.68"):
        raise NotFound(f"API version {mv} is not supported on this method (os-reimage needs 3.68).")
    if not isinstance(args, dict) or "image_id" not in args:
        raise BadRequest("Invalid input for field/attribute os-reimage: 'image_id' is a required property.")
    extra = set(args) - {"image_id", "reimage_reserved"}
    if extra:
        raise BadRequest(f"Invalid input for field/attribute os-reimage: additional properties are not allowed "
                         f"({', '.join(sorted(extra))}).")
    image_id = args["image_id"]
    if not isinstance(image_id, str) or not is_uuid(image_id):
        raise BadRequest(f"Invalid input for field/attribute image_id. Value: {image_id}. It is not a uuid.")
    reserved = boolean(args.get("reimage_reserved", False), "reimage_reserved")
    allowed = ("available", "error", "reserved") if reserved else ("available", "error")
    with svc.db.reader() as s:
        v = vols.load(s, svc, ctx, volume_id)
        _reimageable(v, allowed, len(attachments.live(s, v.id)))
    image = peers.fetch_image(svc, ctx, image_id)
    if image.get("status") != "active":
        raise BadRequest(f"Image {image_id} is not active (status {image.get('status')}).")
    image_gb = -(-int(image.get("size") or 0) // GiB)
    virtual_gb = -(-int(image.get("virtual_size") or 0) // GiB)
    need = max(image_gb, virtual_gb, int(image.get("min_disk") or 0))
    if need > v.size:
        raise BadRequest(f"Image {image_id} is unacceptable: it needs {need}GB but the volume has {v.size}GB.")
    with svc.db.session() as s:
        v = vols.load(s, svc, ctx, volume_id, lock=True)
        _reimageable(v, allowed, len(attachments.live(s, v.id)))  # re-checked under the lock
        v.previous_status = v.status
        v.status = "downloading"
        v.task = vols.next_task(svc, s, "reimage", image_id=image["id"], image_format=image.get("disk_format"),
                                image_metadata=peers.image_metadata_from(image), **peers.peer_args(svc, ctx, "image"))
        v.updated_at = now()
    svc.wake_agents()


def _reimageable(v: Volume, allowed: tuple[str, ...], attached: int) -> None:
    if attached > 1:
        raise BadRequest(f"Invalid volume: Volume {v.id} has {attached} attachments; only a volume with at most one "
                         "can be re-imaged.")
    if v.status not in allowed or v.task:
        raise BadRequest(f"Invalid volume: Volume {v.id} status must be {' or '.join(allowed)} to re-image, "
                         f"but current status is: {v.status}.")


def _set_image_metadata(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any,
                        mv: APIVersion) -> dict:
    return {"metadata": vols.set_image_metadata(svc, ctx, volume_id, args)}


def _unset_image_metadata(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any,
                          mv: APIVersion) -> None:
    vols.unset_image_metadata(svc, ctx, volume_id, args)


def _show_image_metadata(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any,
                         mv: APIVersion) -> dict:
    v: Volume = vols.get_volume(svc, ctx, volume_id)
    return {"metadata": dict(v.image_metadata or {})}


def _initialize(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> dict:
    return {"connection_info": attachments.initialize_connection(svc, ctx, volume_id, args)}


def _legacy(fn: Any, with_args: bool = False) -> Any:
    def handler(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> None:
        if with_args:
            fn(svc, ctx, volume_id, args)
        else:
            fn(svc, ctx, volume_id)

    return handler


def _force_detach(svc: BlockStorageService, ctx: RequestContext, volume_id: str, args: Any, mv: APIVersion) -> None:
    attachments.detach(svc, ctx, volume_id, args, force=True)


HANDLERS: dict[str, Any] = {
    "os-extend": _extend,
    "os-retype": _retype,
    "os-set_bootable": _set_bootable,
    "os-update_readonly_flag": _readonly,
    "os-reset_status": _reset_status,
    "os-force_delete": _force_delete,
    "os-volume_upload_image": _upload,
    "os-set_image_metadata": _set_image_metadata,
    "os-unset_image_metadata": _unset_image_metadata,
    "os-show_image_metadata": _show_image_metadata,
    "os-reimage": _reimage,
    "os-reserve": _legacy(attachments.reserve),
    "os-unreserve": _legacy(attachments.unreserve),
    "os-begin_detaching": _legacy(attachments.begin_detaching),
    "os-roll_detaching": _legacy(attachments.roll_detaching),
    "os-initialize_connection": _initialize,
    "os-terminate_connection": _legacy(attachments.terminate_connection, True),
    "os-attach": _legacy(attachments.attach, True),
    "os-detach": _legacy(attachments.detach, True),
    "os-force_detach": _force_detach,
}

# 200 with a body (or empty) for these; everything else answers 202
STATUS_200 = {"os-set_bootable", "os-set_image_metadata", "os-unset_image_metadata", "os-show_image_metadata",
              "os-initialize_connection"}
