"""Evacuate: rebuild a server whose host is down on another host, and clean up when the old host returns.

The migration record (migration_type "evacuation") walks accepted -> done (the destination agent
rebuilt the server) -> completed (the source agent came back and destroyed its stale copy), or
-> failed when the rebuild fails.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from kumo.common.context import RequestContext
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.models import ComputeService as ServiceRow
from kumo.compute.models import Migration, Server
from kumo.compute.scheduler import claims
from kumo.compute.scheduler.filters import Request
from kumo.compute.service.core import ComputeService, new_uuid, now
from kumo.compute.service.servers import get_server, new_action
from kumo.compute.service.states import ACTIVE, ERROR, STOPPED

# statuses of an evacuation whose source host still has to destroy its copy
SOURCE_CLEANUP = ("accepted", "pre-migrating", "done")


def _service_up(svc: ComputeService, row: ServiceRow) -> bool:
    if row.forced_down or row.last_seen is None:
        return False
    return now() - row.last_seen <= timedelta(seconds=svc.settings.service_down_time)


def evacuate(
    svc: ComputeService,
    ctx: RequestContext,
    server_id: str,
    host: str | None,
    force: bool,
    target_stopped: bool,
) -> Server:
    """Move ``server_id`` off its dead host: claim a new host, record the migration, rebuild there."""
    get_server(svc, ctx, server_id, write=True)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        if host is not None:
            target = s.execute(
                select(ServiceRow).where(ServiceRow.host == host, ServiceRow.binary == "nova-compute")
            ).scalar_one_or_none()
            if target is None:
                raise NotFound(f"Compute host {host} not found.")
            if host == server.host:
                raise BadRequest("The target host can't be the same one.")
        if server.vm_state not in (ACTIVE, STOPPED, ERROR) or server.task_state is not None:
            what = f"task_state {server.task_state}" if server.task_state else f"vm_state {server.vm_state}"
            raise Conflict(f"Cannot 'evacuate' instance {server_id} while it is in {what}")
        source = server.host
        if not source:
            raise Conflict(f"Cannot 'evacuate' instance {server_id}: it has no host")
        src = s.execute(
            select(ServiceRow).where(ServiceRow.host == source, ServiceRow.binary == "nova-compute")
        ).scalar_one_or_none()
        if src is not None and _service_up(svc, src):
            raise BadRequest(f"Compute service of {source} is still in use.")
        f = server.flavor
        req = Request(
            vcpus=f["vcpus"],
            ram_mb=f["ram"],
            disk_gb=f["disk"] + f.get("ephemeral", 0),
            availability_zone=None if host else server.availability_zone,
            force_host=host,
        )
        node = claims.schedule(s, req, svc.settings, now())
        if node is None or node.host == source:
            raise BadRequest("No valid host was found. There are not enough hosts available.")
        ts = now()
        claims.release(s, source, server.flavor)
        s.add(
            Migration(
                uuid=new_uuid(),
                server_id=server_id,
                project_id=server.project_id,
                user_id=server.user_id,
                migration_type="evacuation",
                status="accepted",
                source_compute=source,
                dest_compute=node.host,
                source_node=server.node,
                dest_node=node.hypervisor_hostname,
                old_flavor_id=server.flavor_id,
                new_flavor_id=server.flavor_id,
                created_at=ts,
                updated_at=ts,
            )
        )
        stopped = target_stopped or server.vm_state == STOPPED
        server.host, server.node = node.host, node.hypervisor_hostname
        if server.vm_state == ERROR:
            server.vm_state, server.fault = ACTIVE, None
        server.task_state = "rebuilding"
        server.op_seq += 1
        server.pending = {
            "op": "rebuild",
            "seq": server.op_seq,
            "from": STOPPED if stopped else ACTIVE,
            "evacuation": True,
        }
        server.updated_at = ts
        s.add(new_action(ctx, server_id, "evacuate"))
    svc.notifier.bump()
    return server


def finished(s: Any, server_id: str, ok: bool) -> None:
    """The destination agent reported the rebuild: the evacuation is done (or failed)."""
    m = (
        s.execute(
            select(Migration)
            .where(Migration.server_id == server_id, Migration.migration_type == "evacuation")
            .order_by(Migration.id.desc())
        )
        .scalars()
        .first()
    )
    if m is not None and m.status in ("accepted", "pre-migrating"):
        m.status, m.updated_at = ("done" if ok else "failed"), now()


def stale_on(svc: ComputeService, host: str) -> list[str]:
    """Servers evacuated away from ``host`` whose copy there has not been destroyed yet."""
    with svc.db.reader() as s:
        rows = s.execute(
            select(Migration.server_id, Server.host)
            .join(Server, Server.id == Migration.server_id)
            .where(
                Migration.migration_type == "evacuation",
                Migration.source_compute == host,
                Migration.status.in_(SOURCE_CLEANUP),
            )
        ).all()
    return sorted({sid for sid, now_on in rows if now_on != host})


def cleaned(svc: ComputeService, host: str, server_id: str) -> None:
    """The source agent destroyed its copy: the evacuation is completed."""
    with svc.db.session() as s:
        rows = s.execute(
            select(Migration).where(
                Migration.server_id == server_id,
                Migration.migration_type == "evacuation",
                Migration.source_compute == host,
                Migration.status.in_(SOURCE_CLEANUP),
            )
        ).scalars()
        found = False
        for m in rows:
            m.status, m.updated_at, found = "completed", now(), True
    if not found:
        raise NotFound(f"No evacuation of {server_id} from {host} awaits cleanup.")
