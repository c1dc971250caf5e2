"""Limits, quota sets, availability zones, hypervisors, services, usage, migrations, events, extensions."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import link, mv, next_link, svc
from kumo.compute.errors import BadRequest, NotFound
from kumo.compute.models import ComputeNode, ComputeService, Migration, Server, ServerGroup
from kumo.compute.service import agents, quotas, servers
from kumo.compute.service.core import iso, now

api = API()


def _is_up(call: Call, s: ComputeService) -> bool:
    if s.forced_down:
        return False
    if s.binary != "nova-compute":
        return True
    return s.last_seen is not None and now() - s.last_seen <= timedelta(
        seconds=svc(call).settings.service_down_time
    )


# -- limits and quotas -------------------------------------------------------------------------


@api.route("/v2.1/limits", "GET")
def limits(call: Call):
    project = (
        call.query.get("tenant_id")
        if svc(call).is_admin(call.ctx) and call.query.get("tenant_id")
        else call.ctx.project_id
    )
    lim = quotas.limits(svc(call), project)
    used = servers.usage(svc(call), project or "")
    with svc(call).db.reader() as s:
        groups = len(
            list(s.execute(select(ServerGroup.id).where(ServerGroup.project_id == (project or ""))).scalars())
        )
    absolute = {
        "maxTotalInstances": lim["instances"],
        "maxTotalCores": lim["cores"],
        "maxTotalRAMSize": lim["ram"],
        "maxServerMeta": lim["metadata_items"],
        "maxTotalKeypairs": lim["key_pairs"],
        "maxServerGroups": lim["server_groups"],
        "maxServerGroupMembers": lim["server_group_members"],
        "totalInstancesUsed": used["instances"],
        "totalCoresUsed": used["cores"],
        "totalRAMUsed": used["ram"],
        "totalServerGroupsUsed": groups,
    }
    if not mv(call).matches("2.39"):
        absolute["maxImageMeta"] = lim["metadata_items"]
    if not mv(call).matches("2.57"):
        absolute.update(
            {
                "maxPersonality": lim["injected_files"],
                "maxPersonalitySize": lim["injected_file_content_bytes"],
            }
        )
    if not mv(call).matches("2.36"):
        absolute.update(
            {
                "maxSecurityGroups": -1,
                "maxSecurityGroupRules": -1,
                "maxTotalFloatingIps": -1,
                "totalSecurityGroupsUsed": 0,
                "totalFloatingIpsUsed": 0,
            }
        )
    return {"limits": {"rate": [], "absolute": absolute}}


def _quota_keys(call: Call) -> list[str]:
    keys = [
        "instances",
        "cores",
        "ram",
        "metadata_items",
        "key_pairs",
        "server_groups",
        "server_group_members",
    ]
    if not mv(call).matches("2.57"):
        keys += ["injected_files", "injected_file_content_bytes", "injected_file_path_bytes"]
    if not mv(call).matches("2.36"):
        keys += ["fixed_ips", "floating_ips", "security_groups", "security_group_rules"]
    return keys


def _quota_body(call: Call, values: dict[str, int], qid: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {k: values.get(k, quotas.LEGACY_NETWORK.get(k, -1)) for k in _quota_keys(call)}
    if qid is not None:
        body["id"] = qid
    return body


def _quota_target(call: Call) -> str:
    project = call.params["project_id"]
    if project != call.ctx.project_id:
        svc(call).require_admin(call.ctx, "os_compute_api:os-quota-sets:show")
    return project


@api.route("/v2.1/os-quota-sets/{project_id}", "GET")
def show_quota(call: Call):
    project = _quota_target(call)
    return {
        "quota_set": _quota_body(call, quotas.limits(svc(call), project, call.query.get("user_id")), project)
    }


@api.route("/v2.1/os-quota-sets/{project_id}/detail", "GET")
def show_quota_detail(call: Call):
    project = _quota_target(call)
    lim = quotas.limits(svc(call), project, call.query.get("user_id"))
    used = servers.usage(svc(call), project)
    body = {
        k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0}
        for k, v in _quota_body(call, lim, None).items()
    }
    body["id"] = project  # type: ignore[assignment]
    return {"quota_set": body}


@api.route("/v2.1/os-quota-sets/{project_id}/defaults", "GET")
def show_quota_defaults(call: Call):
    return {"quota_set": _quota_body(call, quotas.defaults(svc(call)), call.params["project_id"])}


@api.route("/v2.1/os-quota-sets/{project_id}", "PUT")
def update_quota(call: Call):
    svc(call).require_admin(call.ctx, "os_compute_api:os-quota-sets:update")
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get("quota_set"), dict):
        raise BadRequest("'quota_set' is a required property")
    qs = dict(body["quota_set"])
    qs.pop("force", None)
    allowed = set(_quota_keys(call))
    values = {}
    for k, val in qs.items():
        if k not in allowed:
            raise BadRequest(f"Additional properties are not allowed ('{k}' was unexpected)")
        try:
            n = int(val)
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid input for field/attribute {k}. Value: {val}.") from None
        if isinstance(val, bool) or n < -1:
            raise BadRequest(f"Invalid input for field/attribute {k}. Value: {val}.")
        values[k] = n
    user_id = call.query.get("user_id") or ""
    quotas.set_limits(svc(call), call.params["project_id"], values, user_id)
    return {
        "quota_set": _quota_body(
            call, quotas.limits(svc(call), call.params["project_id"], user_id or None), None
        )
    }


@api.route("/v2.1/os-quota-sets/{project_id}", "DELETE")
def delete_quota(call: Call):
    svc(call).require_admin(call.ctx, "os_compute_api:os-quota-sets:delete")
    quotas.delete_limits(svc(call), call.params["project_id"])
    return Response(status_code=202)


@api.route("/v2.1/os-quota-class-sets/{name}", "GET")
def show_quota_class(call: Call):
    return {"quota_class_set": _quota_body(call, quotas.defaults(svc(call)), call.params["name"])}


@api.route("/v2.1/os-quota-class-sets/{name}", "PUT")
def update_quota_class(call: Call):
    svc(call).require_admin(call.ctx, "os_compute_api:os-quota-class-sets:update")
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get("quota_class_set"), dict):
        raise BadRequest("'quota_class_set' is a required property")
    values = {}
    for k, val in body["quota_class_set"].items():
        if k not in _quota_keys(call):
            raise BadRequest(f"Additional properties are not allowed ('{k}' was unexpected)")
        try:
            values[k] = int(val)
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid input for field/attribute {k}.") from None
    quotas.set_class(svc(call), call.params["name"], values)
    return {"quota_class_set": _quota_body(call, quotas.defaults(svc(call)), None)}


# -- availability zones -------------------------------------------------------------------------


@api.route("/v2.1/os-availability-zone", "GET")
def list_azs(call: Call):
    with svc(call).db.reader() as s:
        rows = list(
            s.execute(select(ComputeService).where(ComputeService.binary == "nova-compute")).scalars()
        )
    zones = sorted({r.zone for r in rows if not r.disabled} or {"nova"})
    return {
        "availabilityZoneInfo": [
            {"zoneName": z, "zoneState": {"available": True}, "hosts": None} for z in zones
        ]
    }


@api.route("/v2.1/os-availability-zone/detail", "GET")
def list_azs_detail(call: Call):
    svc(call).require_admin(call.ctx, "os_compute_api:os-availability-zone:detail")
    with svc(call).db.reader() as s:
        rows = list(s.execute(select(ComputeService)).scalars())
    zones: dict[str, dict[str, Any]] = {}
    for r in rows:
        z = zones.setdefault(r.zone, {})
        z.setdefault(r.host, {})[r.binary] = {
            "available": _is_up(call, r),
            "active": not r.disabled,
            "updated_at": iso(r.updated_at),
        }
    return {
        "availabilityZoneInfo": [
            {"zoneName": z, "zoneState": {"available": True}, "hosts": hosts}
            for z, hosts in sorted(zones.items())
        ]
    }


# -- services ---------------------------------------------------------------------------------


def _render_service(call: Call, s: ComputeService) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": s.uuid if mv(call).matches("2.53") else s.id,
        "binary": s.binary,
        "host": s.host,
        "zone": s.zone,
        "status": "disabled" if s.disabled else "enabled",
        "state": "up" if _is_up(call, s) else "down",
        "updated_at": iso(s.updated_at),
        "disabled_reason": s.disabled_reason,
    }
    if mv(call).matches("2.11"):
        body["forced_down"] = s.forced_down
    return body


@api.route("/v2.1/os-services", "GET")
def list_services(call: Call):
    svc(call).require_admin(call.ctx, "os_compute_api:os-services:list")
    with svc(call).db.reader() as s:
        rows = list(s.execute(select(ComputeService).order_by(ComputeService.id)).scalars())
    if call.query.get("host"):
        rows = [r for r in rows if r.host == call.query["host"]]
    if call.query.get("binary"):
        rows = [r for r in rows if r.binary == call.query["binary"]]
    return {"services": [_render_service(call, r) for r in rows]}


def _find_service(s: Any, host: Any, binary: Any) -> ComputeService:
    row = s.execute(
        select(ComputeService).where(ComputeService.host == host, ComputeService.binary == binary)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"Service {binary} on host {host} not found.")
    return row


@api.route("/v2.1/os-services/{action}", "PUT")
def update_service_legacy(call: Call):
    svc(call).require_admin(call.ctx, "os_compute_api:os-services:update")
    action, body = call.params["action"], call.body or {}
    if action not in ("enable", "disable", "disable-log-reason", "force-down"):
        if mv(call).matches("2.53"):
            return _update_service_uuid(call, action)
        raise NotFound("Unknown action")
    with svc(call).db.session() as s:
        row = _find_service(s, body.get("host"), body.get("binary"))
        out: dict[str, Any] = {"host": row.host, "binary": row.binary}
        if action == "enable":
            row.disabled, row.disabled_reason = False, None
            out["status"] = "enabled"
        elif action in ("disable", "disable-log-reason"):
            row.disabled = True
            row.disabled_reason = body.get("disabled_reason") if action == "disable-log-reason" else None
            out["status"] = "disabled"
            if action == "disable-log-reason":
                out["disabled_reason"] = row.disabled_reason
        else:
            row.forced_down = bool(body.get("forced_down"))
            out["forced_down"] = row.forced_down
        row.updated_at = now()
    return {"service": out}


def _update_service_uuid(call: Call, service_id: str):  # type: ignore[no-untyped-def]
    body = call.body or {}
    with svc(call).db.session() as s:
        row = s.execute(select(ComputeService).where(ComputeService.uuid == service_id)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"Service {service_id} not found.")
        if "status" in body:
            if body["status"] not in ("enabled", "disabled"):
                raise BadRequest("Invalid input for field/attribute status.")
            row.disabled = body["status"] == "disabled"
            row.disabled_reason = body.get("disabled_reason") if row.disabled else None
        if "forced_down" in body:
            row.forced_down = bool(body["forced_down"])
        row.updated_at = now()
    return {"service": _render_service(call, row)}


@api.route("/v2.1/os-services/{service_id}", "DELETE")
def delete_service(call: Call):
    svc(call).require_admin(call.ctx, "os_compute_api:os-services:delete")
    sid = call.params["service_id"]
    with svc(call).db.session() as s:
        row = s.execute(
            select(ComputeService).where(
                ComputeService.uuid == sid if mv(call).matches("2.53") else ComputeService.id == _int(sid)
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"Service {sid} not found.")
        if row.binary == "nova-compute":
            node = s.execute(select(ComputeNode).where(ComputeNode.host == row.host)).scalar_one_or_none()
            if node is not None:
                if s.execute(
                    select(Server.id).where(Server.host == row.host, Server.deleted.is_(False))
                ).first():
                    from kumo.compute.errors import Conflict

                    raise Conflict("Unable to delete compute service that is hosting instances.")
                s.delete(node)
        s.delete(row)
    return Response(status_code=204)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"Invalid uuid {value}") from None


# -- hypervisors --------------------------------------------------------------------------------


def _render_hypervisor(
    call: Call, n: ComputeNode, service: ComputeService | None, full: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": n.uuid if mv(call).matches("2.53") else n.id,
        "hypervisor_hostname": n.hypervisor_hostname,
        "state": "up" if service is not None and _is_up(call, service) else "down",
        "status": "disabled" if service is not None and service.disabled else "enabled",
    }
    if full:
        body.update(
            {
                "hypervisor_type": n.hypervisor_type,
                "hypervisor_version": n.hypervisor_version,
                "host_ip": n.host_ip,
                "service": {
                    "host": n.host,
                    "id": (service.uuid if mv(call).matches("2.53") else service.id) if service else None,
                    "disabled_reason": service.disabled_reason if service else None,
                },
            }
        )
        if mv(call).matches("2.88"):
            body["uptime"] = n.uptime  # 2.88: shown here (null until the host's agent reported it)
        else:
            body.update(
                {
                    "vcpus": n.vcpus,
                    "memory_mb": n.memory_mb,
                    "local_gb": n.local_gb,
                    "vcpus_used": n.vcpus_used,
                    "memory_mb_used": n.memory_mb_used,
                    "local_gb_used": n.local_gb_used,
                    "free_ram_mb": n.memory_mb - n.memory_mb_used,
                    "free_disk_gb": n.local_gb - n.local_gb_used,
                    "current_workload": 0,
                    "running_vms": n.running_vms,
                    "disk_available_least": n.local_gb - n.local_gb_used,
                    "cpu_info": (n.cpu_info or {})
                    if mv(call).matches("2.28")
                    else json.dumps(n.cpu_info or {}),
                }
            )
    return body


def _hypervisors(call: Call) -> list[tuple[ComputeNode, ComputeService | None]]:
    svc(call).require_admin(call.ctx, "os_compute_api:os-hypervisors:list")
    with svc(call).db.reader() as s:
        nodes = list(s.execute(select(ComputeNode).order_by(ComputeNode.id)).scalars())
        services = {
            r.host: r
            for r in s.execute(
                select(ComputeService).where(ComputeService.binary == "nova-compute")
            ).scalars()
        }
    return [(n, services.get(n.host)) for n in nodes]


@api.route("/v2.1/os-hypervisors", "GET")
def list_hypervisors(call: Call):
    rows = _hypervisors(call)
    pattern = call.query.get("hypervisor_hostname_pattern")
    if pattern:
        rows = [r for r in rows if pattern in r[0].hypervisor_hostname]
    return {"hypervisors": [_render_hypervisor(call, n, s, False) for n, s in rows]}


@api.route("/v2.1/os-hypervisors/detail", "GET")
def list_hypervisors_detail(call: Call):
    return {"hypervisors": [_render_hypervisor(call, n, s, True) for n, s in _hypervisors(call)]}


@api.route("/v2.1/os-hypervisors/statistics", "GET")
def hypervisor_stats(call: Call):
    if mv(call).matches("2.88"):
        raise NotFound("The resource could not be found.")
    rows = [n for n, _ in _hypervisors(call)]
    keys = ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used", "running_vms")
    stats = {k: sum(getattr(n, k) for n in rows) for k in keys}
    stats.update(
        {
            "count": len(rows),
            "free_ram_mb": stats["memory_mb"] - stats["memory_mb_used"],
            "free_disk_gb": stats["local_gb"] - stats["local_gb_used"],
            "current_workload": 0,
            "disk_available_least": stats["local_gb"] - stats["local_gb_used"],
        }
    )
    return {"hypervisor_statistics": stats}


@api.route("/v2.1/os-hypervisors/{hypervisor_id}", "GET")
def show_hypervisor(call: Call):
    hid = call.params["hypervisor_id"]
    for n, s in _hypervisors(call):
        if str(n.id) == hid or n.uuid == hid:
            return {"hypervisor": _render_hypervisor(call, n, s, True)}
    raise NotFound(f"Hypervisor with ID '{hid}' could not be found.")


@api.route("/v2.1/os-hypervisors/{hypervisor_id}/uptime", "GET")
def hypervisor_uptime(call: Call):
    if mv(call).matches("2.88"):
        raise NotFound("The resource could not be found.")
    hid = call.params["hypervisor_id"]
    for n, s in _hypervisors(call):
        if str(n.id) == hid or n.uuid == hid:
            if not n.uptime:
                from kumo.common.errors import NotImplementedYet

                raise NotImplementedYet("Virt driver does not implement uptime function.")
            body = _render_hypervisor(call, n, s, False)
            body["uptime"] = n.uptime
            return {"hypervisor": body}
    raise NotFound(f"Hypervisor with ID '{hid}' could not be found.")


@api.route("/v2.1/os-hypervisors/{pattern}/search", "GET")
def search_hypervisors(call: Call):
    rows = [(n, s) for n, s in _hypervisors(call) if call.params["pattern"] in n.hypervisor_hostname]
    if not rows:
        raise NotFound(f"No hypervisor matching '{call.params['pattern']}' could be found.")
    return {"hypervisors": [_render_hypervisor(call, n, s, False) for n, s in rows]}


@api.route("/v2.1/os-hypervisors/{pattern}/servers", "GET")
def hypervisor_servers(call: Call):
    rows = [(n, s) for n, s in _hypervisors(call) if call.params["pattern"] in n.hypervisor_hostname]
    if not rows:
        raise NotFound(f"No hypervisor matching '{call.params['pattern']}' could be found.")
    out = []
    with svc(call).db.reader() as s:
        for n, service in rows:
            body = _render_hypervisor(call, n, service, False)
            servers_here = list(
                s.execute(select(Server).where(Server.host == n.host, Server.deleted.is_(False))).scalars()
            )
            if servers_here:
                body["servers"] = [{"uuid": x.id, "name": f"instance-{x.seq:08x}"} for x in servers_here]
            out.append(body)
    return {"hypervisors": out}


# -- usage, migrations, events, extensions --------------------------------------------------------


def _usage_for(call: Call, project: str | None, detailed: bool) -> list[dict[str, Any]]:
    from kumo.compute.service.servers import _parse_time

    start = (
        _parse_time(call.query["start"], "start") if call.query.get("start") else now() - timedelta(days=30)
    )
    end = _parse_time(call.query["end"], "end") if call.query.get("end") else now()
    if start > end:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    with svc(call).db.reader() as s:
        stmt = select(Server).where(Server.created_at <= end)
        if project:
            stmt = stmt.where(Server.project_id == project)
        rows = [r for r in s.execute(stmt).scalars() if not r.deleted_at or r.deleted_at >= start]
    by_project: dict[str, list[Server]] = {}
    for r in rows:
        by_project.setdefault(r.project_id, []).append(r)
    out = []
    for pid, items in by_project.items():
        entry: dict[str, Any] = {
            "tenant_id": pid,
            "start": start.isoformat(),
            "stop": end.isoformat(),
            "total_hours": 0.0,
            "total_memory_mb_usage": 0.0,
            "total_vcpus_usage": 0.0,
            "total_local_gb_usage": 0.0,
        }
        usages = []
        for r in items:
            a = max(r.created_at, start)
            b = min(r.deleted_at or end, end)
            hours = max((b - a).total_seconds() / 3600.0, 0.0)
            f = r.flavor
            entry["total_hours"] += hours
            entry["total_memory_mb_usage"] += hours * f["ram"]
            entry["total_vcpus_usage"] += hours * f["vcpus"]
            entry["total_local_gb_usage"] += hours * f["disk"]
            usages.append(
                {
                    "instance_id": r.id,
                    "name": r.name,
                    "hours": hours,
                    "memory_mb": f["ram"],
                    "local_gb": f["disk"],
                    "vcpus": f["vcpus"],
                    "tenant_id": pid,
                    "flavor": f.get("name", ""),
                    "started_at": r.created_at.isoformat(),
                    "ended_at": r.deleted_at.isoformat() if r.deleted_at else None,
                    "state": "terminated" if r.deleted else r.vm_state,
                    "uptime": int(hours * 3600),
                }
            )
        if detailed:
            entry["server_usages"] = usages
        out.append(entry)
    return out


@api.route("/v2.1/os-simple-tenant-usage", "GET")
def list_usage(call: Call):
    svc(call).require_admin(call.ctx, "os_compute_api:os-simple-tenant-usage:list")
    return {
        "tenant_usages": _usage_for(call, None, str(call.query.get("detailed", "0")) in ("1", "true", "True"))
    }


@api.route("/v2.1/os-simple-tenant-usage/", "GET")
def show_usage_empty(call: Call):
    raise NotFound("A project id is required.")


@api.route("/v2.1/os-simple-tenant-usage/{project_id}", "GET")
def show_usage(call: Call):
    project = call.params["project_id"]
    if project != call.ctx.project_id:
        svc(call).require_admin(call.ctx, "os_compute_api:os-simple-tenant-usage:show")
    usage = _usage_for(call, project, True)
    return {"tenant_usage": usage[0] if usage else {}}


# Query parameters os-migrations accepts per microversion (before 2.59 unknown ones are ignored).
_MIGRATION_FILTERS = ("hidden", "host", "instance_uuid", "source_compute", "status", "migration_type")
_MIGRATION_PARAMS_259 = (*_MIGRATION_FILTERS, "limit", "marker", "changes-since")
_LIVE_IN_PROGRESS = ("queued", "preparing", "running")


def _migration_query(call: Call) -> dict[str, str]:
    v = mv(call)
    allowed: tuple[str, ...] = _MIGRATION_FILTERS
    if v.matches("2.59"):
        allowed = _MIGRATION_PARAMS_259
        if v.matches("2.66"):
            allowed = (*allowed, "changes-before")
        if v.matches("2.80"):
            allowed = (*allowed, "user_id", "project_id")
        unknown = sorted({k for k in call.query if k not in allowed})
        if unknown:
            raise BadRequest(
                f"Invalid input for query parameters {', '.join(unknown)}. "
                "Additional properties are not allowed."
            )
    out: dict[str, str] = {}
    for key in allowed:
        values = call.query.getlist(key)
        if len(values) > 1 and v.matches("2.59"):
            raise BadRequest(f"Invalid input for query parameters {key}. Expected a single value.")
        if values:
            out[key] = values[-1]
    return out


def _filter_migrations(call: Call, q: dict[str, str]) -> list[Migration]:
    from kumo.compute.service.servers import _parse_time

    stmt = select(Migration)
    if q.get("instance_uuid"):
        stmt = stmt.where(Migration.server_id == q["instance_uuid"])
    if q.get("status"):
        stmt = stmt.where(Migration.status == q["status"])
    if q.get("migration_type"):
        stmt = stmt.where(Migration.migration_type == q["migration_type"])
    if q.get("source_compute"):
        stmt = stmt.where(Migration.source_compute == q["source_compute"])
    if q.get("host"):
        stmt = stmt.where((Migration.source_compute == q["host"]) | (Migration.dest_compute == q["host"]))
    if q.get("user_id"):
        stmt = stmt.where(Migration.user_id == q["user_id"])
    if q.get("project_id"):
        stmt = stmt.where(Migration.project_id == q["project_id"])
    since = _parse_time(q["changes-since"], "changes-since") if q.get("changes-since") else None
    before = _parse_time(q["changes-before"], "changes-before") if q.get("changes-before") else None
    if since is not None and before is not None and before < since:
        raise BadRequest("The value of changes-since must be less than or equal to changes-before.")
    if since is not None:
        stmt = stmt.where(Migration.updated_at >= since)
    if before is not None:
        stmt = stmt.where(Migration.updated_at <= before)
    if mv(call).matches("2.59"):
        stmt = stmt.order_by(Migration.created_at.desc(), Migration.id.desc())
    else:
        stmt = stmt.order_by(Migration.id.desc())
    with svc(call).db.reader() as s:
        return list(s.execute(stmt).scalars())


def _render_migration(call: Call, m: Migration) -> dict[str, Any]:
    v = mv(call)
    body: dict[str, Any] = {
        "id": m.id,
        "status": m.status,
        "instance_uuid": m.server_id,
        "source_compute": m.source_compute,
        "dest_compute": m.dest_compute,
        "source_node": m.source_node,
        "dest_node": m.dest_node,
        "dest_host": "127.0.0.1",
        "old_instance_type_id": 0,
        "new_instance_type_id": 0,
        "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at),
    }
    if v.matches("2.23"):
        body["migration_type"] = m.migration_type
        if m.migration_type == "live-migration" and m.status in _LIVE_IN_PROGRESS:
            body["links"] = link(call, f"servers/{m.server_id}/migrations", str(m.id))
    if v.matches("2.59"):
        body["uuid"] = m.uuid
    if v.matches("2.80"):
        body["user_id"] = m.user_id
        body["project_id"] = m.project_id
    return body


@api.route("/v2.1/os-migrations", "GET")
def list_migrations(call: Call):
    svc(call).require_admin(call.ctx, "os_compute_api:os-migrations:index")
    q = _migration_query(call)
    rows = _filter_migrations(call, q)
    body: dict[str, Any] = {}
    if mv(call).matches("2.59"):
        marker = q.get("marker")
        if marker:
            uuids = [m.uuid for m in rows]
            if marker not in uuids:
                raise BadRequest(f"Marker {marker} could not be found.")
            rows = rows[uuids.index(marker) + 1 :]
        if q.get("limit") is not None:
            try:
                limit = int(q["limit"])
            except ValueError:
                raise BadRequest("Invalid input for query parameters limit.") from None
            if limit < 0:
                raise BadRequest("Invalid input for query parameters limit.")
            if len(rows) > limit:
                rows = rows[:limit]
                if rows:
                    body["migrations_links"] = next_link(call, "os-migrations", rows[-1].uuid)
    body["migrations"] = [_render_migration(call, m) for m in rows]
    return body


@api.route("/v2.1/os-server-external-events", "POST")
def external_events(call: Call):
    svc(call).require_admin(call.ctx, "os_compute_api:os-server-external-events:create")
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get("events"), list) or not body["events"]:
        raise BadRequest("'events' is a required property")
    names = {"network-changed", "network-vif-plugged", "network-vif-unplugged", "network-vif-deleted"}
    for name, version in (("volume-extended", "2.51"), ("power-update", "2.76"), ("accelerator-request-bound", "2.82")):
        if mv(call).matches(version):
            names.add(name)
    out, wake, extended = [], False, []
    for e in body["events"]:
        if not isinstance(e, dict) or "name" not in e or "server_uuid" not in e:
            raise BadRequest("Invalid event")
        if e["name"] not in names:
            raise BadRequest(f"Invalid input for field/attribute name. Value: {e['name']}.")
        if e.get("status", "completed") not in ("completed", "failed", "in-progress"):
            raise BadRequest("Invalid input for field/attribute status.")
        with svc(call).db.session() as s:
            server = s.get(Server, e["server_uuid"])
            found = server is not None and not server.deleted and server.host is not None
            if found and e["name"] == "power-update" and server.task_state is None:
                # the hypervisor side changed the power state (Ironic-style); reflect it
                if e.get("tag") == "POWER_OFF" and server.vm_state == "active":
                    server.vm_state, server.power_state = "stopped", 4
                elif e.get("tag") == "POWER_ON" and server.vm_state == "stopped":
                    server.vm_state, server.power_state = "active", 1
                server.updated_at = now()
            if found and e["name"] in agents.VIF_EVENTS:  # recorded; a waiting boot may go on
                wake = agents.vif_event(s, server, e) or wake
            if found and e["name"] == "volume-extended" and e.get("tag"):  # kumo.compute.api.volume_changes
                extended.append((server.id, str(e["tag"])))
        out.append(
            {**e, "status": e.get("status", "completed"), "code": 200 if found else 422 if server else 404}
        )
    if wake:
        svc(call).notifier.bump()  # the host's agent lets the waiting guest run
    from kumo.compute.api.volume_changes import volumes_extended

    volumes_extended(call, extended)  # the guests' disks grow
    if not any(e["code"] == 200 for e in out):
        raise NotFound("No instances found for any event")
    status = 200 if all(e["code"] == 200 for e in out) else 207
    from kumo.common.asgi import json_response

    return json_response({"events": out}, status)


EXTENSIONS = {
    "os-assisted-volume-snapshots": "AssistedVolumeSnapshots",
    "os-availability-zone": "AvailabilityZone",
    "os-flavor-access": "FlavorAccess",
    "os-flavor-extra-specs": "FlavorExtraSpecs",
    "os-flavor-manage": "FlavorManage",
    "os-hypervisors": "Hypervisors",
    "os-hosts": "Hosts",
    "os-instance-actions": "InstanceActions",
    "os-keypairs": "Keypairs",
    "os-quota-sets": "Quotas",
    "os-quota-class-sets": "QuotaClasses",
    "os-server-groups": "ServerGroups",
    "os-services": "Services",
    "os-simple-tenant-usage": "SimpleTenantUsage",
    "os-migrations": "Migrations",
    "os-server-external-events": "ServerExternalEvents",
    "os-console-output": "ConsoleOutput",
    "os-consoles": "Consoles",
    "os-lock-server": "LockServer",
    "os-pause-server": "PauseServer",
    "os-suspend-server": "SuspendServer",
    "os-server-tags": "ServerTags",
    "os-extended-status": "ExtendedStatus",
    "OS-EXT-AZ": "ExtendedAvailabilityZone",
    "OS-EXT-STS": "ExtendedStatus",
    "OS-EXT-SRV-ATTR": "ExtendedServerAttributes",
    "OS-EXT-IPS": "ExtendedIps",
    "OS-EXT-IPS-MAC": "ExtendedIpsMac",
    "OS-FLV-EXT-DATA": "FlavorExtraData",
    "OS-FLV-DISABLED": "FlavorDisabled",
    "OS-SRV-USG": "ServerUsage",
    "OS-DCF": "DiskConfig",
    "os-access-ips": "AccessIPs",
    "os-admin-actions": "AdminActions",
    "os-multiple-create": "MultipleCreate",
    "os-rescue": "Rescue",
    "os-shelve": "Shelve",
    "os-config-drive": "ConfigDrive",
    "os-user-data": "UserData",
    "os-scheduler-hints": "SchedulerHints",
    "os-server-diagnostics": "ServerDiagnostics",
    "os-instance-usage-audit-log": "OSInstanceUsageAuditLog",
    "os-aggregates": "Aggregates",
    "os-create-backup": "CreateBackup",
    "os-server-password": "ServerPassword",
    "os-limits": "Limits",
    "os-floating-ips": "FloatingIps",
    "os-floating-ip-pools": "FloatingIpPools",
    "os-security-groups": "SecurityGroups",
    "os-attach-interfaces": "AttachInterfaces",
    "os-tenant-networks": "TenantNetworks",
    "servers": "Servers",
    "flavors": "Flavors",
    "images": "Images",
    "ips": "Ips",
    "versions": "Versions",
}


def _extension(alias: str) -> dict[str, Any]:
    return {
        "alias": alias,
        "name": EXTENSIONS[alias],
        "namespace": "http://docs.openstack.org/compute/ext/fake_xml",
        "description": EXTENSIONS[alias] + " support.",
        "updated": "2014-12-03T00:00:00Z",
        "links": [],
    }


@api.route("/v2.1/extensions", "GET")
def list_extensions(call: Call):
    return {"extensions": [_extension(a) for a in EXTENSIONS]}


@api.route("/v2.1/extensions/{alias}", "GET")
def show_extension(call: Call):
    alias = call.params["alias"]
    if alias not in EXTENSIONS:
        raise NotFound(f"Extension {alias} not found")
    return {"extension": _extension(alias)}
