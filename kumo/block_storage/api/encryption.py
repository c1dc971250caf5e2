"""``/v3/types/{type_id}/encryption``: a volume type's encryption spec (admin only)."""

from __future__ import annotations

from starlette.responses import Response

from kumo.block_storage.api.common import iso, svc
from kumo.block_storage.models import VolumeTypeEncryption
from kumo.block_storage.service import encryption
from kumo.common.asgi import API, Call

api = API()


def _full(spec: VolumeTypeEncryption) -> dict:
    return {
        "volume_type_id": spec.volume_type_id,
        "encryption_id": spec.encryption_id,
        "provider": spec.provider,
        "cipher": spec.cipher,
        "key_size": spec.key_size,
        "control_location": spec.control_location,
        "deleted": False,
        "created_at": iso(spec.created_at),
        "updated_at": iso(spec.updated_at),
        "deleted_at": None,
    }


@api.route("/v3/types/{type_id}/encryption", "GET")
def show(call: Call):
    spec = encryption.get_spec(svc(call), call.ctx, call.params["type_id"])
    return _full(spec) if spec is not None else {}


@api.route("/v3/types/{type_id}/encryption/{key}", "GET")
def show_item(call: Call):
    return encryption.get_item(svc(call), call.ctx, call.params["type_id"], call.params["key"])


@api.route("/v3/types/{type_id}/encryption", "POST")
def create(call: Call):
    spec = encryption.create_spec(svc(call), call.ctx, call.params["type_id"], call.body)
    body = {k: v for k, v in _full(spec).items() if k in ("volume_type_id", "encryption_id", *encryption.FIELDS)}
    return {"encryption": body}


@api.route("/v3/types/{type_id}/encryption/{encryption_id}", "PUT")
def update(call: Call):
    fields = encryption.update_spec(svc(call), call.ctx, call.params["type_id"], call.params["encryption_id"],
                                    call.body)  # fmt: skip
    return {"encryption": fields}


@api.route("/v3/types/{type_id}/encryption/{encryption_id}", "DELETE")
def delete(call: Call):
    encryption.delete_spec(svc(call), call.ctx, call.params["type_id"], call.params["encryption_id"])
    return Response(status_code=202)
