"""POST /servers/{id}/action {"evacuate": {...}}: the body's shape per microversion."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.responses import Response

from kumo.common.asgi import Call, json_response
from kumo.compute.api.common import mv, svc
from kumo.compute.errors import BadRequest
from kumo.compute.service import evacuate as service
from kumo.compute.service import validate as v


def evacuate(call: Call, sid: str, args: Any) -> Response:
    svc(call).require_admin(call.ctx, "os_compute_api:os-evacuate")
    version = mv(call)
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute evacuate.")
    allowed = {"host", "adminPass"}
    if not version.matches("2.14"):
        allowed.add("onSharedStorage")
    if version.matches("2.29") and not version.matches("2.68"):
        allowed.add("force")
    v.only_keys(args, allowed)
    host = v.string(args.get("host"), "host", 255, 1) if "host" in args else None
    admin_pass = v.string(args["adminPass"], "adminPass", 255) if "adminPass" in args else None
    force = v.boolean(args["force"], "force") if "force" in args else False
    if force and host is None:
        raise BadRequest("Forcing an evacuation requires a host.")
    if not version.matches("2.14"):
        if "onSharedStorage" not in args:
            raise BadRequest("'onSharedStorage' is a required property")
        if v.boolean(args["onSharedStorage"], "onSharedStorage"):
            if admin_pass is not None:
                raise BadRequest("admin password can't be changed on existing disk")
            raise BadRequest("Invalid state of instance files on shared storage: instance disks are host-local.")
    service.evacuate(svc(call), call.ctx, sid, host, force, target_stopped=version.matches("2.95"))
    if version.matches("2.14"):
        return Response(status_code=200)
    return json_response({"adminPass": admin_pass or secrets.token_urlsafe(9)}, 200)
