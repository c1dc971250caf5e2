"""The internal agent API's domain side: registration, heartbeats, desired state, reports."""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy import select

from kumo.compute.errors import BadRequest, NotFound
from kumo.compute.models import ComputeNode, ComputeService, InstanceAction, Migration, Server
from kumo.compute.scheduler import claims
from kumo.compute.service.actions import RESULT
from kumo.compute.service.core import ComputeService as Svc
from kumo.compute.service.core import iso, new_uuid, now
from kumo.compute.service.migrate import EVENT_NAMES as MIGRATION_EVENTS
from kumo.compute.service.migrate import OPS as MIGRATION_OPS
from kumo.compute.service.servers import finish_delete, host_id, set_error
from kumo.compute.service.states import ACTIVE, PAUSED, RESIZED, STOPPED, SUSPENDED

DESIRED = {
    "rescued": "running",
    ACTIVE: "running",
    RESIZED: "running",
    STOPPED: "stopped",
    PAUSED: "paused",
    SUSPENDED: "suspended",
}
CONSOLE_MAX = 65536
RELEASE = "release_volumes"  # the VM is gone; the API is deleting its volume attachments


def ensure_control_services(svc: Svc) -> None:
    """The in-process scheduler and conductor show up in os-services like Nova's."""
    host = socket.gethostname()
    with svc.db.session() as s:
        for binary in ("nova-scheduler", "nova-conductor"):
            row = s.execute(
                select(ComputeService).where(ComputeService.binary == binary)
            ).scalar_one_or_none()
            if row is None:
                s.add(
                    ComputeService(
                        uuid=new_uuid(),
                        host=host,
                        binary=binary,
                        topic=binary.split("-")[1],
                        zone="internal",
                        created_at=now(),
                        updated_at=now(),
                        last_seen=now(),
                    )
                )


def register(svc: Svc, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("host"), str) or not body["host"]:
        raise BadRequest("host is required")
    inv = body.get("inventory") or {}
    host = body["host"]
    ts = now()
    with svc.db.session() as s:
        service = s.execute(
            select(ComputeService).where(ComputeService.host == host, ComputeService.binary == "nova-compute")
        ).scalar_one_or_none()
        if service is None:
            service = ComputeService(
                uuid=new_uuid(),
                host=host,
                binary="nova-compute",
                topic="compute",
                zone=body.get("zone") or "nova",
                created_at=ts,
            )
            s.add(service)
        service.last_seen, service.updated_at = ts, ts
        node = s.execute(select(ComputeNode).where(ComputeNode.host == host)).scalar_one_or_none()
        if node is None:
            node = ComputeNode(
                uuid=new_uuid(),
                host=host,
                hypervisor_hostname=body.get("hypervisor_hostname") or host,
                hypervisor_type=body.get("hypervisor_type", "fake"),
                vcpus=0,
                memory_mb=0,
                local_gb=0,
                created_at=ts,
            )
            s.add(node)
        node.hypervisor_type = body.get("hypervisor_type", node.hypervisor_type)
        node.hypervisor_version = int(body.get("hypervisor_version") or 1000)
        node.host_ip = body.get("host_ip") or "127.0.0.1"
        node.vcpus = int(inv.get("vcpus", 1))
        node.memory_mb = int(inv.get("memory_mb", 1024))
        node.local_gb = int(inv.get("local_gb", 10))
        node.cpu_info = body.get("cpu_info") or {}
        node.updated_at = ts
        # recompute usage from the servers placed here (self-healing after crashes)
        rows = list(s.execute(select(Server).where(Server.host == host, Server.deleted.is_(False))).scalars())
        node.vcpus_used = sum(r.flavor.get("vcpus", 0) + (r.old_flavor or {}).get("vcpus", 0) for r in rows)
        node.memory_mb_used = sum(r.flavor.get("ram", 0) + (r.old_flavor or {}).get("ram", 0) for r in rows)
        node.local_gb_used = sum(
            r.flavor.get("disk", 0) + r.flavor.get("ephemeral", 0) + (r.old_flavor or {}).get("disk", 0)
            for r in rows
        )
        node.running_vms = len(rows)
        return {"host": host, "service_id": service.uuid, "node_id": node.uuid}


def heartbeat(svc: Svc, host: str) -> None:
    with svc.db.session() as s:
        service = s.execute(
            select(ComputeService).where(ComputeService.host == host, ComputeService.binary == "nova-compute")
        ).scalar_one_or_none()
        if service is None:
            raise NotFound(f"Compute host {host} is not registered.")
        service.last_seen = now()
        for other in s.execute(
            select(ComputeService).where(ComputeService.binary != "nova-compute")
        ).scalars():
            other.last_seen = service.last_seen


def image_api_url(svc: Svc, image_id: str) -> str | None:
    for etype, _n, url in svc.extras.get("endpoints", []):
        if etype == "image":
            return f"{url}/v2/images/{image_id}"
    return None


def boot_image_id(server: Server) -> str | None:
    """The image a server's disk is made from: while it is unshelved, the ``<name>-shelved``
    snapshot taken when it was offloaded (its disk as it was), else its own image."""
    shelved = (server.system_metadata or {}).get("shelved_image_id")
    if shelved and server.image_id and server.vm_state == "shelved_offloaded":
        return shelved
    return server.image_id


def _spec(svc: Svc, server: Server) -> dict[str, Any]:
    image_id = boot_image_id(server)
    image_url = None
    if image_id and (api := image_api_url(svc, image_id)):
        image_url = api + "/file"
    f = server.flavor
    return {
        "id": server.id,
        "name": server.name,
        "hostname": server.hostname,
        "project_id": server.project_id,
        "flavor": {
            "name": f.get("name", ""),
            "vcpus": f["vcpus"],
            "ram_mb": f["ram"],
            "disk_gb": f["disk"],
            "ephemeral_gb": f.get("ephemeral", 0),
            "swap_mb": f.get("swap", 0),
            "extra_specs": f.get("extra_specs", {}),
        },
        "image": {"id": image_id, "url": image_url} if image_id else None,
        "block_devices": server.block_devices or [],
        "ports": [
            {
                "id": p["id"],
                "network_id": p.get("network_id", ""),
                "mac_address": p.get("mac", ""),
                "fixed_ips": p.get("ips", []),
            }
            for p in server.ports or []
        ],
        "user_data": server.user_data,
        "metadata": server.metadata_ or {},
        "config_drive": server.config_drive,
        "key_name": server.key_name,
        "public_key": server.key_data,
        # the files of the config drive (kumo.agents.compute.configdrive builds the ISO)
        "config_drive_doc": _config_drive_doc(svc, server) if server.config_drive else None,
        # the rescue image and where it goes while rescued (kumo.compute.service.rescue)
        "rescue": _rescue_doc(svc, server),
    }


def _rescue_doc(svc: Svc, server: Server) -> dict[str, Any] | None:
    from kumo.compute.service import rescue

    doc = rescue.current(server)
    if not doc:
        return None
    image_api = next((url for etype, _n, url in svc.extras.get("endpoints", []) if etype == "image"), None)
    return rescue.spec_doc(doc, image_api)


def _config_drive_doc(svc: Svc, server: Server) -> dict[str, Any]:
    from kumo.compute.service.metadata import config_drive_doc

    return config_drive_doc(svc, server)


def desired(svc: Svc, host: str) -> list[dict[str, Any]]:
    with svc.db.reader() as s:
        rows = list(s.execute(select(Server).where(Server.host == host, Server.deleted.is_(False))).scalars())
    rows = [r for r in rows if (r.pending or {}).get("op") != RELEASE]  # their VMs are gone already
    from kumo.compute.service.volumes import spec_volume_map

    vols = spec_volume_map(svc, [r.id for r in rows])
    out = []
    for r in rows:
        if (r.pending or {}).get("hold"):  # 2.93 rebuild: the VM stays stopped while its root volume is re-imaged
            out.append({"id": r.id, "pending": None, "desired": "stopped", "vm_state": r.vm_state,
                        "power_state": r.power_state, "spec": {**_spec(svc, r), "volumes": vols.get(r.id, [])}})
            continue
        out.append(
            {
                "id": r.id,
                "pending": r.pending,
                "desired": "stopped"
                if r.vm_state == RESIZED and r.power_state == 4
                else DESIRED.get(r.vm_state),
                "vm_state": r.vm_state,
                "power_state": r.power_state,
                "spec": {**_spec(svc, r), "volumes": vols.get(r.id, [])},
            }
        )
    return out


def report(svc: Svc, server_id: str, body: Any) -> None:
    if not isinstance(body, dict):
        raise BadRequest("report body must be an object")
    seq = body.get("seq")
    ts = now()
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None:
            raise NotFound(f"Instance {server_id} could not be found.")
        if "console" in body and isinstance(body["console"], str):
            server.console = body["console"][-CONSOLE_MAX:]
        pending = server.pending
        if pending is None or seq is None or pending.get("seq") != seq:
            if "power_state" in body and pending is None and not server.deleted:
                server.power_state = int(body["power_state"])
            if "power_state" in body and pending is not None and pending.get("hold") and seq is None:
                server.pending = {**pending, "vm_stopped": int(body["power_state"]) in (4, 0)}
            if pending is not None and seq is not None:
                # a newer operation arrived while the agent worked on an older one: wake it again
                svc.notifier.bump()
            return
        op = pending["op"]
        ok = bool(body.get("ok", True))
        if op in ("extend_volume", "volume_snapshot_create", "volume_snapshot_delete"):  # state unchanged
            from kumo.compute.service.volume_changes import reported as volume_changed

            if op == "extend_volume":  # its own action (assisted snapshots have none, as in Nova)
                _finish_event(s, server, op, ok, body.get("fault"), ts)
            volume_changed(svc, server, pending, ok, body.get("fault"), body.get("power_state"))
            return
        _finish_event(s, server, op, ok, body.get("fault"), ts)
        if op in MIGRATION_OPS:  # one step of a cold or live migration (kumo.compute.service.migrate)
            from kumo.compute.service.migrate import reported

            reported(svc, s, server, pending, ok, body.get("fault"), body.get("power_state"), ts)
            return
        if op == "snapshot":  # the image's fate is the agent's; the server goes back to what it was
            from kumo.compute.service.snapshots import finish as finish_snapshot

            finish_snapshot(server, ok)
            return
        if op in ("attach_volume", "detach_volume"):  # the server's state is not changed
            from kumo.compute.service.volumes import finish_op

            finish_op(s, server, pending, ok)
            if "power_state" in body:
                server.power_state = int(body["power_state"])
            return
        if not ok:
            if pending.get("evacuation"):
                from kumo.compute.service.evacuate import finished

                finished(s, server.id, False)
            if op == "build":
                claims.release(s, server.host, server.flavor)
            set_error(server, str(body.get("fault") or "The driver failed."), 500)
            server.updated_at = ts
            return
        if op == "delete":
            from kumo.compute.service.volumes import has_attachments

            if has_attachments(s, server.id):  # as Nova: the server is gone once its volumes are released
                server.power_state, server.pending = 0, {"op": RELEASE, "seq": server.op_seq}
                server.updated_at = ts
                return
            finish_delete(s, server)
            return
        power = int(body.get("power_state", RESULT.get(op, (None, 1))[1]))
        vm_state = RESULT[op][0]
        if op == "resize":
            server.old_flavor = server.flavor
            server.flavor = pending["flavor"]
            server.flavor_id = pending["flavor"]["id"]
            _migration(s, server.id, "finished")
        elif op == "revert_resize":
            claims.release(s, server.host, server.flavor)
            node = s.execute(select(ComputeNode).where(ComputeNode.host == server.host)).scalar_one_or_none()
            if node is not None:
                node.running_vms += 1
            if server.old_flavor:
                server.flavor = server.old_flavor
                server.flavor_id = server.old_flavor["id"]
            server.old_flavor = None
            vm_state = STOPPED if power == 4 else ACTIVE
            _migration(s, server.id, "reverted")
        elif op == "shelve":
            claims.release(s, server.host, server.flavor)
            server.host, server.node = None, None
        elif op == "rebuild":
            vm_state = STOPPED if pending.get("from") == STOPPED else ACTIVE
            power = 4 if vm_state == STOPPED else power
            if pending.get("evacuation"):
                from kumo.compute.service.evacuate import finished

                finished(s, server.id, True)
        if op in ("build", "rebuild"):
            server.launched_at = ts
        if op == "build" and pending.get("shelved_image_url"):
            server.system_metadata = {k: v for k, v in (server.system_metadata or {}).items()
                                      if k != "shelved_image_id"}
        server.vm_state = vm_state or server.vm_state
        server.power_state = power
        server.task_state = None
        server.pending = None
        server.fault = None if op == "build" else server.fault
        server.updated_at = ts


def _migration(s: Any, server_id: str, status: str) -> None:
    m = (
        s.execute(select(Migration).where(Migration.server_id == server_id).order_by(Migration.id.desc()))
        .scalars()
        .first()
    )
    if m is not None:
        m.status, m.updated_at = status, now()


EVENT_NAMES = {
    "build": "compute__do_build_and_run_instance",
    "reboot": "compute_reboot_instance",
    "reboot_hard": "compute_reboot_instance",
    "stop": "compute_stop_instance",
    "start": "compute_start_instance",
    "pause": "compute_pause_instance",
    "unpause": "compute_unpause_instance",
    "suspend": "compute_suspend_instance",
    "resume": "compute_resume_instance",
    "rebuild": "compute_rebuild_instance",
    "resize": "compute_finish_resize",
    "revert_resize": "compute_finish_revert_resize",
    "delete": "compute_terminate_instance",
    "snapshot": "compute_snapshot_instance",
    **MIGRATION_EVENTS,
}


def _finish_event(s: Any, server: Server, op: str, ok: bool, fault: Any, ts: Any) -> None:
    act = (
        s.execute(
            select(InstanceAction)
            .where(InstanceAction.server_id == server.id)
            .order_by(InstanceAction.id.desc())
        )
        .scalars()
        .first()
    )
    if act is None:
        return
    act.events = list(act.events or []) + [
        {
            "event": EVENT_NAMES.get(op, f"compute_{op}"),
            "start_time": iso(act.start_time),
            "finish_time": iso(ts),
            "result": "Success" if ok else "Error",
            "traceback": None if ok else str(fault),
            "details": None if ok else _fault_message(fault),  # shown from 2.84
            "host": server.host,
            "hostId": host_id(server.project_id, server.host),
        }
    ]
    if not ok:
        act.message = "Error"
    act.updated_at = ts


def _fault_message(fault: Any) -> str:
    """The user-readable part of a fault (an event's ``details``): its message, never a traceback."""
    if isinstance(fault, dict):
        return str(fault.get("message") or "Error")[:255]
    return str(fault or "Error").strip().splitlines()[0][:255] if str(fault or "").strip() else "Error"


def finish_released_deletes(svc: Svc) -> int:
    """At start-up: deletes whose volume release was cut short by a restart end now (the block
    storage attachments they still hold are left for an operator, as before the release began)."""
    count = 0
    with svc.db.session() as s:
        rows = s.execute(select(Server).where(Server.deleted.is_(False), Server.task_state == "deleting")).scalars()
        for server in rows:
            if (server.pending or {}).get("op") == RELEASE:
                finish_delete(s, server)
                count += 1
    return count


def recover_interrupted_builds(svc: Svc) -> int:
    """At start-up: a server left in BUILD before its build was handed to an agent (the API
    process died between scheduling and port binding) goes to ERROR instead of staying in
    BUILD forever. Builds already handed to an agent stay pending: the agent finishes them."""
    count = 0
    with svc.db.session() as s:
        rows = s.execute(
            select(Server).where(Server.vm_state == "building", Server.deleted.is_(False))
        ).scalars()
        for server in rows:
            if server.pending is None:
                claims.release(s, server.host, server.flavor)
                server.host = server.node = None
                set_error(server, "Build was interrupted by a restart of the compute API; please retry.")
                server.updated_at = now()
                count += 1
    return count


VIF_EVENTS = ("network-vif-plugged", "network-vif-unplugged", "network-vif-deleted")


def vif_event(s: Any, server: Server, event: dict[str, Any]) -> bool:
    """A ``network-vif-*`` external event from the network service: recorded as an instance
    action event; a plugged port of a build waiting for its network is noted in the build's
    pending state. True when the host's agent must be woken (once the session committed) to
    let the guest run (QMP ``cont``)."""
    name, port_id, status = event["name"], str(event.get("tag") or ""), event.get("status", "completed")
    ts = now()
    act = (
        s.execute(
            select(InstanceAction)
            .where(InstanceAction.server_id == server.id)
            .order_by(InstanceAction.id.desc())
        )
        .scalars()
        .first()
    )
    if act is not None:
        ok = status != "failed"
        act.events = list(act.events or []) + [
            {
                "event": "compute_external_instance_event",
                "start_time": iso(ts),
                "finish_time": iso(ts),
                "result": "Success" if ok else "Error",
                "traceback": None if ok else f"{name} failed for port {port_id}",
                "details": f"{name}:{port_id}",
                "host": server.host,
                "hostId": host_id(server.project_id, server.host),
            }
        ]
        act.updated_at = ts
    pending = server.pending or {}
    if name != "network-vif-plugged" or pending.get("op") != "build" or port_id not in (pending.get("vif_wait") or ()):
        return False
    key = "vif_failed" if status == "failed" else "vif_plugged"
    if port_id in (pending.get(key) or ()):
        return False
    server.pending = {**pending, key: [*(pending.get(key) or ()), port_id]}
    server.updated_at = ts
    return True
