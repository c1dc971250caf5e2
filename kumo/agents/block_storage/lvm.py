"""The LVM back end: every volume a thin LV in a thin pool of an operator-given volume group.

- volume ``<id>`` is LV ``volume-<id>`` in ``<vg>/<pool>``; snapshot ``<id>`` is a thin snapshot
  ``snapshot-<id>`` (instant, copy-on-write, activation-skipped until needed);
- volumes from snapshots and clones are thin snapshots too (then grown to the requested size);
- ``connection_info`` is ``{"driver_volume_type": "local", "data": {"device_path": "/dev/<vg>/volume-<id>",
  "format": "raw", ...}}``: the compute host is this host and QEMU opens the block device;
- ``raw_reader`` reads through a temporary thin snapshot, so a backup of an attached volume is
  a consistent point in time.

The volume group must exist (it is never created or removed here); the thin pool is created in
it on first use when absent. All root-only commands go through :mod:`kumo.privileged.lvm`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kumo.agents.block_storage.backend import Capacity, GiB, PermanentError, TemporaryError
from kumo.privileged import lvm
from kumo.privileged.cmd import CommandError, PrivilegedError

VOLUME, SNAPSHOT, TEMP = "volume-", "snapshot-", "kumo-tmp-"
_BUSY = ("in use", "is open", "busy", "held by", "locking")


def _classify(exc: PrivilegedError, what: str) -> Exception:
    text = exc.stderr if isinstance(exc, CommandError) else str(exc)
    if any(word in text.lower() for word in _BUSY):
        return TemporaryError(f"{what}: {text}", delay=2.0)
    return PermanentError(f"{what}: {text}")


class LvmBackend:
    """Thin LVs in ``vg``/``pool``."""

    driver_volume_type = "local"

    def __init__(
        self, vg: str, pool: str = "kumo-thinpool", name: str = "lvm", pool_percent: int = 90
    ) -> None:
        self.vg = lvm.check_vg(vg)
        self.pool = pool
        self.name = name
        self.pool_percent = pool_percent

    # -- helpers -------------------------------------------------------------------------------
    def _lvs(self) -> dict[str, dict[str, str]]:
        try:
            return {row["name"]: row for row in lvm.list_lvs(self.vg)}
        except PrivilegedError as exc:
            raise _classify(exc, f"listing volume group {self.vg}") from None

    def ensure_pool(self) -> None:
        if not lvm.vg_exists(self.vg):
            raise PermanentError(f"volume group {self.vg} does not exist")
        if self.pool not in self._lvs():
            try:
                lvm.create_thin_pool(self.vg, self.pool, self.pool_percent)
            except PrivilegedError as exc:
                raise _classify(exc, f"creating thin pool {self.vg}/{self.pool}") from None

    def _do(self, what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except PrivilegedError as exc:
            raise _classify(exc, what) from None

    def device_path(self, volume_id: str) -> str:
        return f"/dev/{self.vg}/{VOLUME}{volume_id}"

    # -- inventory -----------------------------------------------------------------------------
    def capacity(self) -> Capacity:
        self.ensure_pool()
        lvs = self._lvs()
        pool = lvs[self.pool]
        total = int(float(pool["size"]))
        used = total * float(pool.get("data_percent") or 0) / 100.0
        provisioned = sum(
            int(float(r["size"]))
            for n, r in lvs.items()
            if n.startswith(VOLUME) and r.get("pool_lv") == self.pool
        )
        return Capacity(
            total_gb=total / GiB, free_gb=max(0.0, total - used) / GiB, provisioned_gb=provisioned / GiB
        )

    def list_volumes(self) -> list[str]:
        return sorted(n[len(VOLUME) :] for n in self._lvs() if n.startswith(VOLUME))

    def list_snapshots(self) -> list[str]:
        return sorted(n[len(SNAPSHOT) :] for n in self._lvs() if n.startswith(SNAPSHOT))

    def volume_exists(self, volume_id: str) -> bool:
        return VOLUME + volume_id in self._lvs()

    def volume_size_gb(self, volume_id: str) -> int | None:
        row = self._lvs().get(VOLUME + volume_id)
        return None if row is None else -(-int(float(row["size"])) // GiB)

    # -- volumes -------------------------------------------------------------------------------
    def create_volume(self, volume_id: str, size_gb: int) -> None:
        self.ensure_pool()
        if self.volume_exists(volume_id):
            return
        self._do(
            f"creating volume {volume_id}",
            lvm.create_thin,
            self.vg,
            self.pool,
            VOLUME + volume_id,
            size_gb * GiB,
        )

    def create_from_image(self, volume_id: str, size_gb: int, image_path: Path, image_format: str) -> None:
        try:
            virtual = lvm.image_virtual_size(str(image_path), image_format)
        except PrivilegedError as exc:
            raise PermanentError(f"the image is not readable as {image_format}: {exc}") from None
        if virtual > size_gb * GiB:
            raise PermanentError(
                f"Image virtual size is {-(-virtual // GiB)}GB and doesn't fit in a volume of size {size_gb}GB."
            )
        fresh = not self.volume_exists(volume_id)
        self.create_volume(volume_id, size_gb)
        self._do(f"activating volume {volume_id}", lvm.activate, self.vg, VOLUME + volume_id)
        # a new thin LV reads as zeros, so qemu-img need not write the image's holes
        self._do(
            f"writing the image into volume {volume_id}",
            lvm.image_into,
            str(image_path),
            image_format,
            self.vg,
            VOLUME + volume_id,
            fresh,
        )

    def reimage(self, volume_id: str, size_gb: int, image_path: Path, image_format: str) -> None:
        """Write the image over the existing LV (its old blocks are not assumed to be zero)."""
        if not self.volume_exists(volume_id):
            raise PermanentError(f"volume {volume_id} does not exist")
        try:
            virtual = lvm.image_virtual_size(str(image_path), image_format)
        except PrivilegedError as exc:
            raise PermanentError(f"the image is not readable as {image_format}: {exc}") from None
        have = self.volume_size_gb(volume_id) or size_gb
        if virtual > have * GiB:
            raise PermanentError(
                f"Image virtual size is {-(-virtual // GiB)}GB and doesn't fit in a volume of size {have}GB."
            )
        self._do(f"activating volume {volume_id}", lvm.activate, self.vg, VOLUME + volume_id)
        self._do(f"re-imaging volume {volume_id}", lvm.image_into, str(image_path), image_format, self.vg,
                 VOLUME + volume_id, False)

    def _from_origin(self, volume_id: str, size_gb: int, origin: str, what: str) -> None:
        self.ensure_pool()
        if self.volume_exists(volume_id):
            return
        lvs = self._lvs()
        if origin not in lvs:
            raise PermanentError(f"{what}: {origin} does not exist in {self.vg}")
        lv = VOLUME + volume_id
        self._do(what, lvm.snapshot, self.vg, origin, lv, True)
        if size_gb * GiB > int(float(lvs[origin]["size"])):
            self._do(f"growing volume {volume_id}", lvm.extend, self.vg, lv, size_gb * GiB)

    def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str) -> None:
        self._from_origin(
            volume_id, size_gb, SNAPSHOT + snapshot_id, f"creating volume {volume_id} from snapshot"
        )

    def clone_volume(self, volume_id: str, size_gb: int, source_volume_id: str) -> None:
        self._from_origin(volume_id, size_gb, VOLUME + source_volume_id, f"cloning volume {source_volume_id}")

    def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        current = self.volume_size_gb(volume_id)
        if current is None:
            raise PermanentError(f"volume {volume_id} does not exist")
        if current < new_size_gb:
            self._do(
                f"extending volume {volume_id}", lvm.extend, self.vg, VOLUME + volume_id, new_size_gb * GiB
            )

    def delete_volume(self, volume_id: str) -> None:
        if self.volume_exists(volume_id):
            self._do(f"deleting volume {volume_id}", lvm.remove, self.vg, VOLUME + volume_id)

    # -- snapshots -----------------------------------------------------------------------------
    def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        lvs = self._lvs()
        if SNAPSHOT + snapshot_id in lvs:
            return
        if VOLUME + volume_id not in lvs:
            raise PermanentError(f"volume {volume_id} does not exist")
        self._do(
            f"creating snapshot {snapshot_id}",
            lvm.snapshot,
            self.vg,
            VOLUME + volume_id,
            SNAPSHOT + snapshot_id,
        )

    def delete_snapshot(self, snapshot_id: str) -> None:
        if SNAPSHOT + snapshot_id in self._lvs():
            self._do(f"deleting snapshot {snapshot_id}", lvm.remove, self.vg, SNAPSHOT + snapshot_id)

    # -- data path -----------------------------------------------------------------------------
    def connection_info(self, volume_id: str, connector: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if not self.volume_exists(volume_id):
            raise PermanentError(f"volume {volume_id} does not exist")
        self._do(f"activating volume {volume_id}", lvm.activate, self.vg, VOLUME + volume_id)
        return {
            "driver_volume_type": self.driver_volume_type,
            "data": {
                "device_path": self.device_path(volume_id),
                "format": "raw",
                "volume_id": volume_id,
                "access_mode": "rw",
            },
        }

    def terminate_connection(self, volume_id: str, connector: Mapping[str, Any] | None = None) -> None:
        return None  # a local block device: nothing was exported

    @contextlib.contextmanager
    def raw_reader(self, volume_id: str) -> Iterator[Path]:
        if not self.volume_exists(volume_id):
            raise PermanentError(f"volume {volume_id} does not exist")
        temp = f"{TEMP}{uuid.uuid4().hex[:8]}-{volume_id}"
        self._do(
            f"snapshotting volume {volume_id} for reading",
            lvm.snapshot,
            self.vg,
            VOLUME + volume_id,
            temp,
            True,
        )
        try:
            self._do("activating the read snapshot", lvm.activate, self.vg, temp)
            yield Path(f"/dev/{self.vg}/{temp}")
        finally:
            with contextlib.suppress(PrivilegedError):
                lvm.remove(self.vg, temp)

    @contextlib.contextmanager
    def raw_writer(self, volume_id: str) -> Iterator[Path]:
        if not self.volume_exists(volume_id):
            raise PermanentError(f"volume {volume_id} does not exist")
        self._do(f"activating volume {volume_id}", lvm.activate, self.vg, VOLUME + volume_id)
        yield Path(self.device_path(volume_id))

    def remove_leftovers(self) -> int:
        """Remove read snapshots left by a crash (``kumo-tmp-*``); returns how many."""
        count = 0
        for name in self._lvs():
            if name.startswith(TEMP):
                with contextlib.suppress(PrivilegedError):
                    lvm.remove(self.vg, name)
                    count += 1
        return count
