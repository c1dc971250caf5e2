"""Servers: create (validate, quota, schedule), list/show/update/delete."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from kumo.common.context import RequestContext
from kumo.compute.errors import BadRequest, Conflict, Forbidden, NotFound, OverLimit
from kumo.compute.models import Flavor, InstanceAction, Keypair, Server, ServerGroup
from kumo.compute.scheduler import hints as host_hints
from kumo.compute.scheduler import release, schedule
from kumo.compute.scheduler.filters import Request
from kumo.compute.service import boot_info, quotas
from kumo.compute.service import flavors as flavor_svc
from kumo.compute.service import validate as v
from kumo.compute.service.core import ComputeService, new_uuid, now
from kumo.compute.service.states import ACTIVE, BUILDING, ERROR, status

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and bool(_UUID.match(value))


@dataclass
class NetRequest:
    network_id: str | None = None
    port_id: str | None = None
    fixed_ip: str | None = None
    tag: str | None = None


@dataclass
class CreateRequest:
    name: str
    flavor: Flavor
    image_ref: str | None
    min_count: int = 1
    max_count: int = 1
    key_name: str | None = None
    key_data: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    security_groups: list[str] = field(default_factory=list)
    availability_zone: str | None = None
    networks: Any = None  # "auto" | "none" | list[NetRequest] | None
    block_devices: list[dict[str, Any]] = field(default_factory=list)
    config_drive: bool = False
    tags: list[str] = field(default_factory=list)
    description: str | None = None
    hostname: str | None = None
    admin_pass: str | None = None
    access_ipv4: str = ""
    access_ipv6: str = ""
    disk_config: str = "MANUAL"
    group_id: str | None = None
    return_reservation_id: bool = False
    force_host: str | None = None
    image: dict[str, Any] | None = None
    host_hints: dict[str, list[str]] = field(default_factory=dict)  # same_host / different_host
    personality: list[dict[str, str]] = field(default_factory=list)  # injected files (before 2.57)
    scheduler_hints: dict[str, Any] = field(default_factory=dict)  # as requested (shown from 2.100)


_HOSTNAME = re.compile(r"^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$")  # 2.90: one DNS label


_FQDN = re.compile(r"^[a-zA-Z0-9-._]*$")  # 2.94: a fully qualified name (Nova checks only the characters)


def parse_hostname(value: Any, mv: Any) -> str:
    """A requested ``hostname`` (create, update, rebuild from 2.90): a single label of 2..63 characters;
    from 2.94 it may be an FQDN of 1..255 letters, digits, '-', '.' and '_'."""
    if mv.matches("2.94"):
        if not isinstance(value, str) or not 1 <= len(value) <= 255 or not _FQDN.match(value):
            raise BadRequest(f"Invalid input for field/attribute hostname. Value: {value!r}.")
        return value
    if not isinstance(value, str) or not 2 <= len(value) <= 63 or not _HOSTNAME.match(value):
        raise BadRequest(f"Invalid input for field/attribute hostname. Value: {value!r}.")
    return value


def sanitize_hostname(name: str) -> str:
    h = re.sub(r"[ _.]", "-", name.lower())
    h = re.sub(r"[^a-z0-9-]", "", h).strip("-")
    return h[:63] or "server"


def host_id(project_id: str, host: str | None) -> str:
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def _ip(value: Any, version: int, field_name: str) -> str:
    import ipaddress

    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute {field_name}.")
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise BadRequest(
            f"Invalid input for field/attribute {field_name}. Value: {value}. is not a valid IPv{version} address"
        ) from None
    if addr.version != version:
        raise BadRequest(
            f"Invalid input for field/attribute {field_name}. Value: {value}. is not a valid IPv{version} address"
        )
    return str(addr)


def parse_create(svc: ComputeService, ctx: RequestContext, body: Any, mv: Any) -> CreateRequest:
    svc.enforce(ctx, "server:write", {"project_id": ctx.project_id})
    data = v.body_key(body, "server")
    hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
    if not isinstance(hints, dict):
        raise BadRequest("Invalid input for field/attribute os:scheduler_hints.")
    if "name" not in data:
        raise BadRequest("Invalid input for field/attribute server. 'name' is a required property")
    name = v.name(data["name"], allow_blank_edges=True)
    flavor_ref = data.get("flavorRef")
    if flavor_ref is None:
        raise BadRequest("Invalid input for field/attribute server. 'flavorRef' is a required property")
    fid = str(flavor_ref).rstrip("/").rsplit("/", 1)[-1] if isinstance(flavor_ref, str | int) else None
    if not fid:
        raise BadRequest("Invalid flavorRef provided.")
    try:
        flavor = flavor_svc.get_flavor(svc, ctx, fid)
    except NotFound:
        raise BadRequest(f"Flavor {fid} could not be found.") from None
    if flavor.disabled:
        raise BadRequest("Flavor is disabled.")
    image_ref = data.get("imageRef")
    if image_ref is not None:
        if not isinstance(image_ref, str):
            raise BadRequest("Invalid input for field/attribute imageRef.")
        image_ref = image_ref.rstrip("/").rsplit("/", 1)[-1] or None
    req = CreateRequest(name=name, flavor=flavor, image_ref=image_ref)
    req.min_count = v.integer(data.get("min_count", 1), "min_count", 1)
    req.max_count = v.integer(data.get("max_count", req.min_count), "max_count", 1)
    if req.min_count > req.max_count:
        raise BadRequest("min_count must be <= max_count")
    req.return_reservation_id = v.boolean(data.get("return_reservation_id", False), "return_reservation_id")
    if data.get("key_name") is not None:
        key_name = data["key_name"]
        with svc.db.reader() as s:
            kp = s.execute(
                select(Keypair).where(Keypair.user_id == ctx.user_id, Keypair.name == key_name)
            ).scalar_one_or_none()
        if kp is None:
            raise BadRequest("Invalid key_name provided.")
        req.key_name, req.key_data = kp.name, kp.public_key
    if data.get("user_data") is not None:
        ud = data["user_data"]
        if not isinstance(ud, str):
            raise BadRequest("Invalid input for field/attribute user_data.")
        try:
            base64.b64decode(ud, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("User data needs to be valid base 64.") from None
        if len(ud) > svc.settings.max_user_data_bytes:
            raise BadRequest(
                f"User data too large. User data must be no larger than {svc.settings.max_user_data_bytes} bytes once base64 encoded."
            )
        req.user_data = ud
    if "personality" in data:  # kumo.compute.service.personality
        from kumo.compute.service import personality

        req.personality = personality.parse(svc, ctx.project_id, data["personality"], mv)
    if "metadata" in data:
        req.metadata = v.metadata(data["metadata"])
        limit = quotas.limit_for(svc, ctx.project_id, "metadata_items")
        if 0 <= limit < len(req.metadata):
            raise OverLimit(
                f"Quota exceeded for metadata_items: Requested {len(req.metadata)}, but maximum is {limit}"
            )
    sgs = data.get("security_groups", [{"name": "default"}])
    if not isinstance(sgs, list) or not all(
        isinstance(g, dict) and isinstance(g.get("name"), str) for g in sgs
    ):
        raise BadRequest("Invalid input for field/attribute security_groups.")
    req.security_groups = list(dict.fromkeys(g["name"] for g in sgs)) or ["default"]
    if data.get("availability_zone"):
        az = data["availability_zone"]
        if not isinstance(az, str):
            raise BadRequest("Invalid input for field/attribute availability_zone.")
        zone, _, host = az.partition(":")
        if host:
            host = host.split(":")[0]
            svc.require_admin(ctx, "os_compute_api:servers:create:forced_host")
            req.force_host = host
        req.availability_zone = zone or None
    req.networks = _parse_networks(data.get("networks"), mv)
    req.block_devices = _parse_bdms(data, req.image_ref)
    if req.image_ref is None and not any(b.get("boot_index") in (0, "0") for b in req.block_devices):
        raise BadRequest("Invalid input for field/attribute imageRef. Value: None.")
    if req.image_ref is not None and not is_uuid(req.image_ref):
        raise BadRequest(f"Invalid image identifier or image ID {req.image_ref}.")
    if "config_drive" in data:
        cd = data["config_drive"]
        req.config_drive = cd not in (None, "", False) and str(cd).lower() not in ("false", "0", "no")
    if "tags" in data:
        if not mv.matches("2.52"):
            raise BadRequest("Additional properties are not allowed ('tags' was unexpected)")
        req.tags = _parse_tags(data["tags"])
    if "description" in data:
        if not mv.matches("2.19"):
            raise BadRequest("Additional properties are not allowed ('description' was unexpected)")
        req.description = v.string(data["description"], "description", 255, nullable=True)
    if "hostname" in data:
        if not mv.matches("2.90"):
            raise BadRequest("Additional properties are not allowed ('hostname' was unexpected)")
        req.hostname = parse_hostname(data["hostname"], mv)
        if req.max_count > 1:  # every server would get the same name on its network
            raise BadRequest("Unable to allocate a single hostname to multiple instances")
    if "adminPass" in data:
        req.admin_pass = v.string(data["adminPass"], "adminPass", 255)
    if data.get("accessIPv4"):
        req.access_ipv4 = _ip(data["accessIPv4"], 4, "accessIPv4")
    if data.get("accessIPv6"):
        req.access_ipv6 = _ip(data["accessIPv6"], 6, "accessIPv6")
    if "OS-DCF:diskConfig" in data:
        if data["OS-DCF:diskConfig"] not in ("AUTO", "MANUAL"):
            raise BadRequest("Invalid input for field/attribute OS-DCF:diskConfig.")
        req.disk_config = data["OS-DCF:diskConfig"]
    for key in ("host", "hypervisor_hostname"):
        if key in data:
            if not mv.matches("2.74"):
                raise BadRequest(f"Additional properties are not allowed ('{key}' was unexpected)")
            svc.require_admin(ctx, f"compute:servers:create:requested_destination ({key})")
            host = v.string(data[key], key, 255, 1)
            from kumo.compute.models import ComputeNode

            with svc.db.reader() as s:
                col = ComputeNode.host if key == "host" else ComputeNode.hypervisor_hostname
                node = s.execute(select(ComputeNode).where(col == host)).scalar_one_or_none()
            if node is None:
                raise BadRequest(f"Compute host {host} could not be found.")
            req.force_host = node.host
    group = hints.get("group")
    if group is not None:
        if not is_uuid(group):
            raise BadRequest("Invalid input for field/attribute group.")
        with svc.db.reader() as s:
            g = s.get(ServerGroup, group)
        if g is None:
            raise BadRequest(f"Invalid server group: instance group {group} could not be found.")
        req.group_id = group
    req.host_hints = host_hints.parse(hints)
    req.scheduler_hints = dict(hints)
    return req


def _parse_tags(tags: Any) -> list[str]:
    if not isinstance(tags, list) or len(tags) > 50:
        raise BadRequest("Invalid input for field/attribute tags.")
    for t in tags:
        if not isinstance(t, str) or not 1 <= len(t) <= 60 or "/" in t or "," in t:
            raise BadRequest(f"Invalid input for field/attribute tags. Value: {t!r}.")
    return list(dict.fromkeys(tags))


def _parse_networks(networks: Any, mv: Any) -> Any:
    if networks is None:
        return None
    if isinstance(networks, str):
        if networks in ("auto", "none") and mv.matches("2.37"):
            return networks
        raise BadRequest(f"Invalid input for field/attribute networks. Value: {networks}.")
    if not isinstance(networks, list):
        raise BadRequest("Invalid input for field/attribute networks.")
    if mv.matches("2.37") and not networks:
        raise BadRequest("Invalid input for field/attribute networks. [] is too short")
    out = []
    for n in networks:
        if not isinstance(n, dict):
            raise BadRequest("Invalid input for field/attribute networks.")
        r = NetRequest(
            network_id=n.get("uuid"), port_id=n.get("port"), fixed_ip=n.get("fixed_ip"), tag=n.get("tag")
        )
        if r.port_id is not None and not is_uuid(r.port_id):
            raise BadRequest(f"Bad port format: port uuid is not in proper format ({r.port_id})")
        if r.network_id is not None and not is_uuid(r.network_id):
            raise BadRequest(f"Bad networks format: network uuid is not in proper format ({r.network_id})")
        if r.network_id is None and r.port_id is None:
            raise BadRequest("Bad networks format: a network uuid or port is required")
        if r.fixed_ip is not None:
            import ipaddress

            try:
                ipaddress.ip_address(r.fixed_ip)
            except ValueError:
                raise BadRequest(f"Invalid fixed IP address ({r.fixed_ip})") from None
        out.append(r)
    return out


def _parse_bdms(data: dict[str, Any], image_ref: str | None) -> list[dict[str, Any]]:
    bdms = data.get("block_device_mapping_v2")
    if bdms is None:
        return []
    if not isinstance(bdms, list):
        raise BadRequest("Invalid input for field/attribute block_device_mapping_v2.")
    out = []
    for b in bdms:
        if not isinstance(b, dict):
            raise BadRequest("Invalid input for field/attribute block_device_mapping_v2.")
        src = b.get("source_type", "image" if b.get("boot_index") in (0, "0") else "blank")
        dst = b.get("destination_type", "local")
        if src not in ("image", "blank", "volume", "snapshot") or dst not in ("local", "volume"):
            raise BadRequest("Invalid block device mapping.")
        bi = b.get("boot_index")
        if dst == "volume":
            _check_volume_bdm(b, src)
        out.append(
            {
                "boot_index": None if bi in (None, "none", -1, "-1") else int(bi),
                "source_type": src,
                "destination_type": dst,
                "uuid": b.get("uuid"),
                "volume_size": b.get("volume_size"),
                "device_name": b.get("device_name"),
                "delete_on_termination": bool(b.get("delete_on_termination", dst != "volume") or False),
            }
        )
    return out


def _check_volume_bdm(b: dict[str, Any], src: str) -> None:
    """A block_device_mapping_v2 entry with destination_type=volume (checked as Nova does)."""
    if src in ("volume", "image", "snapshot") and not is_uuid(b.get("uuid")):
        raise BadRequest(f"Block Device Mapping is Invalid: {src} uuid {b.get('uuid')} is not a uuid.")
    size = b.get("volume_size")
    if size is not None:
        try:
            size = int(size)
        except (TypeError, ValueError):
            raise BadRequest(f"Invalid input for field/attribute volume_size. Value: {size}.") from None
        if size < 0:
            raise BadRequest(f"Invalid input for field/attribute volume_size. Value: {size}.")
    if src in ("image", "blank") and not size:
        raise BadRequest(
            "Block Device Mapping is Invalid: Images with destination_type 'volume' need to have a non-zero "
            "size specified"
        )


def check_image(req: CreateRequest, image: dict[str, Any] | None) -> None:
    if req.image_ref is None:
        return
    if image is None:
        raise BadRequest(f"Image {req.image_ref} could not be found.")
    if image.get("status") != "active":
        raise BadRequest(f"Image {req.image_ref} is not active.")
    f = req.flavor
    if (image.get("min_ram") or 0) > f.ram:
        raise BadRequest("Flavor's memory is too small for requested image.")
    size_gb = ((image.get("size") or 0) + 1024**3 - 1) // 1024**3
    if f.disk and (image.get("min_disk") or 0) > f.disk:
        raise BadRequest("Flavor's disk is too small for requested image.")
    if f.disk and size_gb > f.disk:
        raise BadRequest("Flavor's disk is too small for requested image.")
    req.image = image


def _usage(s: Any, project_id: str) -> dict[str, int]:
    row = s.execute(
        select(func.count(), func.coalesce(func.sum(Server.launch_index * 0), 0)).where(
            Server.project_id == project_id, Server.deleted.is_(False)
        )
    ).one()
    servers = list(
        s.execute(
            select(Server.flavor).where(Server.project_id == project_id, Server.deleted.is_(False))
        ).scalars()
    )
    return {
        "instances": row[0],
        "cores": sum(f.get("vcpus", 0) for f in servers),
        "ram": sum(f.get("ram", 0) for f in servers),
    }


def usage(svc: ComputeService, project_id: str) -> dict[str, int]:
    with svc.db.reader() as s:
        return _usage(s, project_id)


def _check_quota(svc: ComputeService, s: Any, ctx: RequestContext, req: CreateRequest) -> int:
    lim = quotas.limits(svc, ctx.project_id, ctx.user_id)
    used = _usage(s, ctx.project_id or "")
    need = {"instances": 1, "cores": req.flavor.vcpus, "ram": req.flavor.ram}
    count = req.max_count
    while count >= req.min_count:
        over = [r for r in need if lim[r] >= 0 and used[r] + need[r] * count > lim[r]]
        if not over:
            return count
        count -= 1
    over = [r for r in need if lim[r] >= 0 and used[r] + need[r] * req.min_count > lim[r]]
    r = over[0]
    raise OverLimit(
        f"Quota exceeded for {', '.join(over)}: Requested {need[r] * req.min_count}, but already used {used[r]} of {lim[r]} {r}"
    )


def create_servers(svc: ComputeService, ctx: RequestContext, req: CreateRequest) -> tuple[list[Server], str]:
    """Record the servers (BUILD/scheduling); returns them and the reservation id."""
    reservation = "r-" + secrets.token_hex(4)
    created: list[Server] = []
    ts = now()
    flavor = flavor_svc.snapshot(req.flavor)
    with svc.db.session() as s:
        count = _check_quota(svc, s, ctx, req)
        if req.group_id:
            g = s.get(ServerGroup, req.group_id)
            if g is not None:
                lim = quotas.limit_for(svc, ctx.project_id, "server_group_members")
                if 0 <= lim < len(g.members or []) + count:
                    raise OverLimit("Quota exceeded, too many servers in group")
        base_seq = svc.next_value(s, "server", count)
        for i in range(count):
            name = req.name if count == 1 else f"{req.name}-{i + 1}"
            sid = new_uuid()
            server = Server(
                id=sid,
                seq=base_seq - count + 1 + i,
                name=name,
                project_id=ctx.project_id or "",
                user_id=ctx.user_id or "",
                image_id=req.image_ref,
                flavor_id=req.flavor.id,
                flavor=flavor,
                vm_state=BUILDING,
                task_state="scheduling",
                power_state=0,
                pending=None,
                op_seq=0,
                availability_zone=req.availability_zone,
                key_name=req.key_name,
                key_data=req.key_data,
                user_data=req.user_data,
                metadata_=dict(req.metadata),
                tags=list(req.tags),
                security_groups=list(req.security_groups),
                networks=req.networks
                if isinstance(req.networks, str | None)
                else [n.__dict__ for n in req.networks],
                ports=[],
                block_devices=list(req.block_devices),
                config_drive=req.config_drive,
                description=req.description,
                hostname=req.hostname or sanitize_hostname(name),
                access_ipv4=req.access_ipv4,
                access_ipv6=req.access_ipv6,
                disk_config=req.disk_config,
                reservation_id=reservation,
                launch_index=i,
                group_id=req.group_id,
                admin_pass=None,
                console="",
                deleted=False,
                created_at=ts,
                updated_at=ts,
            )
            if req.host_hints:  # kept for scheduling this server again (migrations)
                server.system_metadata = {"scheduler_hints": req.host_hints}
            server.system_metadata = boot_info.with_boot_info(server.system_metadata, req.image, req.scheduler_hints)
            if req.personality:
                from kumo.compute.service.personality import stored

                server.system_metadata = stored(server.system_metadata, req.personality)
            s.add(server)
            s.add(new_action(ctx, sid, "create", ts))
            created.append(server)
        if req.group_id:
            g = s.get(ServerGroup, req.group_id)
            if g is not None:
                g.members = list(g.members or []) + [x.id for x in created]
    return created, reservation


def new_action(
    ctx: RequestContext, server_id: str, action: str, ts: datetime | None = None
) -> InstanceAction:
    ts = ts or now()
    return InstanceAction(
        server_id=server_id,
        action=action,
        request_id=ctx.request_id or ("req-" + str(uuid.uuid4())),
        project_id=ctx.project_id or "",
        user_id=ctx.user_id or "",
        message=None,
        events=[],
        start_time=ts,
        updated_at=ts,
    )


def schedule_server(
    svc: ComputeService,
    server_id: str,
    image_props: dict[str, Any],
    force_host: str | None = None,
    unshelving: bool = False,
) -> Server:
    """Claim a host for a BUILD server; no host -> ERROR "No valid host was found."."""
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        f = server.flavor
        req = Request(
            vcpus=f["vcpus"],
            ram_mb=f["ram"],
            disk_gb=f["disk"] + f.get("ephemeral", 0),
            availability_zone=server.availability_zone,
            image_properties=image_props,
            force_host=force_host,
            **host_hints.group_fields(s, server),
            **host_hints.request_fields(s, server),
        )
        node = schedule(s, req, svc.settings, now())
        if node is None:
            set_error(server, "No valid host was found. There are not enough hosts available.", 500)
        else:
            server.host, server.node = node.host, node.hypervisor_hostname
            if not server.availability_zone:
                server.availability_zone = None
            server.task_state = "unshelving" if unshelving else "networking"
        server.updated_at = now()
    return server


def set_error(server: Server, message: str, code: int = 500) -> None:
    server.vm_state = ERROR
    server.task_state = None
    server.pending = None
    server.fault = {"code": code, "message": message, "created": now().strftime("%Y-%m-%dT%H:%M:%SZ")}


def start_build(
    svc: ComputeService, server_id: str, ports: list[dict[str, Any]], unshelving: bool = False
) -> None:
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if (
            server is None
            or server.deleted
            or server.vm_state != ("shelved_offloaded" if unshelving else BUILDING)
        ):
            return
        server.ports = ports
        server.task_state = "spawning" if not unshelving else "spawning"
        server.op_seq += 1
        server.pending = {"op": "build", "seq": server.op_seq}
        if unshelving:
            from kumo.compute.service.agents import boot_image_id, image_api_url

            if (image_id := boot_image_id(server)) and image_id != server.image_id:
                server.pending["shelved_image_url"] = image_api_url(svc, image_id)
        wait = [p["id"] for p in ports if p.get("wait")] if not unshelving else []
        if wait and svc.settings.vif_plugging_timeout > 0:  # start paused until the network is ready
            server.pending.update(vif_wait=wait, vif_plugged=[], vif_timeout=svc.settings.vif_plugging_timeout,
                                  vif_fatal=svc.settings.vif_plugging_is_fatal)
        server.updated_at = now()
    svc.notifier.bump()


def fail_build(svc: ComputeService, server_id: str, message: str) -> None:
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None:
            return
        release(s, server.host, server.flavor)
        server.host = None
        set_error(server, message)


# -- read -------------------------------------------------------------------------------------


def get_server(svc: ComputeService, ctx: RequestContext, server_id: str, write: bool = False) -> Server:
    with svc.db.reader() as s:
        server = s.get(Server, server_id)
    if server is None or server.deleted:
        raise NotFound(f"Instance {server_id} could not be found.")
    if server.project_id != ctx.project_id and not svc.is_admin(ctx):
        raise NotFound(f"Instance {server_id} could not be found.")  # other projects' servers do not exist
    svc.enforce(ctx, "server:write" if write else "server:read", {"project_id": server.project_id})
    return server


def _parse_time(value: str, name: str) -> datetime:
    from datetime import UTC

    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadRequest(f"Invalid filter field: {name}. Value {value!r} is not an ISO 8601 time") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


SORT_KEYS = {
    "created_at": "created_at",
    "display_name": "name",
    "name": "name",
    "updated_at": "updated_at",
    "uuid": "id",
    "id": "id",
    "vm_state": "vm_state",
    "task_state": "task_state",
    "power_state": "power_state",
    "launched_at": "launched_at",
    "host": "host",
    "image_ref": "image_id",
    "project_id": "project_id",
    "user_id": "user_id",
    "key_name": "key_name",
    "hostname": "hostname",
    "availability_zone": "availability_zone",
    "display_description": "description",
    "terminated_at": "terminated_at",
    "locked": "locked",
    "instance_type_id": "flavor_id",
    "node": "node",
    "config_drive": "config_drive",
    "launch_index": "launch_index",
    "reservation_id": "reservation_id",
    "access_ip_v4": "access_ipv4",
    "access_ip_v6": "access_ipv6",
    "kernel_id": "id",
    "ramdisk_id": "id",
    "root_device_name": "id",
}


def list_servers(svc: ComputeService, ctx: RequestContext, query: Any, mv: Any) -> list[Server]:
    svc.enforce(ctx, "server:read", {"project_id": ctx.project_id})
    admin = svc.is_admin(ctx)
    q = {k: query.getlist(k) for k in query}

    def one(key: str) -> str | None:
        vals = q.get(key)
        return vals[-1] if vals else None

    all_tenants = (
        admin
        and one("all_tenants") is not None
        and one("all_tenants").lower() not in ("false", "0", "off", "no")
    )
    project = one("project_id") or one("tenant_id")
    stmt = select(Server)
    if not (admin and all_tenants):  # tenant_id is ignored unless all_tenants is given (as in Nova)
        stmt = stmt.where(Server.project_id == (ctx.project_id or ""))
    elif project:
        stmt = stmt.where(Server.project_id == project)
    changes_since = one("changes-since")
    changes_before = one("changes-before") if mv.matches("2.66") else None
    since = _parse_time(changes_since, "changes-since") if changes_since else None
    before = _parse_time(changes_before, "changes-before") if changes_before else None
    deleted_param = one("deleted") if admin else None
    show_deleted = (
        since is not None
        or before is not None
        or (deleted_param is not None and deleted_param.lower() in ("true", "1", "yes"))
    )
    if not show_deleted:
        stmt = stmt.where(Server.deleted.is_(False))
    elif deleted_param is not None and deleted_param.lower() in ("true", "1", "yes"):
        stmt = stmt.where(Server.deleted.is_(True))
    if since is not None:
        stmt = stmt.where(Server.updated_at >= since)
    if before is not None:
        stmt = stmt.where(Server.updated_at <= before)
    for key, col in (
        ("image", Server.image_id),
        ("flavor", Server.flavor_id),
        ("reservation_id", Server.reservation_id),
    ):
        val = one(key)
        if val is not None:
            stmt = stmt.where(
                col == val.rstrip("/").rsplit("/", 1)[-1] if key in ("image", "flavor") else col == val
            )
    if admin:
        for key, col in (("host", Server.host), ("node", Server.node)):
            if one(key) is not None:
                stmt = stmt.where(col == one(key))
    with svc.db.reader() as s:
        rows = list(s.execute(stmt).scalars())
    if admin or mv.matches("2.83"):  # before 2.83 Nova drops these filters for non-admin users
        rows = _state_filters(rows, q, host_zones(svc) if q.get("availability_zone") else {})
    statuses = q.get("status")
    if statuses:
        wanted = {x.upper() for x in statuses}
        rows = [r for r in rows if status(r.vm_state, r.task_state) in wanted]
    name = one("name") or one("display_name")
    if name is not None:
        rows = [r for r in rows if _regex(name, r.name)]
    for key in ("ip", "ip6"):
        if one(key) is not None:
            pat = one(key)
            rows = [
                r for r in rows if any(_regex(pat, ip) for p in (r.ports or []) for ip in p.get("ips", []))
            ]
    if one("locked") is not None and mv.matches("2.73"):
        want = one("locked").lower() in ("true", "1", "yes")
        rows = [r for r in rows if bool(r.locked) == want]
    if mv.matches("2.26"):
        for key in ("tags", "tags-any", "not-tags", "not-tags-any"):
            if one(key) is not None:
                tags = set(one(key).split(","))
                if key == "tags":
                    rows = [r for r in rows if tags <= set(r.tags or [])]
                elif key == "tags-any":
                    rows = [r for r in rows if tags & set(r.tags or [])]
                elif key == "not-tags":
                    rows = [r for r in rows if not tags <= set(r.tags or [])]
                else:
                    rows = [r for r in rows if not tags & set(r.tags or [])]
    if one("description") is not None and mv.matches("2.19"):
        rows = [r for r in rows if _regex(one("description"), r.description or "")]
    keys = q.get("sort_key") or []
    dirs = q.get("sort_dir") or []
    for k in keys:
        if k not in SORT_KEYS:
            if k in ("locked_by",) or not admin:
                raise BadRequest(f"Invalid input for field/attribute sort_key. Value: {k}.")
            raise BadRequest(f"Invalid input for field/attribute sort_key. Value: {k}.")
    for d in dirs:
        if d not in ("asc", "desc"):
            raise BadRequest(f"Invalid input for field/attribute sort_dir. Value: {d}.")
    order = list(zip(keys, dirs + ["desc"] * (len(keys) - len(dirs)), strict=False)) or [
        ("created_at", "desc")
    ]
    order.append(("id", order[0][1] if order else "desc"))
    rows.sort(key=lambda r: r.seq, reverse=True)
    for key, direction in reversed(order):
        attr = SORT_KEYS.get(key, "id")
        rows.sort(key=lambda r, a=attr: _sortable(getattr(r, a)), reverse=direction == "desc")
    return rows


def host_zones(svc: ComputeService) -> dict[str, str]:
    """Each compute host's availability zone."""
    from kumo.compute.models import ComputeService as Service

    with svc.db.reader() as s:
        rows = s.execute(select(Service.host, Service.zone).where(Service.binary == "nova-compute"))
        return {host: zone for host, zone in rows}


def _state_filters(rows: list[Server], q: dict[str, list[str]], zones: dict[str, str]) -> list[Server]:
    """availability_zone, config_drive, key_name, created_at, launched_at, terminated_at,
    power_state, task_state, vm_state, progress, user_id (admins always, everyone from 2.83)."""
    for key in ("vm_state", "task_state", "power_state"):
        if q.get(key):
            wanted = set(q[key])
            rows = [r for r in rows if str(getattr(r, key)) in wanted or (getattr(r, key) is None and "None" in wanted)]
    if q.get("user_id"):
        rows = [r for r in rows if r.user_id == q["user_id"][-1]]
    if q.get("config_drive"):
        want = str(q["config_drive"][-1]).strip().lower() in ("1", "true", "yes", "on", "t", "y")
        rows = [r for r in rows if bool(r.config_drive) == want]
    if q.get("key_name"):  # regular expressions, as Nova matches them
        rows = [r for r in rows if _regex(q["key_name"][-1], r.key_name or "")]
    if q.get("availability_zone"):  # the zone the server landed in when none was asked for
        pat = q["availability_zone"][-1]
        rows = [r for r in rows if _regex(pat, r.availability_zone or (zones.get(r.host, "nova") if r.host else ""))]
    if q.get("progress"):
        rows = [r for r in rows if _regex(q["progress"][-1], str(_progress(r)))]
    for key in ("created_at", "launched_at", "terminated_at"):
        if q.get(key):
            pat = q[key][-1]
            rows = [
                r for r in rows
                if getattr(r, key) is not None
                and (_regex(pat, getattr(r, key).strftime("%Y-%m-%dT%H:%M:%SZ"))
                     or _regex(pat, getattr(r, key).strftime("%Y-%m-%d %H:%M:%S")))
            ]  # fmt: skip
    return rows


def _progress(r: Server) -> int:
    return 100 if status(r.vm_state, r.task_state) in ("ACTIVE", "VERIFY_RESIZE") else 0


def _sortable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, datetime):
        return (1, value.isoformat())
    if isinstance(value, bool | int | float):
        return (1, float(value))
    return (1, str(value))


def _regex(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value or "") is not None
    except re.error:
        return pattern in (value or "")


def update_server(svc: ComputeService, ctx: RequestContext, server_id: str, body: Any, mv: Any) -> Server:
    data = v.body_key(body, "server")
    allowed = {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
    if mv.matches("2.19"):
        allowed.add("description")
    if mv.matches("2.90"):
        allowed.add("hostname")
    v.only_keys(data, allowed)
    get_server(svc, ctx, server_id, write=True)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        if "name" in data:
            server.name = v.name(data["name"], allow_blank_edges=True)
        if "description" in data:
            server.description = v.string(data["description"], "description", 255, nullable=True)
        if "hostname" in data:
            server.hostname = parse_hostname(data["hostname"], mv)
        if "accessIPv4" in data:
            server.access_ipv4 = _ip(data["accessIPv4"], 4, "accessIPv4") if data["accessIPv4"] else ""
        if "accessIPv6" in data:
            server.access_ipv6 = _ip(data["accessIPv6"], 6, "accessIPv6") if data["accessIPv6"] else ""
        if "OS-DCF:diskConfig" in data:
            if data["OS-DCF:diskConfig"] not in ("AUTO", "MANUAL"):
                raise BadRequest("Invalid input for field/attribute OS-DCF:diskConfig.")
            server.disk_config = data["OS-DCF:diskConfig"]
        server.updated_at = now()
    return server


def check_lock(svc: ComputeService, ctx: RequestContext, server: Server) -> None:
    if server.locked and not svc.is_admin(ctx):
        raise Conflict(f"Instance {server.id} is locked")


def delete_server(
    svc: ComputeService, ctx: RequestContext, server_id: str, force: bool = False
) -> tuple[Server, bool]:
    """Start deleting; returns the server and whether the agent has to act."""
    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        s.add(new_action(ctx, server_id, "delete"))
        if not server.host:
            finish_delete(s, server)
            agent = False
        else:
            server.task_state = "deleting"
            server.op_seq += 1
            prev = server.pending or {}
            server.pending = {"op": "delete", "seq": server.op_seq}
            if prev.get("op") == "snapshot":  # the agent drops the unfinished snapshot's image too
                server.pending["snapshot_image_url"] = prev.get("image_url")
            server.updated_at = now()
            agent = True
    if agent:
        svc.notifier.bump()
    return server, agent


def finish_delete(s: Any, server: Server) -> None:
    release(s, server.host, server.flavor)
    if server.old_flavor:
        release(s, server.host, server.old_flavor)
    ts = now()
    server.deleted, server.vm_state, server.task_state = True, "deleted", None
    server.power_state, server.pending = 0, None
    server.deleted_at = server.terminated_at = server.updated_at = ts
    if server.group_id:
        g = s.get(ServerGroup, server.group_id)
        if g is not None:
            g.members = [m for m in (g.members or []) if m != server.id]


def active_or_error(server: Server) -> bool:
    return server.vm_state in (ACTIVE, ERROR)


def forbid_other_project(svc: ComputeService, ctx: RequestContext, server: Server) -> None:
    if server.project_id != ctx.project_id and not svc.is_admin(ctx):
        raise Forbidden("Policy doesn't allow this action to be performed.")
