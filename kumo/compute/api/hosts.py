"""Host-level admin APIs: os-hosts, os-aggregates, diagnostics, the instance usage audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import mv, svc
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.models import Aggregate, ComputeNode, ComputeService, Server
from kumo.compute.service import servers
from kumo.compute.service import validate as v
from kumo.compute.service.core import iso, new_uuid, now

api = API()


def _admin(call: Call, action: str) -> None:
    svc(call).require_admin(call.ctx, action)


# -- os-hosts (until 2.42) ------------------------------------------------------------------------


def _hosts_version(call: Call) -> None:
    if mv(call).matches("2.43"):
        raise NotFound("The resource could not be found.")


@api.route("/v2.1/os-hosts", "GET")
def list_hosts(call: Call):
    _hosts_version(call)
    _admin(call, "os_compute_api:os-hosts:list")
    with svc(call).db.reader() as s:
        rows = list(s.execute(select(ComputeService).order_by(ComputeService.id)).scalars())
    zone = call.query.get("zone")
    out = [{"host_name": r.host, "service": r.topic, "zone": r.zone} for r in rows]
    if zone:
        out = [h for h in out if h["zone"] == zone]
    return {"hosts": out}


def _node(call: Call, host: str) -> ComputeNode:
    with svc(call).db.reader() as s:
        node = s.execute(select(ComputeNode).where(ComputeNode.host == host)).scalar_one_or_none()
    if node is None:
        raise NotFound(f"Compute host {host} could not be found.")
    return node


@api.route("/v2.1/os-hosts/{host}", "GET")
def show_host(call: Call):
    _hosts_version(call)
    _admin(call, "os_compute_api:os-hosts:show")
    node = _node(call, call.params["host"])
    with svc(call).db.reader() as s:
        rows = list(
            s.execute(select(Server).where(Server.host == node.host, Server.deleted.is_(False))).scalars()
        )

    def res(project: str, cpu: int, mem: int, disk: int) -> dict[str, Any]:
        return {
            "resource": {"host": node.host, "project": project, "cpu": cpu, "memory_mb": mem, "disk_gb": disk}
        }

    out = [res("(total)", node.vcpus, node.memory_mb, node.local_gb),
           res("(used_now)", node.vcpus_used, node.memory_mb_used, node.local_gb_used),
           res("(used_max)", node.vcpus_used, node.memory_mb_used, node.local_gb_used)]  # fmt: skip
    per: dict[str, list[int]] = {}
    for r in rows:
        t = per.setdefault(r.project_id, [0, 0, 0])
        t[0] += r.flavor["vcpus"]
        t[1] += r.flavor["ram"]
        t[2] += r.flavor["disk"]
    out += [res(p, *t) for p, t in per.items()]
    return {"host": out}


@api.route("/v2.1/os-hosts/{host}", "PUT")
def update_host(call: Call):
    _hosts_version(call)
    _admin(call, "os_compute_api:os-hosts:update")
    body = call.body
    if not isinstance(body, dict) or not body:
        raise BadRequest("'status' or 'maintenance_mode' needed for host update")
    v.only_keys(body, {"status", "maintenance_mode"})
    status, maint = body.get("status"), body.get("maintenance_mode")
    if status is None and maint is None:
        raise BadRequest("'status' or 'maintenance_mode' needed for host update")
    if status is not None and status not in ("enable", "disable"):
        raise BadRequest("Invalid input for field/attribute status.")
    if maint is not None and maint not in ("enable", "disable"):
        raise BadRequest("Invalid input for field/attribute maintenance_mode.")
    host = call.params["host"]
    _node(call, host)
    out: dict[str, Any] = {"host": host}
    if maint is not None:
        raise APINotImplemented()
    with svc(call).db.session() as s:
        row = s.execute(select(ComputeService).where(ComputeService.host == host,
                                                     ComputeService.binary == "nova-compute")).scalar_one()  # fmt: skip
        row.disabled = status == "disable"
        row.updated_at = now()
    out["status"] = "enabled" if status == "enable" else "disabled"
    return {**out}


def APINotImplemented() -> Exception:  # noqa: N802
    from kumo.common.errors import NotImplementedYet

    return NotImplementedYet("Maintenance mode is not implemented by this virt driver.")


@api.route("/v2.1/os-hosts/{host}/{action}", "GET")
def host_power_action(call: Call):
    _hosts_version(call)
    _admin(call, "os_compute_api:os-hosts:" + call.params["action"])
    if call.params["action"] not in ("reboot", "shutdown", "startup"):
        raise NotFound("The resource could not be found.")
    _node(call, call.params["host"])
    from kumo.common.errors import NotImplementedYet

    raise NotImplementedYet(f"Host {call.params['action']} is not supported by this virt driver.")


# -- aggregates ------------------------------------------------------------------------------------


def render_aggregate(call: Call, a: Aggregate, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": a.id, "name": a.name, "availability_zone": a.availability_zone, "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at), "deleted": False, "deleted_at": None,
    }  # fmt: skip
    if full:
        body["hosts"] = list(a.hosts or [])
        body["metadata"] = dict(a.metadata_ or {})
    if mv(call).matches("2.41"):
        body["uuid"] = a.uuid
    return body


def _aggregate_fields(data: Any, create: bool) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("Invalid input for field/attribute aggregate.")
    v.only_keys(data, {"name", "availability_zone"})
    out: dict[str, Any] = {}
    if "name" in data or create:
        name = data.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 255 or not name.strip():
            raise BadRequest("Invalid input for field/attribute name.")
        out["name"] = name
    if "availability_zone" in data:
        az = data["availability_zone"]
        if az is not None and (not isinstance(az, str) or not 1 <= len(az) <= 255):
            raise BadRequest("Invalid input for field/attribute availability_zone.")
        out["availability_zone"] = az
    if create is False and not out:
        raise BadRequest("Invalid input for field/attribute aggregate.")
    return out


def _get_aggregate(s: Any, agg_id: str) -> Aggregate:
    try:
        key = int(agg_id)
    except ValueError:
        raise NotFound(f"Aggregate {agg_id} could not be found.") from None
    a = s.get(Aggregate, key)
    if a is None:
        raise NotFound(f"Aggregate {agg_id} could not be found.")
    return a


def _sync_zones(s: Any) -> None:
    """A host's zone is the availability zone of its aggregates (default "nova")."""
    zones: dict[str, str] = {}
    for a in s.execute(select(Aggregate)).scalars():
        if a.availability_zone:
            for h in a.hosts or []:
                zones[h] = a.availability_zone
    for svc_row in s.execute(select(ComputeService).where(ComputeService.binary == "nova-compute")).scalars():
        svc_row.zone = zones.get(svc_row.host, "nova")


@api.route("/v2.1/os-aggregates", "GET")
def list_aggregates(call: Call):
    _admin(call, "os_compute_api:os-aggregates:index")
    with svc(call).db.reader() as s:
        rows = list(s.execute(select(Aggregate).order_by(Aggregate.id)).scalars())
    return {"aggregates": [render_aggregate(call, a) for a in rows]}


@api.route("/v2.1/os-aggregates", "POST")
def create_aggregate(call: Call):
    _admin(call, "os_compute_api:os-aggregates:create")
    body = call.body
    fields = _aggregate_fields(body.get("aggregate") if isinstance(body, dict) else None, True)
    with svc(call).db.session() as s:
        if s.execute(select(Aggregate).where(Aggregate.name == fields["name"])).first():
            raise Conflict(f"Aggregate {fields['name']} already exists.")
        a = Aggregate(uuid=new_uuid(), name=fields["name"], availability_zone=fields.get("availability_zone"),
                      hosts=[], metadata_={}, created_at=now())  # fmt: skip
        if a.availability_zone:
            a.metadata_ = {"availability_zone": a.availability_zone}
        s.add(a)
        s.flush()
    return {"aggregate": render_aggregate(call, a, full=False)}


@api.route("/v2.1/os-aggregates/{agg_id}", "GET")
def show_aggregate(call: Call):
    _admin(call, "os_compute_api:os-aggregates:show")
    with svc(call).db.reader() as s:
        a = _get_aggregate(s, call.params["agg_id"])
    return {"aggregate": render_aggregate(call, a)}


@api.route("/v2.1/os-aggregates/{agg_id}", "PUT")
def update_aggregate(call: Call):
    _admin(call, "os_compute_api:os-aggregates:update")
    body = call.body
    fields = _aggregate_fields(body.get("aggregate") if isinstance(body, dict) else None, False)
    with svc(call).db.session() as s:
        a = _get_aggregate(s, call.params["agg_id"])
        if "name" in fields and fields["name"] != a.name:
            if s.execute(select(Aggregate).where(Aggregate.name == fields["name"])).first():
                raise Conflict(f"Aggregate {fields['name']} already exists.")
            a.name = fields["name"]
        if "availability_zone" in fields:
            a.availability_zone = fields["availability_zone"]
            meta = dict(a.metadata_ or {})
            if a.availability_zone:
                meta["availability_zone"] = a.availability_zone
            else:
                meta.pop("availability_zone", None)
            a.metadata_ = meta
        a.updated_at = now()
        _sync_zones(s)
    return {"aggregate": render_aggregate(call, a)}


@api.route("/v2.1/os-aggregates/{agg_id}", "DELETE")
def delete_aggregate(call: Call):
    _admin(call, "os_compute_api:os-aggregates:delete")
    with svc(call).db.session() as s:
        a = _get_aggregate(s, call.params["agg_id"])
        if a.hosts:
            raise BadRequest(f"Cannot delete aggregate {a.id}: it still has hosts")
        s.delete(a)
        s.flush()
        _sync_zones(s)
    return Response(status_code=200)


@api.route("/v2.1/os-aggregates/{agg_id}/action", "POST")
def aggregate_action(call: Call):
    _admin(call, "os_compute_api:os-aggregates:action")
    body = call.body
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid aggregate action.")
    ((action, args),) = body.items()
    if action not in ("add_host", "remove_host", "set_metadata") or not isinstance(args, dict):
        raise BadRequest(f"Invalid aggregate action {action}.")
    with svc(call).db.session() as s:
        a = _get_aggregate(s, call.params["agg_id"])
        if action in ("add_host", "remove_host"):
            v.only_keys(args, {"host"})
            host = args.get("host")
            if not isinstance(host, str) or not host:
                raise BadRequest("Invalid input for field/attribute host.")
            hosts = list(a.hosts or [])
            if action == "add_host":
                if s.execute(select(ComputeService).where(ComputeService.host == host)).first() is None:
                    raise NotFound(f"Compute host {host} could not be found.")
                if host in hosts:
                    raise Conflict(f"Aggregate {a.id} already has host {host}.")
                hosts.append(host)
            else:
                if host not in hosts:
                    raise NotFound(f"Cannot remove host {host} in aggregate {a.id}: not found")
                hosts.remove(host)
            a.hosts = hosts
        else:
            v.only_keys(args, {"metadata"})
            meta = args.get("metadata")
            if not isinstance(meta, dict):
                raise BadRequest("Invalid input for field/attribute metadata.")
            current = dict(a.metadata_ or {})
            for k, val in meta.items():
                if not isinstance(k, str) or not 1 <= len(k) <= 255:
                    raise BadRequest("Invalid input for field/attribute metadata.")
                if val is None:
                    current.pop(k, None)
                else:
                    current[k] = str(val)
            a.metadata_ = current
            a.availability_zone = current.get("availability_zone")
        a.updated_at = now()
        s.flush()
        _sync_zones(s)
    return {"aggregate": render_aggregate(call, a)}


# -- diagnostics and usage audit -------------------------------------------------------------------


@api.route("/v2.1/servers/{server_id}/diagnostics", "GET")
def server_diagnostics(call: Call):
    _admin(call, "os_compute_api:os-server-diagnostics")
    server = servers.get_server(svc(call), call.ctx, call.params["server_id"])
    if server.vm_state == "building" or not server.host:
        raise Conflict(f"Cannot get diagnostics of instance {server.id} while it is building")
    f = server.flavor
    if mv(call).matches("2.48"):
        # "driver" is an enum in the API (libvirt, xenapi, ...); like Nova's own fake driver we
        # report "libvirt" there, while "hypervisor" says what it really is.
        states = {1: "running", 3: "paused", 4: "shutdown", 6: "crashed", 7: "suspended"}
        return {
            "state": states.get(server.power_state, "pending"), "driver": "libvirt", "hypervisor": "fake",
            "hypervisor_os": "fake", "uptime": 0, "config_drive": bool(server.config_drive),
            "num_cpus": f["vcpus"], "num_nics": len(server.ports or []), "num_disks": 1,
            "memory_details": {"maximum": f["ram"], "used": 0},
            "cpu_details": [{"id": i, "time": 0, "utilisation": 0} for i in range(f["vcpus"])],
            "nic_details": [{"mac_address": p.get("mac") or None, "rx_octets": 0, "rx_errors": 0, "rx_drop": 0,
                             "rx_packets": 0, "rx_rate": None, "tx_octets": 0, "tx_errors": 0, "tx_drop": 0,
                             "tx_packets": 0, "tx_rate": None} for p in server.ports or []],
            "disk_details": [{"read_bytes": 0, "read_requests": 0, "write_bytes": 0, "write_requests": 0,
                              "errors_count": 0}],
        }  # fmt: skip
    return {"cpu0_time": 0, "memory": f["ram"] * 1024, "vda_read": 0, "vda_write": 0,
            "driver": "fake"}  # fmt: skip


def _audit(call: Call, before: Any) -> dict[str, Any]:
    from datetime import timedelta

    end = before.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=1)).replace(day=1)
    with svc(call).db.reader() as s:
        hosts = [
            r.host
            for r in s.execute(
                select(ComputeService).where(ComputeService.binary == "nova-compute")
            ).scalars()
        ]
    return {
        "hosts_not_run": hosts, "log": {}, "num_hosts": len(hosts), "num_hosts_done": 0,
        "num_hosts_not_run": len(hosts), "num_hosts_running": 0,
        "overall_status": f"0 of {len(hosts)} hosts done. 0 errors.",
        "period_beginning": str(start), "period_ending": str(end), "total_errors": 0, "total_instances": 0,
    }  # fmt: skip


@api.route("/v2.1/os-instance_usage_audit_log", "GET")
def list_audit(call: Call):
    _admin(call, "os_compute_api:os-instance-usage-audit-log")
    return {"instance_usage_audit_logs": _audit(call, now())}


@api.route("/v2.1/os-instance_usage_audit_log/{before}", "GET")
def show_audit(call: Call):
    from datetime import datetime

    _admin(call, "os_compute_api:os-instance-usage-audit-log")
    raw = call.params["before"]
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            before = datetime.strptime(raw, fmt)
            break
        except ValueError:
            continue
    else:
        raise BadRequest(f"Invalid timestamp for date {raw}")
    return {"instance_usage_audit_log": _audit(call, before)}


@api.route("/v2.1/servers/{server_id}/topology", "GET")
def server_topology(call: Call):
    if not mv(call).matches("2.78"):
        raise NotFound("The resource could not be found.")
    server = servers.get_server(svc(call), call.ctx, call.params["server_id"])
    svc(call).enforce(call.ctx, "server:read", {"project_id": server.project_id})
    return {"nodes": [], "pagesize_kb": None}  # the fake driver has no NUMA topology
