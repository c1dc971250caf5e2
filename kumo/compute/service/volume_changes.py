"""Changes to a volume attached to a server that the host's agent makes under the guest: Nova's
assisted volume snapshots (``os-assisted-volume-snapshots``, asked by a file-based block
storage) and growing the disk after the block storage extended an in-use volume (the
``volume-extended`` external event). The database side: checks, and the agent's operation in
``Server.pending`` ({"op": "volume_snapshot_create" | "volume_snapshot_delete" |
"extend_volume", "volume_id": ...}); the server's state does not change.

The agent's outcome is kept for the API task that reports it to the block storage
(:mod:`kumo.compute.api.volume_changes`), keyed by (server, operation sequence).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from kumo.common.context import RequestContext
from kumo.compute.errors import BadRequest
from kumo.compute.models import Server, VolumeAttachment
from kumo.compute.service import validate as v
from kumo.compute.service.core import ComputeService, now
from kumo.compute.service.servers import new_action
from kumo.compute.service.states import SHELVED_OFFLOADED

OPS = ("extend_volume", "volume_snapshot_create", "volume_snapshot_delete")
RESULTS_KEY = "volume_change_results"
RESULTS_KEPT = 8  # per server: the outcomes of its last volume changes (system_metadata)


def _string(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value!r}. "
                         f"'{key}' is a required non-empty string{where}")
    return value


def parse_create(body: Any) -> tuple[str, dict[str, Any]]:
    """``{"snapshot": {"volume_id", "create_info": {"snapshot_id", "type": "qcow2", "new_file", "id"?}}}``."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute snapshot. 'snapshot' is a required property")
    v.only_keys(body, {"snapshot"})
    snap = v.body_key(body, "snapshot")
    v.only_keys(snap, {"volume_id", "create_info"})
    volume_id = _string(snap, "volume_id", "")
    info = v.body_key(snap, "create_info")
    v.only_keys(info, {"snapshot_id", "type", "new_file", "id"}, " in create_info")
    for key in ("snapshot_id", "new_file"):
        _string(info, key, " in create_info")
    if "id" in info:
        _string(info, "id", " in create_info")
    if info.get("type") != "qcow2":
        raise BadRequest(f"Invalid input for field/attribute type. Value: {info.get('type')!r}. "
                         f"{info.get('type')!r} is not one of ['qcow2']")
    if "/" in info["new_file"] or info["new_file"] in (".", ".."):
        raise BadRequest(f"Invalid input for field/attribute new_file. Value: {info['new_file']!r}. "
                         "It must be a file name in the volume's directory")
    return volume_id, dict(info)


def parse_delete(query: Mapping[str, str], at_least_275: bool) -> dict[str, Any]:
    """The ``delete_info`` query parameter: JSON with at least ``volume_id``."""
    if at_least_275:
        extra = sorted(set(query) - {"delete_info"})
        if extra:
            raise BadRequest(f"Invalid input for query parameters {extra[0]}. Additional properties are not allowed")
    raw = query.get("delete_info")
    if raw is None:
        raise BadRequest("'delete_info'")
    try:
        info = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"delete_info is not valid JSON: {exc}") from None
    if not isinstance(info, dict) or "volume_id" not in info:
        raise BadRequest("'volume_id'")
    if not isinstance(info["volume_id"], str) or not info["volume_id"]:
        raise BadRequest(f"Invalid volume_id in delete_info: {info['volume_id']!r}")
    return info


def start(svc: ComputeService, ctx: RequestContext, volume_id: str, op: str, args: dict[str, Any],
          server_id: str | None = None) -> tuple[str, int | None]:
    """Hand ``op`` on the server the volume is attached to (or ``server_id``) to its agent;
    returns (server id, operation sequence), the sequence None when the agent is still busy
    with an earlier operation that has no task state (Nova queues such casts to the host: the
    caller tries again). 400s as Nova: no such attachment, a volume attached to several
    servers, a server with no host or in a task."""
    with svc.db.session() as s:
        query = select(VolumeAttachment, Server).join(Server, Server.id == VolumeAttachment.server_id).where(
            VolumeAttachment.volume_id == volume_id, VolumeAttachment.status == "attached",
            Server.deleted.is_(False))
        if server_id is not None:
            query = query.where(Server.id == server_id)
        rows = list(s.execute(query).all())
        if not rows:
            raise BadRequest(f"No volume Block Device Mapping with id {volume_id}.")
        if len(rows) > 1:
            raise BadRequest(f"Block Device Mapping {volume_id} is a multi-attach volume and is not valid for "
                             "this operation.")
        _row, server = rows[0]
        if not server.host or server.vm_state == SHELVED_OFFLOADED:
            raise BadRequest(f"Instance {server.id} is not ready")
        if server.task_state is not None:
            raise BadRequest(f"Cannot '{op}' instance {server.id} while it is in task_state {server.task_state}")
        if server.pending is not None:
            return server.id, None
        server.op_seq += 1
        server.pending = {"op": op, "seq": server.op_seq, "volume_id": volume_id, **args}
        server.updated_at = now()
        if op == "extend_volume":  # as Nova: the event is an instance action with a compute_ event
            s.add(new_action(ctx, server.id, "extend_volume"))
        seq = server.op_seq
        sid = server.id
    svc.notifier.bump()
    return sid, seq


def reported(svc: ComputeService, server: Server, pending: Mapping[str, Any], ok: bool, fault: Any,
             power_state: Any) -> None:
    """The agent reported one of :data:`OPS` (in the report's session)."""
    # kept with the server (not in this process): any API worker answers the request that waits for it
    meta = dict(server.system_metadata or {})
    results = dict(meta.get(RESULTS_KEY) or {})
    results[str(int(pending["seq"]))] = [ok, "" if ok else str(fault or "the driver failed")]
    while len(results) > RESULTS_KEPT:
        results.pop(min(results, key=int))
    server.system_metadata = {**meta, RESULTS_KEY: results}
    server.pending = None
    server.task_state = None
    if power_state is not None:
        server.power_state = int(power_state)
    server.updated_at = now()


def outcome(svc: ComputeService, server_id: str, seq: int) -> tuple[bool, str] | None:
    """(ok, fault) once the agent reported the operation; None while it is pending."""
    with svc.db.reader() as s:
        server = s.get(Server, server_id)
        busy = server is not None and not server.deleted and (server.pending or {}).get("seq") == seq
        found = ((server.system_metadata or {}).get(RESULTS_KEY) or {}).get(str(seq)) if server else None
    if busy:
        return None
    return (bool(found[0]), str(found[1])) if found else (False, "the server was deleted or the operation replaced")
