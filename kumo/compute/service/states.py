"""Nova's status model: vm_state + task_state -> the API's status."""

from __future__ import annotations

from typing import Any

ACTIVE, BUILDING, STOPPED, PAUSED, SUSPENDED, RESIZED, ERROR, DELETED, RESCUED, SHELVED_OFFLOADED = (
    "active",
    "building",
    "stopped",
    "paused",
    "suspended",
    "resized",
    "error",
    "deleted",
    "rescued",
    "shelved_offloaded",
)

_ACTIVE_TASKS = {
    "rebooting": "REBOOT",
    "reboot_pending": "REBOOT",
    "reboot_started": "REBOOT",
    "rebooting_hard": "HARD_REBOOT",
    "reboot_pending_hard": "HARD_REBOOT",
    "reboot_started_hard": "HARD_REBOOT",
    "rebuilding": "REBUILD",
    "rebuild_block_device_mapping": "REBUILD",
    "rebuild_spawning": "REBUILD",
    "updating_password": "PASSWORD",
    "resize_prep": "RESIZE",
    "resize_migrating": "RESIZE",
    "resize_migrated": "RESIZE",
    "resize_finish": "RESIZE",
    "migrating": "MIGRATING",
}

_STATUS = {
    BUILDING: "BUILD",
    STOPPED: "SHUTOFF",
    PAUSED: "PAUSED",
    SUSPENDED: "SUSPENDED",
    ERROR: "ERROR",
    DELETED: "DELETED",
    RESCUED: "RESCUE",
    "soft-delete": "SOFT_DELETED",
    "shelved": "SHELVED",
    SHELVED_OFFLOADED: "SHELVED_OFFLOADED",
}


def status(vm_state: str, task_state: str | None) -> str:
    if vm_state == ACTIVE:
        return _ACTIVE_TASKS.get(task_state or "", "ACTIVE")
    if vm_state == RESIZED:
        return "REVERT_RESIZE" if task_state == "resize_reverting" else "VERIFY_RESIZE"
    if vm_state == STOPPED and task_state in ("resize_prep", "resize_migrating", "resize_finish"):
        return "RESIZE"
    if vm_state == STOPPED and task_state in ("rebuilding",):
        return "REBUILD"
    return _STATUS.get(vm_state, "UNKNOWN")


def states_for_status(status_name: str) -> list[tuple[str, Any]] | None:
    """(vm_state, task predicate) pairs matching an API status; None for an unknown status."""
    s = status_name.upper()
    pairs: list[tuple[str, Any]] = []
    for vm in (
        ACTIVE,
        BUILDING,
        STOPPED,
        PAUSED,
        SUSPENDED,
        RESIZED,
        ERROR,
        DELETED,
        RESCUED,
        "soft-delete",
        "shelved",
        SHELVED_OFFLOADED,
    ):
        pairs.append((vm, None))
    matches = [p for p in pairs if status(p[0], None) == s]
    if s in _ACTIVE_TASKS.values() or s in ("REVERT_RESIZE",):
        matches = [("__task__", s)]
    return matches or None
