"""Agent operations on a volume attached to a server: grow it under the guest after the block
storage extended it (Nova's ``volume-extended`` event) and the assisted snapshots of file-based
volumes (``os-assisted-volume-snapshots``). The server's state does not change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kumo.agents.compute.driver import PowerState, VmSpec
from kumo.agents.compute.errors import PermanentError

OPS = ("extend_volume", "volume_snapshot_create", "volume_snapshot_delete")


def run(d: Any, op: str, spec: VmSpec, pending: Mapping[str, Any]) -> PowerState:
    power = d.observe(spec.id)
    volume_id = pending.get("volume_id")
    volume = next((v for v in spec.volumes if v.volume_id == volume_id), None)
    if volume is None:
        raise PermanentError(f"volume {volume_id} is not attached to server {spec.id}")
    method = getattr(d, op, None)
    if method is None:
        raise PermanentError(f"the {d.type} driver cannot {op.replace('_', ' ')}")
    if op == "extend_volume":
        if power in (PowerState.RUNNING, PowerState.PAUSED):  # a stopped guest sees the new size at start
            method(spec.id, volume, int(pending["size"]))
    elif op == "volume_snapshot_create":
        method(spec.id, volume, str(pending["new_file"]))
    else:
        method(spec.id, volume, dict(pending.get("delete_info") or {}))
    return power
