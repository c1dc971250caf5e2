"""The fake driver's side of changes to attached volumes: it keeps, per VM and volume, the size
the guest sees and the file chain assisted snapshots built (base first, active last), checking
every request as the QEMU driver does, so the API's behaviour can be tested without QEMU.

A mixin of :class:`kumo.agents.compute.fake.FakeDriver` (its ``_lock``, ``_volumes``, ``_log``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kumo.agents.compute.driver import VolumeSpec
from kumo.agents.compute.errors import PermanentError


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name or "/" in name or name in (".", "..") or "\0" in name:
        raise PermanentError(f"{what} must be a file name in the volume's directory, not {name!r}")
    return name


def _base_name(volume: VolumeSpec) -> str:
    path = ((volume.connection_info or {}).get("data") or {}).get("path")
    return Path(str(path)).name if path else f"volume-{volume.volume_id}"


class FakeVolumeChanges:
    """Mixed into FakeDriver."""

    _lock: Any
    _volumes: dict[str, dict[str, VolumeSpec]]
    _log: Any

    def _fake_state(self) -> dict[tuple[str, str], dict[str, Any]]:
        state = self.__dict__.get("_volume_state")
        if state is None:
            state = self.__dict__["_volume_state"] = {}
        return state

    def _attached(self, vm_id: str, volume_id: str) -> None:
        if volume_id not in self._volumes.get(vm_id, {}):
            raise PermanentError(f"volume {volume_id} is not attached to the guest")

    def volume_chain(self, vm_id: str, volume_id: str) -> list[str]:
        with self._lock:
            return list(self._fake_state().get((vm_id, volume_id), {}).get("chain") or [])

    def volume_size(self, vm_id: str, volume_id: str) -> int | None:
        """The size in bytes the guest was last told (None: never grown while attached)."""
        with self._lock:
            return self._fake_state().get((vm_id, volume_id), {}).get("size")

    def extend_volume(self, vm_id: str, volume: VolumeSpec, size_bytes: int) -> None:
        with self._lock:
            self._attached(vm_id, volume.volume_id)
            entry = self._fake_state().setdefault((vm_id, volume.volume_id), {})
            if int(size_bytes) < int(entry.get("size") or 0):
                raise PermanentError(f"volume {volume.volume_id} cannot shrink to {size_bytes} bytes")
            entry["size"] = int(size_bytes)
            self._log(vm_id, f"fake: volume {volume.volume_id} grown to {size_bytes} bytes")

    def volume_snapshot_create(self, vm_id: str, volume: VolumeSpec, new_file: str) -> list[str]:
        with self._lock:
            self._attached(vm_id, volume.volume_id)
            _check_name(new_file, "new_file")
            entry = self._fake_state().setdefault((vm_id, volume.volume_id), {})
            chain = entry.get("chain") or [_base_name(volume)]
            if new_file not in chain:
                chain = [*chain, new_file]
                self._log(vm_id, f"fake: volume {volume.volume_id} now writes to {new_file}")
            entry["chain"] = chain
            return list(chain)

    def volume_snapshot_delete(self, vm_id: str, volume: VolumeSpec, delete_info: Mapping[str, Any]) -> list[str]:
        with self._lock:
            self._attached(vm_id, volume.volume_id)
            if delete_info.get("type") != "qcow2":
                raise PermanentError(f"Unknown delete_info type {delete_info.get('type')!r}")
            entry = self._fake_state().setdefault((vm_id, volume.volume_id), {})
            chain = list(entry.get("chain") or [_base_name(volume)])
            target, merge = delete_info.get("merge_target_file"), delete_info.get("file_to_merge")
            if target is None:  # pull into the active file
                if merge is not None and _check_name(merge, "file_to_merge") not in chain[:-1]:
                    raise PermanentError(f"file_to_merge {merge} is not below the active file")
                keep = chain[: chain.index(merge) + 1] if merge is not None else []
                chain = [*keep, chain[-1]]
            else:  # commit file_to_merge into merge_target_file
                _check_name(target, "merge_target_file")
                if _check_name(merge, "file_to_merge") not in chain or target not in chain \
                        or chain.index(target) >= chain.index(merge):
                    raise PermanentError(f"{merge} cannot be committed into {target}: not above it in the chain")
                chain = chain[: chain.index(target) + 1] + chain[chain.index(merge) + 1:]
            entry["chain"] = chain
            self._log(vm_id, f"fake: volume {volume.volume_id} chain {' <- '.join(chain)}")
            return list(chain)
