"""Server snapshots (createImage / createBackup), Nova's way: the API creates the image
(queued, owned by the user's project), marks the server ``image_snapshot`` and hands the
agent of the server's host a pending ``snapshot`` operation naming the image. The agent
writes the root disk and uploads it with the host's own credentials, then reports; the
report clears the task and records the action's event (kumo.compute.service.agents.report).

Nothing strands the server in ``image_snapshot``: the pending operation survives API and
agent restarts (the agent runs it again at its next sync; an image already active counts
as done), a deleted image ends it with an error event, and delete / reset-state replace it.
"""

from __future__ import annotations

from sqlalchemy import select

from kumo.common.context import RequestContext
from kumo.compute.errors import Conflict, NotFound
from kumo.compute.models import ComputeNode, Server
from kumo.compute.service.core import ComputeService, now
from kumo.compute.service.servers import check_lock, get_server, new_action
from kumo.compute.service.states import ACTIVE, PAUSED, STOPPED, SUSPENDED

ALLOWED = (ACTIVE, STOPPED, PAUSED, SUSPENDED)
TASK = "image_snapshot"


def check(svc: ComputeService, ctx: RequestContext, server_id: str, action: str = "createImage") -> Server:
    """The server, if a snapshot may start now (409 otherwise)."""
    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    _check_state(server, action)
    if not server.host:
        raise Conflict(f"Cannot '{action}' instance {server_id}: it is not on a compute host")
    return server


def _check_state(server: Server, action: str) -> None:
    if server.task_state is not None:
        raise Conflict(f"Cannot '{action}' instance {server.id} while it is in task_state {server.task_state}")
    if server.vm_state not in ALLOWED or server.pending is not None:
        raise Conflict(f"Cannot '{action}' instance {server.id} while it is in vm_state {server.vm_state}")


def disk_format(svc: ComputeService, server: Server) -> str:
    """What the host's driver writes: a qcow2 from QEMU hosts, a raw disk from the fake driver."""
    with svc.db.reader() as s:
        hv = s.execute(
            select(ComputeNode.hypervisor_type).where(ComputeNode.host == server.host)
        ).scalar_one_or_none()
    return "qcow2" if (hv or "").lower() in ("qemu", "kvm") else "raw"


def start(
    svc: ComputeService, ctx: RequestContext, server_id: str, image_id: str, image_url: str, action: str
) -> None:
    """Atomically mark the server snapshotting and queue the agent's ``snapshot`` operation."""
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        _check_state(server, action)
        server.task_state = TASK
        server.op_seq += 1
        server.pending = {"op": "snapshot", "seq": server.op_seq, "from": server.vm_state,
                          "image_id": image_id, "image_url": image_url}  # fmt: skip
        server.updated_at = now()
        s.add(new_action(ctx, server_id, action))
    svc.notifier.bump()


def finish(server: Server, ok: bool) -> None:
    """The agent's report: the server goes back to what it was (a failed snapshot is no server error)."""
    server.task_state = None
    server.pending = None
    server.updated_at = now()
