"""The compute agent's steps of a cold or live migration (kumo.compute.service.migrate drives them).

A driver that can move a server between hosts says so with ``migration_refused(live) -> None``;
any other answer (or no such method, as with the qemu driver, whose overlay disks are host-local)
refuses the move in its first step on the source host, so the API records the migration as
``error`` and the server stays where it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kumo.agents.compute.driver import PowerState, VmSpec
from kumo.agents.compute.errors import PermanentError

OPS = (
    "migrate_source",
    "migrate_dest",
    "migrate_revert_dest",
    "migrate_revert_source",
    "live_migrate_source",
    "live_migrate_dest",
)


def refused(driver: Any, live: bool) -> str | None:
    """None when ``driver`` can move a server to another host, else why it cannot."""
    check = getattr(driver, "migration_refused", None)
    kind = "live migration" if live else "cold migration"
    if check is None:
        return (
            f"The {getattr(driver, 'type', 'compute')} driver of this host does not support {kind}: "
            "its disks are local to the host and it has no way to transfer them."
        )
    return check(live)


def _to(driver: Any, spec: VmSpec, state: str | None) -> PowerState:
    """Bring the VM up from its spec, then into the power state it had before the move."""
    power = driver.ensure_running(spec)
    if state == "stopped":
        return driver.ensure_stopped(spec.id)
    if state == "paused":
        return driver.ensure_paused(spec.id)
    return power


def run(driver: Any, op: str, spec: VmSpec, pending: Mapping[str, Any]) -> PowerState:
    if op in ("migrate_source", "live_migrate_source"):
        live = op == "live_migrate_source"
        why = refused(driver, live)
        if why:
            raise PermanentError(why)
        if live:  # keeps running here until the destination runs it; then the copy is dropped
            return driver.observe(spec.id)
        driver.ensure_stopped(spec.id)  # cold: powered off; the copy stays until confirm or revert
        return PowerState.SHUTDOWN
    if op in ("migrate_dest", "live_migrate_dest"):
        return _to(driver, spec, pending.get("from"))
    if op == "migrate_revert_dest":
        driver.ensure_deleted(spec.id)
        return PowerState.NOSTATE
    if op == "migrate_revert_source":
        if pending.get("from") == "stopped" and driver.observe(spec.id) != PowerState.NOSTATE:
            return driver.ensure_stopped(spec.id)
        return _to(driver, spec, pending.get("from"))
    raise PermanentError(f"unknown migration step {op}")
