"""Server bodies per microversion."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import Call
from kumo.compute.api.common import link, mv, svc
from kumo.compute.models import Server
from kumo.compute.service import boot_info
from kumo.compute.service.core import iso
from kumo.compute.service.servers import host_id
from kumo.compute.service.states import status

PROGRESS = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")


def addresses(server: Server, detail: bool = True) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in server.ports or []:
        for ip in p.get("ips", []):
            entry: dict[str, Any] = {"version": 6 if ":" in ip else 4, "addr": ip}
            if detail:
                entry["OS-EXT-IPS:type"] = "fixed"
                entry["OS-EXT-IPS-MAC:mac_addr"] = p.get("mac", "")
            out.setdefault(p.get("network_name") or "private", []).append(entry)
    return out


def flavor_body(call: Call, server: Server) -> dict[str, Any]:
    f = server.flavor
    if mv(call).matches("2.47"):
        body = {
            "vcpus": f["vcpus"],
            "ram": f["ram"],
            "disk": f["disk"],
            "ephemeral": f.get("ephemeral", 0),
            "swap": f.get("swap", 0),
            "original_name": f.get("name", ""),
        }
        if svc(call).is_admin(call.ctx):
            body["extra_specs"] = dict(f.get("extra_specs") or {})
        return body
    return {
        "id": server.flavor_id,
        "links": [{"rel": "bookmark", "href": f"{call.base_url}/flavors/{server.flavor_id}"}],
    }


def basic(call: Call, server: Server) -> dict[str, Any]:
    """The fields every full server body has (update/rebuild responses before 2.75)."""
    version = mv(call)
    st = status(server.vm_state, server.task_state)
    body: dict[str, Any] = {
        "id": server.id,
        "name": server.name,
        "status": st,
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "metadata": dict(server.metadata_ or {}),
        "hostId": host_id(server.project_id, server.host),
        "image": {
            "id": server.image_id,
            "links": [{"rel": "bookmark", "href": f"{call.base_url}/images/{server.image_id}"}],
        }
        if server.image_id
        else "",
        "flavor": flavor_body(call, server),
        "created": iso(server.created_at),
        "updated": iso(server.updated_at),
        "addresses": addresses(server, detail=False),
        "accessIPv4": server.access_ipv4 or "",
        "accessIPv6": server.access_ipv6 or "",
        "links": link(call, "servers", server.id),
        "OS-DCF:diskConfig": server.disk_config or "MANUAL",
    }
    if st in PROGRESS:
        body["progress"] = 100 if st in ("ACTIVE", "VERIFY_RESIZE") else 0
    if server.fault and st in ("ERROR", "DELETED"):
        body["fault"] = dict(server.fault)
        if not svc(call).is_admin(call.ctx) and body["fault"].get("code", 500) >= 500:
            body["fault"].pop("details", None)
    if version.matches("2.9"):
        body["locked"] = bool(server.locked)
    if version.matches("2.19"):
        body["description"] = server.description
    if version.matches("2.26"):
        body["tags"] = list(server.tags or [])
    if version.matches("2.73"):
        body["locked_reason"] = server.locked_reason
    if version.matches("2.63"):
        body["trusted_image_certificates"] = None
    return body


def detail(call: Call, server: Server) -> dict[str, Any]:
    version = mv(call)
    admin = svc(call).is_admin(call.ctx)
    body = basic(call, server)
    body["addresses"] = addresses(server, detail=True)
    body.update(
        {
            "key_name": server.key_name,
            "security_groups": [{"name": g} for g in (server.security_groups or [])],
            "OS-SRV-USG:launched_at": _usg(server.launched_at),
            "OS-SRV-USG:terminated_at": _usg(server.terminated_at),
            "OS-EXT-AZ:availability_zone": zone(call, server),
            "OS-EXT-STS:task_state": server.task_state,
            "OS-EXT-STS:vm_state": server.vm_state,
            "OS-EXT-STS:power_state": server.power_state,
            "os-extended-volumes:volumes_attached": volumes_attached(call, server),
            "config_drive": "True" if server.config_drive else "",
        }
    )
    if admin:
        body.update(
            {
                "OS-EXT-SRV-ATTR:host": server.host,
                "OS-EXT-SRV-ATTR:hypervisor_hostname": server.node,
                "OS-EXT-SRV-ATTR:instance_name": f"instance-{server.seq:08x}",
            }
        )
        if version.matches("2.3"):
            body.update(
                {
                    "OS-EXT-SRV-ATTR:reservation_id": server.reservation_id,
                    "OS-EXT-SRV-ATTR:launch_index": server.launch_index,
                    "OS-EXT-SRV-ATTR:kernel_id": "",
                    "OS-EXT-SRV-ATTR:ramdisk_id": "",
                    "OS-EXT-SRV-ATTR:hostname": server.hostname,
                    "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                    "OS-EXT-SRV-ATTR:user_data": server.user_data,
                }
            )
        if version.matches("2.16"):
            body["host_status"] = "UP" if server.host else ""
    elif version.matches("2.90"):  # the guest hostname is the user's to see (and set) from 2.90
        body["OS-EXT-SRV-ATTR:hostname"] = server.hostname
    if version.matches("2.96"):  # the zone asked for at create (or unshelve); null when the server floats
        body["pinned_availability_zone"] = server.availability_zone or None
    if version.matches("2.98") and isinstance(body.get("image"), dict):  # as kept at build / rebuild
        body["image"]["properties"] = boot_info.saved_image_properties(server.system_metadata)
    if version.matches("2.100"):  # the create request's hints, {} when none were given
        body["scheduler_hints"] = boot_info.saved_hints(server.system_metadata)
    if not server.security_groups:
        body.pop("security_groups")
    return body


def zone(call: Call, server: Server) -> str:
    """The server's zone: the one it is pinned to, else its host's (looked up once per request)."""
    if server.availability_zone or not server.host:
        return server.availability_zone or ""
    zones = getattr(call.request.state, "kumo_host_zones", None)
    if zones is None:
        from kumo.compute.service.servers import host_zones

        zones = host_zones(svc(call))
        call.request.state.kumo_host_zones = zones
    return zones.get(server.host, "nova")


def volumes_attached(call: Call, server: Server) -> list[dict[str, Any]]:
    from kumo.compute.service.volumes import list_attachments

    rows = list_attachments(svc(call), server.id)
    if mv(call).matches("2.3"):
        return [{"id": r.volume_id, "delete_on_termination": bool(r.delete_on_termination)} for r in rows]
    return [{"id": r.volume_id} for r in rows]


def _usg(dt: Any) -> str | None:
    return dt.isoformat(timespec="microseconds") if dt else None


def with_groups(call: Call, server: Server, body: dict[str, Any]) -> dict[str, Any]:
    """2.71: show, update and rebuild name the server group the server is in."""
    if mv(call).matches("2.71"):
        body["server_groups"] = [server.group_id] if server.group_id else []
    return body


def rebuild_body(call: Call, server: Server) -> dict[str, Any]:
    version = mv(call)
    if version.matches("2.75"):
        body = detail(call, server)
        body.pop("OS-EXT-SRV-ATTR:user_data", None)
        body["user_data"] = server.user_data
    else:
        body = basic(call, server)
        if version.matches("2.54"):
            body["key_name"] = server.key_name
        if version.matches("2.57"):
            body["user_data"] = server.user_data
    return with_groups(call, server, body)
