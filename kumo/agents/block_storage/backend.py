"""The volume back-end interface (DESIGN.md §5): what the volume agent needs from storage.

A back end stores volumes and snapshots on one storage host. Every method is idempotent
(calling ``create_volume`` for a volume that already exists with that size is a no-op; removing
something absent is a no-op), takes plain values (ids, sizes in GiB, paths) and never ORM rows,
and fails with :class:`TemporaryError` (retry later) or :class:`PermanentError` (the volume or
snapshot goes to ``error``; the message is shown to the user).

Implementations: :mod:`kumo.agents.block_storage.file` (qcow2 or sparse raw files under the
data dir; the default) and :mod:`kumo.agents.block_storage.lvm` (thin LVs in a volume group).

Contract for consumers:

- ``connection_info(volume_id, connector)`` returns what the compute side's ``VolumeSpec``
  carries (kumo/agents/compute/driver.py), e.g.
  ``{"driver_volume_type": "file", "data": {"path": "/.../volume-<id>", "format": "qcow2"}}``
  or ``{"driver_volume_type": "local", "data": {"device_path": "/dev/...", "format": "raw"}}``.
  ``data`` always carries ``volume_id`` and ``access_mode`` (``rw``/``ro``) as well.
- ``raw_reader(volume_id)`` / ``raw_writer(volume_id)`` are context managers yielding a path
  whose bytes are the volume's *raw* contents (the guest's view, ``size_gb`` GiB long) — the
  backup engine reads and restores through them, upload-to-image streams from the reader.
  A writer's changes are in the volume once the context exits without an exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kumo.common.reconcile import PermanentError, TemporaryError

GiB = 1024**3


@dataclass(frozen=True, slots=True)
class Capacity:
    """Pool figures reported by the agent (shown as ``total_capacity_gb`` etc. by the API)."""

    total_gb: float
    free_gb: float
    provisioned_gb: float  # the sum of volume sizes (thin provisioning may exceed total_gb)


@runtime_checkable
class Backend(Protocol):
    """One storage pool on this host."""

    name: str  # back-end name, e.g. "file" or "lvm"; the agent reports host@name#pool
    driver_volume_type: str  # what connection_info() returns: "file", "local", ...

    def capacity(self) -> Capacity: ...

    def list_volumes(self) -> list[str]:
        """Ids of the volumes this back end holds (for resync / orphan removal)."""
        ...

    def list_snapshots(self) -> list[str]: ...

    def volume_exists(self, volume_id: str) -> bool: ...

    def volume_size_gb(self, volume_id: str) -> int | None:
        """The volume's virtual size in GiB (rounded up), None when it does not exist."""
        ...

    # --- volumes --------------------------------------------------------------------------
    def create_volume(self, volume_id: str, size_gb: int) -> None:
        """An empty (zero-filled) volume of ``size_gb`` GiB."""
        ...

    def create_from_image(self, volume_id: str, size_gb: int, image_path: Path, image_format: str) -> None:
        """A volume holding the image file's contents (``raw``, ``qcow2``, ``vmdk``, ... as
        ``qemu-img`` understands them), grown to ``size_gb``; PermanentError when it does not fit."""
        ...

    def reimage(self, volume_id: str, size_gb: int, image_path: Path, image_format: str) -> None:
        """Replace an existing volume's whole contents with the image's, keeping its id and size
        (Cinder's os-reimage); PermanentError when the volume is missing or the image does not fit.
        Repeating it is harmless (the result is the same)."""
        ...

    def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str) -> None: ...

    def clone_volume(self, volume_id: str, size_gb: int, source_volume_id: str) -> None: ...

    def extend_volume(self, volume_id: str, new_size_gb: int) -> None: ...

    def delete_volume(self, volume_id: str) -> None: ...

    # --- snapshots ------------------------------------------------------------------------
    def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        """A point-in-time copy of the volume; the volume stays usable (and may be attached)."""
        ...

    def delete_snapshot(self, snapshot_id: str) -> None: ...

    # --- data path ------------------------------------------------------------------------
    def connection_info(self, volume_id: str, connector: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """How a hypervisor on ``connector["host"]`` reaches the volume."""
        ...

    def terminate_connection(self, volume_id: str, connector: Mapping[str, Any] | None = None) -> None:
        """Undo what connection_info() exported for that connector (no-op for local files)."""
        ...

    def raw_reader(self, volume_id: str) -> contextlib.AbstractContextManager[Path]:
        """A path whose bytes are the volume's raw contents, valid inside the context."""
        ...

    def raw_writer(self, volume_id: str) -> contextlib.AbstractContextManager[Path]:
        """A writable path for the volume's raw contents; committed when the context exits."""
        ...


def round_up_gb(size_bytes: int) -> int:
    return max(1, -(-int(size_bytes) // GiB))


__all__ = [
    "Backend",
    "Capacity",
    "GiB",
    "PermanentError",
    "TemporaryError",
    "round_up_gb",
]
