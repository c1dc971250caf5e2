"""Cold and live migration of a server to another compute host.

Cold migration is a resize to the same flavor on another host (as in Nova). The migration record
(migration_type "migration") walks pre-migrating (the source agent powers the VM off and keeps
its copy) -> post-migrating (the destination agent builds it) -> finished (VERIFY_RESIZE) and then
confirming (the source agent drops its copy) -> confirmed, or reverting (the destination drops
its copy, the source powers its own back on) -> reverted. A source whose driver cannot move a
server refuses in the first step: the migration goes to error and the server stays where it was.

Live migration (migration_type "live-migration") walks queued (the source agent checks it can
migrate) -> running (the destination agent starts the VM) -> post-migrating (the server runs on
the destination; the source agent drops its copy) -> completed; or -> error when a step fails
(the server stays on, or returns to, its source), or -> cancelled by an abort while queued.

Each step is a pending operation of the host the server is placed on; the agent's report moves
the record and the server on to the next step (``reported``).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from kumo.common.context import RequestContext
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.models import ComputeService as ServiceRow
from kumo.compute.models import Migration, Server
from kumo.compute.scheduler import claims, hints
from kumo.compute.scheduler.filters import Request
from kumo.compute.service.core import ComputeService, new_uuid, now
from kumo.compute.service.servers import check_lock, get_server, new_action, set_error
from kumo.compute.service.states import ACTIVE, PAUSED, RESIZED, STOPPED

log = logging.getLogger("kumo.compute.migrate")
COLD = "migration"
LIVE = "live-migration"
# agent operations of the two flows (kumo.agents.compute.agent runs them)
OPS = (
    "migrate_source",
    "migrate_dest",
    "migrate_revert_dest",
    "migrate_revert_source",
    "live_migrate_source",
    "live_migrate_dest",
)
EVENT_NAMES = {
    "migrate_source": "compute_resize_instance",
    "migrate_dest": "compute_finish_resize",
    "migrate_revert_dest": "compute_revert_resize",
    "migrate_revert_source": "compute_finish_revert_resize",
    "live_migrate_source": "compute_check_can_live_migrate_source",
    "live_migrate_dest": "compute_post_live_migration_at_destination",
}
LIVE_IN_PROGRESS = ("queued", "preparing", "running")
ABORTABLE = ("queued", "preparing")


def _state_error(server: Server, name: str) -> Conflict:
    what = f"task_state {server.task_state}" if server.task_state else f"vm_state {server.vm_state}"
    return Conflict(f"Cannot '{name}' instance {server.id} while it is in {what}")


def _request(s: Any, server: Server, host: str | None) -> Request:
    f = server.flavor
    return Request(
        vcpus=f["vcpus"],
        ram_mb=f["ram"],
        disk_gb=f["disk"] + f.get("ephemeral", 0),
        availability_zone=None if host else _zone(server.availability_zone),
        force_host=host,
        ignore_hosts=(server.host,) if server.host else (),
        **hints.group_fields(s, server),
        **hints.request_fields(s, server),
    )


def _zone(az: str | None) -> str | None:
    return az.split(":", 1)[0] or None if az else None


def _check_target(s: Any, server: Server, host: str | None, live: bool) -> None:
    if host is None:
        return
    row = s.execute(
        select(ServiceRow).where(ServiceRow.host == host, ServiceRow.binary == "nova-compute")
    ).scalar_one_or_none()
    if row is None:
        if live:
            raise BadRequest(f"Compute service of {host} is unavailable at this time.")
        raise BadRequest(f"Compute host {host} could not be found.")
    if host == server.host:
        if live:
            raise BadRequest(f"Unable to migrate instance ({server.id}) to current host ({host}).")
        raise BadRequest("The target host can't be the same one.")


def _start(
    svc: ComputeService, ctx: RequestContext, server_id: str, host: str | None, live: bool, extra: dict[str, Any]
) -> Server:
    name = "os-migrateLive" if live else "migrate"
    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    allowed = (ACTIVE, PAUSED) if live else (ACTIVE, STOPPED)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        if server.vm_state not in allowed or server.task_state is not None:
            raise _state_error(server, name)
        if not server.host:
            raise Conflict(f"Cannot '{name}' instance {server_id}: it has no host")
        _check_target(s, server, host, live)
        node = claims.schedule(s, _request(s, server, host), svc.settings, now())
        if node is None:
            raise BadRequest(
                "No valid host was found. "
                + ("No other compute host is available for the migration." if host is None
                   else f"Host {host} cannot take the server.")  # fmt: skip
            )
        ts = now()
        migration = Migration(
            uuid=new_uuid(),
            server_id=server_id,
            project_id=server.project_id,
            user_id=ctx.user_id or server.user_id,
            migration_type=LIVE if live else COLD,
            status="queued" if live else "pre-migrating",
            source_compute=server.host,
            dest_compute=node.host,
            source_node=server.node,
            dest_node=node.hypervisor_hostname,
            old_flavor_id=server.flavor_id,
            new_flavor_id=server.flavor_id,
            created_at=ts,
            updated_at=ts,
        )
        s.add(migration)
        server.task_state = "migrating" if live else "resize_prep"
        server.op_seq += 1
        server.pending = {
            "op": "live_migrate_source" if live else "migrate_source",
            "seq": server.op_seq,
            "from": server.vm_state,
            "migration": migration.uuid,
            **extra,
        }
        server.updated_at = ts
        s.add(new_action(ctx, server_id, "live-migration" if live else "migrate"))
    svc.notifier.bump()
    return server


def migrate(svc: ComputeService, ctx: RequestContext, server_id: str, host: str | None) -> Server:
    """Cold migration: the scheduler picks another host (or ``host``); the source agent goes first."""
    return _start(svc, ctx, server_id, host, False, {})


def live_migrate(
    svc: ComputeService, ctx: RequestContext, server_id: str, host: str | None, block_migration: Any
) -> Server:
    return _start(svc, ctx, server_id, host, True, {"block_migration": block_migration})


def _migration(s: Any, server_id: str, uuid: str | None = None, kind: str | None = None) -> Migration | None:
    stmt = select(Migration).where(Migration.server_id == server_id)
    if uuid:
        stmt = stmt.where(Migration.uuid == uuid)
    if kind:
        stmt = stmt.where(Migration.migration_type == kind)
    return s.execute(stmt.order_by(Migration.id.desc())).scalars().first()


def _next(server: Server, op: str, host: str | None, node: str | None, task: str, **extra: Any) -> None:
    server.host, server.node = host, node
    server.task_state = task
    server.op_seq += 1
    server.pending = {**(server.pending or {}), **extra, "op": op, "seq": server.op_seq}


def _settle(server: Server, vm_state: str, power: int, ts: Any) -> None:
    server.vm_state, server.power_state = vm_state, power
    server.task_state, server.pending = None, None
    server.updated_at = ts


def reported(svc: ComputeService, s: Any, server: Server, pending: dict[str, Any], ok: bool,
             fault: Any, power: int | None, ts: Any) -> None:  # fmt: skip
    """An agent finished one step of a migration: record it and hand out the next step."""
    op = pending["op"]
    m = _migration(s, server.id, pending.get("migration"))
    prior = pending.get("from") or ACTIVE
    bump, before = False, server.host

    def status(value: str) -> None:
        if m is not None:
            m.status, m.updated_at = value, ts

    if op in ("migrate_dest", "live_migrate_dest") and ok:
        _supersede(s, server.id, server.host, ts)
    if op == "migrate_source":
        if not ok:  # the source refused (e.g. its driver cannot move disks): nothing moved
            status("error")
            claims.release(s, m.dest_compute if m else None, server.flavor)
            _settle(server, server.vm_state, server.power_state, ts)
            return
        status("post-migrating")
        _next(server, "migrate_dest", m.dest_compute if m else None, m.dest_node if m else None,
              "resize_finish")  # fmt: skip
        bump = True
    elif op == "migrate_dest":
        if ok:
            status("finished")
            _settle(server, RESIZED, 4 if prior == STOPPED else int(power if power is not None else 1), ts)
        else:  # the destination could not build it: power the source's copy back on
            status("error")
            claims.release(s, server.host, server.flavor)
            _next(server, "migrate_revert_source", m.source_compute if m else None,
                  m.source_node if m else None, "resize_reverting", failed=True)  # fmt: skip
            bump = True
    elif op == "migrate_revert_dest":
        if not ok:
            status("error")
            set_error(server, str(fault or "Reverting the migration failed on the destination."))
            return
        claims.release(s, server.host, server.flavor)
        _next(server, "migrate_revert_source", m.source_compute if m else None, m.source_node if m else None,
              "resize_reverting")  # fmt: skip
        bump = True
    elif op == "migrate_revert_source":
        if not ok:
            status("error")
            set_error(server, str(fault or "Reverting the migration failed on the source."))
            return
        if not pending.get("failed"):  # (a failed destination already marked the migration error)
            status("reverted")
        _settle(server, STOPPED if prior == STOPPED else ACTIVE, 4 if prior == STOPPED else 1, ts)
    elif op == "live_migrate_source":
        if not ok:  # the pre-check refused: the server keeps running where it is
            status("error")
            claims.release(s, m.dest_compute if m else None, server.flavor)
            _settle(server, server.vm_state, server.power_state, ts)
            return
        status("running")
        _next(server, "live_migrate_dest", m.dest_compute if m else None, m.dest_node if m else None,
              "migrating")  # fmt: skip
        bump = True
    elif op == "live_migrate_dest":
        if ok:
            status("post-migrating")  # the source agent drops its copy next (stale_on)
            claims.release(s, m.source_compute if m else None, server.flavor)
            _settle(server, prior, int(power if power is not None else (3 if prior == PAUSED else 1)), ts)
            bump = True  # wakes the source agent to drop its copy
        else:  # roll back: the source still runs the VM
            status("error")
            claims.release(s, server.host, server.flavor)
            server.host = m.source_compute if m else server.host
            server.node = m.source_node if m else server.node
            _settle(server, server.vm_state, server.power_state, ts)
    moved = server.host != before
    if bump or moved:
        server.updated_at = ts
        s.commit()
    if bump:
        svc.notifier.bump()
    if moved:  # the server's ports follow it (binding:host_id), as Nova's migrations do
        _rebind_ports(svc, list(server.ports or []), server.host)


def _rebind_ports(svc: ComputeService, ports: list[dict[str, Any]], host: str | None) -> None:
    binder = svc.extras.get("port_binder")
    if binder is None or not ports:
        return
    import anyio.from_thread

    for port in ports:
        try:  # from the agent API's worker thread, on the event loop that owns the binder
            anyio.from_thread.run(binder.bind, {"id": port["id"]}, host)
        except Exception as exc:  # the binding is the network's view; the move itself stands
            log.warning("compute: rebinding port %s of a migrated server to %s failed: %s", port.get("id"), host, exc)


def _supersede(s: Any, server_id: str, host: str | None, ts: Any) -> None:
    """The server runs on ``host`` again before an earlier move away from it was cleaned up there:
    that copy is the live one now, so the earlier migration ends without dropping it."""
    for kind, waiting, done in _SOURCE_DROPS:
        for m in s.execute(
            select(Migration).where(Migration.server_id == server_id, Migration.migration_type == kind,
                                    Migration.source_compute == host, Migration.status == waiting)
        ).scalars():  # fmt: skip
            m.status, m.updated_at = done, ts


def latest_cold(svc: ComputeService, server_id: str) -> Migration | None:
    """The server's cold migration awaiting confirm/revert, if its latest migration is one."""
    with svc.db.reader() as s:
        m = _migration(s, server_id)
    return m if m is not None and m.migration_type == COLD and m.status == "finished" else None


def confirm(svc: ComputeService, ctx: RequestContext, server_id: str) -> None:
    """The server stays on the destination; the source agent drops its copy (stale_on)."""
    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        assert server is not None
        m = _migration(s, server_id, kind=COLD)
        if server.vm_state != RESIZED or server.task_state is not None or m is None or m.status != "finished":
            raise _state_error(server, "confirmResize")
        claims.release(s, m.source_compute, server.flavor)
        m.status, m.updated_at = "confirming", now()
        server.vm_state = STOPPED if server.power_state == 4 else ACTIVE
        server.updated_at = now()
        s.add(new_action(ctx, server_id, "confirmResize"))
    svc.notifier.bump()


def revert(svc: ComputeService, ctx: RequestContext, server_id: str) -> None:
    """The destination drops its copy, then the source powers its own back on."""
    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        assert server is not None
        m = _migration(s, server_id, kind=COLD)
        if server.vm_state != RESIZED or server.task_state is not None or m is None or m.status != "finished":
            raise _state_error(server, "revertResize")
        m.status, m.updated_at = "reverting", now()
        prior = STOPPED if server.power_state == 4 else ACTIVE
        server.pending = {"from": prior, "migration": m.uuid}
        _next(server, "migrate_revert_dest", server.host, server.node, "resize_reverting")
        server.updated_at = now()
        s.add(new_action(ctx, server_id, "revertResize"))
    svc.notifier.bump()


# -- the source host's leftover copy ----------------------------------------------------------------

# (migration type, status while the source still holds a copy, status once it dropped it)
_SOURCE_DROPS = ((COLD, "confirming", "confirmed"), (LIVE, "post-migrating", "completed"))
# a server deleted in the middle of a migration: the source drops its copy too, and the record ends
_DELETED_DROPS = {
    "finished": "confirmed",  # deleting a server in VERIFY_RESIZE confirms the migration (as Nova)
    "pre-migrating": "error",
    "post-migrating": "error",
    "reverting": "error",
    "queued": "error",
    "running": "error",
}


def _drops(s: Any, host: str, server_id: str | None = None) -> list[tuple[Migration, str]]:
    """(migration, status once dropped) of every copy ``host`` has to destroy now."""
    stmt = (
        select(Migration, Server.host, Server.deleted)
        .join(Server, Server.id == Migration.server_id)
        .where(Migration.migration_type.in_((COLD, LIVE)), Migration.source_compute == host)
    )
    if server_id is not None:
        stmt = stmt.where(Migration.server_id == server_id)
    out = []
    for m, now_on, deleted in s.execute(stmt).all():
        done = next((d for kind, waiting, d in _SOURCE_DROPS if kind == m.migration_type and waiting == m.status),
                    None)  # fmt: skip
        if done is not None and (deleted or now_on != host):
            out.append((m, done))
        elif deleted and m.status in _DELETED_DROPS:
            out.append((m, _DELETED_DROPS[m.status]))
    return out


def stale_on(svc: ComputeService, host: str) -> list[str]:
    """Servers migrated away from ``host`` whose copy there has to be destroyed now."""
    with svc.db.reader() as s:
        return sorted({m.server_id for m, _done in _drops(s, host)})


def cleaned(svc: ComputeService, host: str, server_id: str) -> None:
    """The source agent destroyed its copy: the migration moves on to its final status."""
    with svc.db.session() as s:
        drops = _drops(s, host, server_id)
        for m, done in drops:
            m.status, m.updated_at = done, now()
    if not drops:
        raise NotFound(f"No migration of {server_id} from {host} awaits cleanup.")


# -- in-progress live migrations (/servers/{id}/migrations) -------------------------------------------


def in_progress(svc: ComputeService, ctx: RequestContext, server_id: str) -> list[Migration]:
    get_server(svc, ctx, server_id)
    with svc.db.reader() as s:
        return list(
            s.execute(
                select(Migration)
                .where(Migration.server_id == server_id, Migration.migration_type == LIVE,
                       Migration.status.in_(LIVE_IN_PROGRESS))
                .order_by(Migration.id.desc())
            ).scalars()
        )  # fmt: skip


def _live(s: Any, server_id: str, migration_id: str) -> Migration:
    try:
        mid = int(migration_id)
    except ValueError:
        raise NotFound(f"Migration {migration_id} could not be found.") from None
    m = s.get(Migration, mid)
    if m is None or m.server_id != server_id:
        raise NotFound(f"Migration {migration_id} for instance {server_id} could not be found.")
    return m


def show_in_progress(svc: ComputeService, ctx: RequestContext, server_id: str, migration_id: str) -> Migration:
    get_server(svc, ctx, server_id)
    with svc.db.reader() as s:
        m = _live(s, server_id, migration_id)
    if m.migration_type != LIVE or m.status not in LIVE_IN_PROGRESS:
        raise NotFound(f"In-progress live migration {migration_id} is not found for server {server_id}.")
    return m


def force_complete(svc: ComputeService, ctx: RequestContext, server_id: str, migration_id: str) -> None:
    """Accepted only while the memory copy runs (status running); the agent finishes on its own."""
    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    with svc.db.session() as s:
        m = _live(s, server_id, migration_id)
        server = s.get(Server, server_id)
        assert server is not None
        if server.task_state != "migrating":
            raise _state_error(server, "force_complete")
        if m.migration_type != LIVE or m.status != "running":
            raise BadRequest(
                f"Migration {migration_id} state of instance {server_id} is {m.status}. Cannot "
                f"force_complete while the migration is in this state."
            )
        s.add(new_action(ctx, server_id, "live_migration_force_complete"))


def abort(svc: ComputeService, ctx: RequestContext, server_id: str, migration_id: str) -> None:
    """Cancel a live migration the source has not started yet; the server stays where it is."""
    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    with svc.db.session() as s:
        m = _live(s, server_id, migration_id)
        server = s.get(Server, server_id)
        assert server is not None
        if m.migration_type != LIVE:
            raise BadRequest(f"Migration {migration_id} for instance {server_id} is not a live migration.")
        if m.status == "running":
            raise Conflict(
                f"Migration {migration_id} of instance {server_id} is already moving the server to "
                f"{m.dest_compute}; it cannot be aborted at this stage."
            )
        if m.status not in ABORTABLE:
            raise BadRequest(
                f"Migration {migration_id} state of instance {server_id} is {m.status}. Cannot abort "
                f"while the migration is in this state."
            )
        ts = now()
        claims.release(s, m.dest_compute, server.flavor)
        m.status, m.updated_at = "cancelled", ts
        if (server.pending or {}).get("op") == "live_migrate_source":
            server.pending, server.task_state = None, None
        server.updated_at = ts
        s.add(new_action(ctx, server_id, "live_migration_cancel"))
    svc.notifier.bump()
