"""Cold migration (``migrate``), live migration (``os-migrateLive``) and a server's in-progress
live migrations (``/servers/{id}/migrations``: list and show 2.23, force_complete 2.22, abort 2.24)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import mv, svc
from kumo.compute.errors import BadRequest, NotFound
from kumo.compute.models import Migration
from kumo.compute.service import migrate as service
from kumo.compute.service import validate as v
from kumo.compute.service.core import iso

api = API()


def _host(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise BadRequest("Invalid input for field/attribute host.")
    return value


def migrate(call: Call, sid: str, args: Any) -> Response:
    """``{"migrate": null}``, or ``{"migrate": {"host": ...}}`` since 2.56."""
    svc(call).require_admin(call.ctx, "os_compute_api:os-migrate-server:migrate")
    host = None
    if mv(call).matches("2.56") and args is not None:
        if not isinstance(args, dict):
            raise BadRequest("Invalid input for field/attribute migrate.")
        v.only_keys(args, {"host"})
        host = _host(args.get("host"))
    service.migrate(svc(call), call.ctx, sid, host)
    return Response(status_code=202)


def _block_migration(version: Any, value: Any) -> Any:
    if version.matches("2.25") and value == "auto":
        return "auto"
    return v.boolean(value, "block_migration")


def live_migrate(call: Call, sid: str, args: Any) -> Response:
    svc(call).require_admin(call.ctx, "os_compute_api:os-migrate-server:migrate_live")
    version = mv(call)
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute os-migrateLive.")
    allowed = {"host", "block_migration"}
    required = ["block_migration", "host"]
    if not version.matches("2.25"):
        allowed.add("disk_over_commit")
        required.append("disk_over_commit")
    if version.matches("2.30", "2.67"):
        allowed.add("force")
    v.only_keys(args, allowed)
    for key in required:
        if key not in args:
            raise BadRequest(f"'{key}' is a required property")
    host = _host(args["host"])
    block = _block_migration(version, args["block_migration"])
    if "disk_over_commit" in args:
        v.boolean(args["disk_over_commit"], "disk_over_commit")
    force = v.boolean(args["force"], "force") if "force" in args else False
    if force and host is None:
        raise BadRequest("Forcing a live migration requires a host.")
    service.live_migrate(svc(call), call.ctx, sid, host, block)
    return Response(status_code=202)


def _render(call: Call, m: Migration) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": m.id,
        "status": m.status,
        "server_uuid": m.server_id,
        "source_compute": m.source_compute,
        "source_node": m.source_node,
        "dest_compute": m.dest_compute,
        "dest_node": m.dest_node,
        "dest_host": None,  # the destination's address is not tracked
        # the fake driver moves no memory or disk over the wire: nothing to count
        "disk_processed_bytes": None,
        "disk_remaining_bytes": None,
        "disk_total_bytes": None,
        "memory_processed_bytes": None,
        "memory_remaining_bytes": None,
        "memory_total_bytes": None,
        "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at),
    }
    if mv(call).matches("2.59"):
        body["uuid"] = m.uuid
    if mv(call).matches("2.80"):
        body["user_id"] = m.user_id
        body["project_id"] = m.project_id
    return body


def _since(call: Call, version: str, policy: str) -> None:
    if not mv(call).matches(version):
        raise NotFound("The resource could not be found.")
    svc(call).require_admin(call.ctx, f"os_compute_api:servers:migrations:{policy}")


@api.route("/v2.1/servers/{server_id}/migrations", "GET")
def list_server_migrations(call: Call):
    _since(call, "2.23", "index")
    rows = service.in_progress(svc(call), call.ctx, call.params["server_id"])
    return {"migrations": [_render(call, m) for m in rows]}


@api.route("/v2.1/servers/{server_id}/migrations/{migration_id}", "GET")
def show_server_migration(call: Call):
    _since(call, "2.23", "show")
    m = service.show_in_progress(svc(call), call.ctx, call.params["server_id"], call.params["migration_id"])
    return {"migration": _render(call, m)}


@api.route("/v2.1/servers/{server_id}/migrations/{migration_id}/action", "POST")
def server_migration_action(call: Call):
    _since(call, "2.22", "force_complete")
    body = call.body
    if not isinstance(body, dict) or list(body) != ["force_complete"]:
        raise BadRequest("There is no such action: the body must be {\"force_complete\": null}.")
    service.force_complete(svc(call), call.ctx, call.params["server_id"], call.params["migration_id"])
    return Response(status_code=202)


@api.route("/v2.1/servers/{server_id}/migrations/{migration_id}", "DELETE")
def abort_server_migration(call: Call):
    _since(call, "2.24", "delete")
    service.abort(svc(call), call.ctx, call.params["server_id"], call.params["migration_id"])
    return Response(status_code=202)
