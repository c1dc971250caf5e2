"""Operator views of the storage hosts: ``os-services``, ``os-hosts``, ``os-availability-zone``,
``scheduler-stats/get_pools``, ``capabilities``; user ``messages`` and ``extensions``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from starlette.responses import Response

from kumo.block_storage.api.common import iso, links, mv, svc
from kumo.block_storage.errors import BadRequest, NotFound
from kumo.block_storage.models import Host, Message, Snapshot, Volume
from kumo.block_storage.service import agents
from kumo.block_storage.service.core import is_uuid, now
from kumo.common.asgi import API, Call

api = API()


def _services(call: Call) -> list[dict[str, Any]]:
    service = svc(call)
    out: list[dict[str, Any]] = []
    hosts = agents.hosts(service)
    control = service.extras.get("control_host") or "kumo"
    out.append({"binary": "cinder-scheduler", "host": control, "zone": service.settings.zone, "status": "enabled",
                "state": "up", "updated_at": iso(now()), "disabled_reason": None, "frozen": False})
    for h in hosts:
        state = "up" if agents.is_up(service, h) else "down"
        status = "disabled" if h.disabled else "enabled"
        base = {"zone": h.zone, "status": status, "state": state, "updated_at": iso(h.heartbeat_at),
                "disabled_reason": h.disabled_reason, "frozen": False}
        out.append({"binary": "cinder-volume", "host": h.host, "replication_status": "disabled",
                    "active_backend_id": None, **base})
        if mv(call).matches("3.49"):
            out[-1]["backend_state"] = "up" if state == "up" else "down"
        out.append({"binary": "cinder-backup", "host": h.host.split("@")[0], **base})
    return out


@api.route("/v3/os-services", "GET")
def list_services(call: Call):
    svc(call).require_admin(call.ctx, "volume_extension:services:index")
    rows = _services(call)
    if call.query.get("host"):
        rows = [r for r in rows if r["host"] == call.query["host"] or r["host"].split("@")[0] == call.query["host"]]
    if call.query.get("binary"):
        rows = [r for r in rows if r["binary"] == call.query["binary"]]
    return {"services": rows}


@api.route("/v3/os-services/{action}", "PUT")
def update_service(call: Call):
    service = svc(call)
    service.require_admin(call.ctx, "volume_extension:services:update")
    action = call.params["action"]
    body = call.body if isinstance(call.body, dict) else {}
    if action not in ("enable", "disable", "disable-log-reason", "freeze", "thaw"):
        raise NotFound(f"Unknown action {action}.")
    host, binary = body.get("host"), body.get("binary", "cinder-volume")
    if not isinstance(host, str) or not host:
        raise BadRequest("Missing required element 'host' in request body.")
    if action in ("freeze", "thaw"):
        if not any(h.host == host for h in agents.hosts(service)):
            raise BadRequest(f"Invalid host: {host} is not a cinder-volume host.")
        return Response(status_code=200)
    reason = body.get("disabled_reason") if action == "disable-log-reason" else None
    if action == "disable-log-reason" and (not isinstance(reason, str) or not reason.strip() or len(reason) > 255):
        raise BadRequest("Disabled reason contains invalid characters or is too long.")
    h = agents.set_service(service, host, binary, action != "enable", reason)
    out = {"disabled": h.disabled, "status": "disabled" if h.disabled else "enabled", "host": host,
           "service": binary, "binary": binary}
    if action != "disable":
        out["disabled_reason"] = h.disabled_reason
    return out


@api.route("/v3/os-hosts", "GET")
def list_hosts(call: Call):
    service = svc(call)
    service.require_admin(call.ctx, "volume_extension:hosts")
    rows = []
    for r in _services(call):
        if r["binary"] == "cinder-api":
            continue
        rows.append({"service-status": "available" if r["state"] == "up" else "unavailable",
                     "service": r["binary"], "zone": r["zone"],
                     "service-state": r["status"], "host_name": r["host"], "last-update": r["updated_at"]})
    return {"hosts": rows}


@api.route("/v3/os-hosts/{host}", "GET")
def show_host(call: Call):
    service = svc(call)
    service.require_admin(call.ctx, "volume_extension:hosts")
    name = call.params["host"]
    with service.db.reader() as s:
        known = [h.host for h in s.execute(select(Host)).scalars()]
        if not any(name == h or name == h.split("@")[0] for h in known):
            raise NotFound(f"Host {name} could not be found.")
        like = name + "%"
        vols = s.execute(select(Volume.project_id, func.count(Volume.id), func.coalesce(func.sum(Volume.size), 0))
                         .where(Volume.host.like(like)).group_by(Volume.project_id)).all()
        snaps = dict((p, (c, g)) for p, c, g in s.execute(
            select(Snapshot.project_id, func.count(Snapshot.id), func.coalesce(func.sum(Snapshot.size), 0))
            .where(Snapshot.host.like(like)).group_by(Snapshot.project_id)).all())
    total = {"volume_count": sum(c for _, c, _ in vols), "total_volume_gb": sum(int(g) for _, _, g in vols),
             "snapshot_count": sum(c for c, _ in snaps.values()),
             "total_snapshot_gb": sum(int(g) for _, g in snaps.values())}
    out = [{"resource": {"project": "(total)", "host": name, **{k: str(v) for k, v in total.items()}}}]
    for project, count, gb in vols:
        sc, sg = snaps.get(project, (0, 0))
        out.append({"resource": {"project": project, "host": name, "volume_count": str(count),
                                 "total_volume_gb": str(int(gb)), "snapshot_count": str(sc),
                                 "total_snapshot_gb": str(int(sg))}})
    return {"host": out}


@api.route("/v3/os-availability-zone", "GET")
def list_availability_zones(call: Call):
    service = svc(call)
    zones = {service.settings.zone} | {h.zone for h in agents.hosts(service)}
    return {"availabilityZoneInfo": [{"zoneName": z, "zoneState": {"available": True}} for z in sorted(zones)]}


def _pools(call: Call, detail: bool) -> list[dict[str, Any]]:
    service = svc(call)
    out = []
    for h in agents.hosts(service):
        name = agents.pool_host(h.host, h.backend)
        entry: dict[str, Any] = {"name": name}
        if detail:
            cap = h.capacity or {}
            entry["capabilities"] = {
                "updated": iso(h.heartbeat_at),
                "QoS_support": True,
                "total_capacity_gb": cap.get("total_gb", 0),
                "free_capacity_gb": cap.get("free_gb", 0),
                "provisioned_capacity_gb": cap.get("provisioned_gb", 0),
                "volume_backend_name": h.backend,
                "driver_version": "1.0",
                "reserved_percentage": 0,
                "storage_protocol": cap.get("storage_protocol", "file"),
                "vendor_name": "kumo",
                "timestamp": iso(h.heartbeat_at),
                "thin_provisioning_support": True,
                "multiattach": True,
                "pool_name": h.backend,
            }
        out.append(entry)
    return out


@api.route("/v3/scheduler-stats/get_pools", "GET")
def get_pools(call: Call):
    svc(call).require_admin(call.ctx, "scheduler_extension:scheduler_stats:get_pools")
    detail = str(call.query.get("detail", "false")).lower() in ("true", "1")
    return {"pools": _pools(call, detail)}


@api.route("/v3/capabilities/{host}", "GET")
def show_capabilities(call: Call):
    service = svc(call)
    service.require_admin(call.ctx, "volume_extension:capabilities")
    name = call.params["host"]
    h = next((x for x in agents.hosts(service) if name in (x.host, x.host.split("@")[0],
                                                           agents.pool_host(x.host, x.backend))), None)
    if h is None:
        raise NotFound(f"Host {name} could not be found.")
    return {
        "namespace": f"OS::Storage::Capabilities::{h.host}",
        "vendor_name": "kumo",
        "volume_backend_name": h.backend,
        "pool_name": None,
        "driver_version": "1.0",
        "storage_protocol": (h.capacity or {}).get("storage_protocol", "file"),
        "display_name": None,
        "description": None,
        "visibility": None,
        "replication_targets": [],
        "properties": {
            "thin_provisioning": {"title": "Thin Provisioning", "description": "Sparse volumes", "type": "boolean"},
            "compression": {"title": "Compression", "description": "Volume compression", "type": "boolean"},
            "qos": {"title": "QoS", "description": "Front-end I/O limits on attach", "type": "boolean"},
        },
    }


# --- user messages -------------------------------------------------------------------------------


def _message(call: Call, m: Message) -> dict[str, Any]:
    return {"id": m.id, "request_id": m.request_id or "", "message_level": m.message_level,
            "event_id": m.event_id, "created_at": iso(m.created_at), "guaranteed_until": iso(m.expires_at),
            "resource_uuid": m.resource_uuid, "resource_type": m.resource_type, "user_message": m.user_message,
            "links": links(call, "messages", m.id)}


def _messages_query(call: Call):  # type: ignore[no-untyped-def]
    if not mv(call).matches("3.3"):
        raise NotFound("The messages API needs microversion 3.3 or later.")
    q = select(Message)
    if not svc(call).is_admin(call.ctx):
        q = q.where(Message.project_id == (call.ctx.project_id or ""))
    return q


@api.route("/v3/messages", "GET")
def list_messages(call: Call):
    with svc(call).db.reader() as s:
        rows = list(s.execute(_messages_query(call).order_by(Message.created_at.desc())).scalars())
    return {"messages": [_message(call, m) for m in rows]}


@api.route("/v3/messages/{message_id}", "GET")
def show_message(call: Call):
    mid = call.params["message_id"]
    with svc(call).db.reader() as s:
        m = s.execute(_messages_query(call).where(Message.id == mid)).scalar_one_or_none() if is_uuid(mid) else None
    if m is None:
        raise NotFound(f"Message {mid} could not be found.")
    return {"message": _message(call, m)}


@api.route("/v3/messages/{message_id}", "DELETE")
def delete_message(call: Call):
    mid = call.params["message_id"]
    with svc(call).db.session() as s:
        m = s.execute(_messages_query(call).where(Message.id == mid)).scalar_one_or_none() if is_uuid(mid) else None
        if m is None:
            raise NotFound(f"Message {mid} could not be found.")
        s.delete(m)
    return Response(status_code=204)


# --- extensions ------------------------------------------------------------------------------------

EXTENSIONS = [
    ("AvailabilityZones", "os-availability-zone", "Describe Availability Zones."),
    ("BackupsActions", "os-backups-actions", "Enable admin actions on backups."),
    ("Backups", "backups", "Backups support."),
    ("Capabilities", "capabilities", "Capabilities support."),
    ("ExtendedServices", "os-extended-services", "Extended services support."),
    ("ExtendedSnapshotAttributes", "os-extended-snapshot-attributes", "Extended SnapshotAttributes support."),
    ("Hosts", "os-hosts", "Admin-only host administration."),
    ("QuotaClasses", "os-quota-class-sets", "Quota classes management support."),
    ("Quotas", "os-quota-sets", "Quota management support."),
    ("Qos_specs_manage", "qos-specs", "QoS specs support."),
    ("SchedulerStats", "scheduler-stats", "Scheduler stats support."),
    ("Services", "os-services", "Services support."),
    ("SnapshotActions", "os-snapshot-actions", "Enable snapshot manager actions."),
    ("SnapshotAdminActions", "os-snapshot-admin-actions", "Enable admin actions on snapshots."),
    ("TypesExtraSpecs", "os-types-extra-specs", "Type extra specs support."),
    ("TypesManage", "os-types-manage", "Types manage support."),
    ("VolumeActions", "os-volume-actions", "Enable volume actions."),
    ("VolumeAdminActions", "os-admin-actions", "Enable admin actions on volumes."),
    ("VolumeHostAttribute", "os-vol-host-attr", "Expose host as an attribute of a volume."),
    ("VolumeImageMetadata", "os-vol-image-meta", "Show image metadata associated with the volume."),
    ("VolumeMigStatusAttribute", "os-vol-mig-status-attr", "Expose migration_status as an attribute of a volume."),
    ("VolumeTenantAttribute", "os-vol-tenant-attr", "Expose the internal project_id as an attribute of a volume."),
    ("VolumeTransfer", "os-volume-transfer", "Volume transfer management support."),
    ("VolumeTypeAccess", "os-volume-type-access", "Volume type access support."),
]


@api.route("/v3/extensions", "GET")
def list_extensions(call: Call):
    return {"extensions": [
        {"name": n, "alias": a, "description": d, "links": [], "namespace": f"https://docs.openstack.org/{a}",
         "updated": "2026-11-01T00:00:00+00:00"} for n, a, d in EXTENSIONS
    ]}
