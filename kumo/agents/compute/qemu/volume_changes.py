"""The QEMU driver's side of changes to attached volumes: growing one under the guest
(``volume-extended``) and assisted snapshots of file-based volumes (qcow2 overlays).

A mixin of :class:`kumo.agents.compute.qemu.driver.QemuDriver`: it uses the driver's per-VM
lock, paths and saved documents. The overlay chain of each volume (file names, base first)
is kept in ``volume-chains.json`` of the VM so that a restarted or re-plugged guest opens the
active file; the QMP commands are in :mod:`kumo.agents.compute.qemu.volume_ops`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kumo.agents.compute.driver import VolumeSpec
from kumo.agents.compute.errors import PermanentError
from kumo.agents.compute.qemu import cmdline, disks, qmp, volume_ops

CHAINS = "volume-chains.json"
log = logging.getLogger("kumo.agents.compute")


def volume_file(volume: VolumeSpec) -> Path:
    info = volume.connection_info or {}
    path = (info.get("data") or {}).get("path")
    if info.get("driver_volume_type") != "file" or not path:
        raise PermanentError(f"volume {volume.volume_id} is not file-based: assisted snapshots need a file volume")
    return Path(str(path))


def make_overlay(path: Path, backing: str, backing_format: str, size: int) -> None:
    """A qcow2 file backed by ``backing`` (a name in the same directory), not opening it: the
    running guest holds its lock."""
    args = ["create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", backing_format, str(path)]
    disks.qemu_img(*args, *([str(size)] if size else []))


class VolumeChanges:
    """Mixed into QemuDriver, whose ``_lock``, ``paths``, ``_pid``, ``_saved`` and ``_save`` it uses."""

    _lock: Any
    paths: Any
    _pid: Any
    _saved: Any
    _save: Any

    def volume_chain(self, vm_id: str, volume_id: str) -> list[str]:
        """The volume's file chain as this VM opens it (base first; empty: the volume's own file)."""
        return list((self._saved(self.paths(vm_id), CHAINS).get(volume_id) or {}).get("chain") or [])

    def _set_chain(self, p: Any, volume_id: str, chain: list[str], base: Path) -> None:
        chains = self._saved(p, CHAINS)
        if chain != [base.name]:  # a flattened overlay alone is still not the volume's own file
            chains[volume_id] = {"base": str(base), "chain": chain}
        else:
            chains.pop(volume_id, None)
        p.dir.mkdir(parents=True, exist_ok=True)
        self._save(p, CHAINS, chains)

    def with_active_files(self, vm_id: str, volumes: tuple[VolumeSpec, ...]) -> tuple[VolumeSpec, ...]:
        """``volumes`` with file paths pointing at the active overlay where snapshots were taken."""
        chains = self._saved(self.paths(vm_id), CHAINS)
        out = []
        for vol in volumes:
            chain = (chains.get(vol.volume_id) or {}).get("chain")
            info = vol.connection_info or {}
            data: Mapping[str, Any] = info.get("data") or {}
            if chain and info.get("driver_volume_type") == "file" and data.get("path"):
                active = Path(str(data["path"])).parent / chain[-1]
                vol = dataclasses.replace(vol, connection_info={
                    **info, "data": {**data, "path": str(active), "format": "qcow2"}})
            out.append(vol)
        return tuple(out)

    def volume_snapshot_create(self, vm_id: str, volume: VolumeSpec, new_file: str) -> list[str]:
        with self._lock(vm_id):
            p = self.paths(vm_id)
            path = volume_file(volume)
            chain = self.volume_chain(vm_id, volume.volume_id) or [path.name]
            if self._pid(p) is not None:
                try:
                    with qmp.QmpClient(p.qmp, timeout=15.0) as q:
                        chain = volume_ops.snapshot_create(q, volume.volume_id, path.parent, chain, new_file,
                                                           make_overlay)
                except qmp.QmpError as exc:
                    raise PermanentError(f"snapshot of volume {volume.volume_id} failed: {exc}") from exc
            elif new_file not in chain:  # a stopped guest: the overlay is made offline
                volume_ops.check_name(new_file, "new_file")
                active = path.parent / chain[-1]
                info = disks.image_info(active)
                make_overlay(path.parent / new_file, chain[-1], str(info.get("format") or "raw"),
                             int(info.get("virtual-size") or 0))
                chain = [*chain, new_file]
            self._set_chain(p, volume.volume_id, chain, path)
            return chain

    def volume_snapshot_delete(self, vm_id: str, volume: VolumeSpec, delete_info: Mapping[str, Any]) -> list[str]:
        with self._lock(vm_id):
            p = self.paths(vm_id)
            path = volume_file(volume)
            chain = self.volume_chain(vm_id, volume.volume_id) or [path.name]
            if self._pid(p) is not None:
                try:
                    with qmp.QmpClient(p.qmp, timeout=15.0) as q:
                        chain = volume_ops.snapshot_delete(q, volume.volume_id, path.parent, chain, delete_info)
                except qmp.QmpError as exc:
                    raise PermanentError(f"merging snapshot files of volume {volume.volume_id} failed: {exc}") from exc
            else:
                chain = self._merge_offline(path.parent, chain, delete_info)
            self._set_chain(p, volume.volume_id, chain, path)
            return chain

    def release_overlays(self, q: Any, vm_id: str, volume_id: str) -> None:
        """At detach, once the guest let the disk go: commit the overlays back into the volume's
        own file (the block storage knows only that file, so a later attach elsewhere, a backup
        or a clone sees every write), then remove the overlay nodes. A chain whose base was
        merged away (a full pull) cannot go back: it is kept for this VM and logged."""
        p = self.paths(vm_id)
        record = self._saved(p, CHAINS).get(volume_id) or {}
        chain, base = list(record.get("chain") or []), Path(str(record.get("base") or "."))
        if len(chain) > 1 and chain[0] == base.name:
            volume_ops.commit_all(q, volume_id, base.parent, chain)
            self._set_chain(p, volume_id, [base.name], base)
        elif chain:
            log.warning("volume %s leaves %s with its data in %s, not in %s", volume_id, vm_id, chain[-1], base.name)
        volume_ops.drop_overlays(q, volume_id)

    @staticmethod
    def _merge_offline(directory: Path, chain: list[str], delete_info: Mapping[str, Any]) -> list[str]:
        """The same merges with qemu-img while no guest holds the files."""
        if delete_info.get("type") != "qcow2":
            raise PermanentError(f"Unknown delete_info type {delete_info.get('type')!r}")
        target, merge = delete_info.get("merge_target_file"), delete_info.get("file_to_merge")
        active = directory / chain[-1]
        if target is None:
            if merge is not None and volume_ops.check_name(merge, "file_to_merge") not in chain[:-1]:
                raise PermanentError(f"file_to_merge {merge} is not below the active file")
            if merge is None:
                disks.qemu_img("rebase", "-q", "-f", "qcow2", "-b", "", str(active))
                return [chain[-1]]
            fmt = str(disks.image_info(directory / merge).get("format") or "raw")
            disks.qemu_img("rebase", "-q", "-f", "qcow2", "-b", merge, "-F", fmt, str(active))
            return [*chain[: chain.index(merge) + 1], chain[-1]]
        volume_ops.check_name(target, "merge_target_file")
        if volume_ops.check_name(merge, "file_to_merge") not in chain or target not in chain \
                or chain.index(target) >= chain.index(merge):
            raise PermanentError(f"{merge} cannot be committed into {target}: not above it in the chain")
        top, base = chain.index(merge), chain.index(target)
        disks.qemu_img("commit", "-q", "-b", str(directory / target), str(directory / merge))
        if top + 1 < len(chain):  # the file above now sits on the target directly
            fmt = str(disks.image_info(directory / target).get("format") or "raw")
            disks.qemu_img("rebase", "-q", "-u", "-f", "qcow2", "-b", target, "-F", fmt,
                           str(directory / chain[top + 1]))
        return chain[: base + 1] + chain[top + 1:]

    def extend_volume(self, vm_id: str, volume: VolumeSpec, size_bytes: int) -> None:
        """Grow the attached disk to ``size_bytes`` under the running guest (``block_resize``);
        a stopped guest sees the grown volume when it starts."""
        with self._lock(vm_id):
            p = self.paths(vm_id)
            if self._pid(p) is None:
                return
            _node, dev = cmdline.volume_ids(volume.volume_id)
            try:
                with qmp.QmpClient(p.qmp, timeout=15.0) as q:
                    volume_ops.resize(q, dev, size_bytes)
            except qmp.QmpError as exc:
                raise PermanentError(f"growing volume {volume.volume_id} in the guest failed: {exc}") from exc
