"""The fake driver: instant and in-memory, for API-only use. Always reported as ``fake``."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from kumo.agents.compute.configdrive import build_config_drive
from kumo.agents.compute.disk_layout import Disk, layout
from kumo.agents.compute.driver import ImageRef, PowerState, VmSpec, VolumeSpec
from kumo.agents.compute.fake_console import FakeConsoles
from kumo.agents.compute.fake_spice import FakeSpice
from kumo.agents.compute.fake_volumes import FakeVolumeChanges


def _host_inventory(data_dir: Path) -> dict[str, int]:
    vcpus = os.cpu_count() or 1
    try:
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):  # pragma: no cover
        memory_mb = 4096
    data_dir.mkdir(parents=True, exist_ok=True)
    local_gb = shutil.disk_usage(data_dir).total // (1024**3)
    return {"vcpus": vcpus, "memory_mb": int(memory_mb), "local_gb": int(local_gb)}


class FakeDriver(FakeVolumeChanges):
    type = "fake"

    def __init__(self, data_dir: Path, inventory: Mapping[str, int] | None = None,
                 plugs_vifs: bool = False) -> None:
        # the fake wires nothing, so by default no guest waits for network-vif-plugged; tests may
        # ask it to wait like qemu (compute.fake_vif_plugging) and send the events themselves
        self.plugs_vifs = plugs_vifs
        self._inventory = dict(inventory) if inventory else _host_inventory(data_dir)
        self._vms: dict[str, PowerState] = {}
        self._specs: dict[str, VmSpec] = {}
        self._console: dict[str, list[str]] = {}
        self._volumes: dict[str, dict[str, VolumeSpec]] = {}
        self._disks: dict[str, list[Disk]] = {}  # the disks each VM was started with, in order
        self._lock = threading.Lock()
        self._data_dir = data_dir
        self._consoles = FakeConsoles()
        self._spice = FakeSpice()  # spice-direct consoles (2.99)
        self.cached_images: list[str] = []  # image ids pre-cached on request (2.81), in order

    def inventory(self) -> Mapping[str, int]:
        return dict(self._inventory)

    def cache_image(self, image: ImageRef) -> None:
        """Pre-cache ``image`` (2.81): the fake has no disks, so it only records the request."""
        with self._lock:
            if image.id not in self.cached_images:
                self.cached_images.append(image.id)

    def migration_refused(self, live: bool) -> None:
        """The fake can move a server (kumo.agents.compute.migrate): the destination's driver
        builds it from its spec, the source's drops its copy when the API says so."""
        return None

    def _log(self, vm_id: str, line: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        self._console.setdefault(vm_id, []).append(f"[{stamp}] {line}")

    def ensure_running(self, spec: VmSpec) -> PowerState:
        with self._lock:
            if spec.start_paused and self._vms.get(spec.id) in (None, PowerState.PAUSED):
                if spec.id not in self._vms:
                    self._log(spec.id, "fake: created paused, waiting for the network")
                self._vms[spec.id] = PowerState.PAUSED
                self._specs[spec.id] = spec
                return PowerState.PAUSED
            old = self._specs.get(spec.id)
            rescue_changed = old is not None and old.rescue != spec.rescue
            if self._vms.get(spec.id) == PowerState.RUNNING and rescue_changed:
                self._log(spec.id, "fake: powered off")  # rescue and unrescue restart the guest
                self._vms[spec.id] = PowerState.SHUTDOWN
            if self._vms.get(spec.id) != PowerState.RUNNING:
                self._disks[spec.id] = layout(spec)
                if spec.rescue is not None or rescue_changed:  # which disk boots, and the others
                    for i, disk in enumerate(self._disks[spec.id]):
                        self._log(spec.id, f"fake: disk {i}: {disk.describe()}")
                for line in (
                    "fake: power on",
                    f"fake: {spec.flavor.vcpus} vCPU, {spec.flavor.ram_mb} MB RAM, {spec.flavor.disk_gb} GB disk",
                    f"fake: image {spec.image.id if spec.image else '(none)'}",
                    f"fake: {len(spec.ports)} network interface(s)",
                    "fake: kernel booted",
                    f"fake: hostname {spec.hostname}",
                    f"fake: instance {spec.id}",
                    f"login: {spec.hostname} ready",
                ):
                    self._log(spec.id, line)
            self._vms[spec.id] = PowerState.RUNNING
            self._specs[spec.id] = spec
            if spec.config_drive and spec.config_drive_doc:  # a real ISO, like the qemu driver's
                build_config_drive(spec.config_drive_doc, self.config_drive_path(spec.id))
            if spec.volumes or spec.id in self._volumes:  # booted with exactly the spec's volumes
                before = self._volumes.get(spec.id, {})
                for vol in spec.volumes:
                    if vol.volume_id not in before:
                        self._log(spec.id, f"fake: volume {vol.volume_id} attached")
                self._volumes[spec.id] = {vol.volume_id: vol for vol in spec.volumes}
            return PowerState.RUNNING

    def _set(self, vm_id: str, state: PowerState, msg: str) -> PowerState:
        with self._lock:
            if vm_id not in self._vms:
                return PowerState.NOSTATE
            if self._vms[vm_id] != state:
                self._log(vm_id, msg)
            self._vms[vm_id] = state
            return state

    def ensure_stopped(self, vm_id: str) -> PowerState:
        return self._set(vm_id, PowerState.SHUTDOWN, "fake: powered off")

    def ensure_paused(self, vm_id: str) -> PowerState:
        return self._set(vm_id, PowerState.PAUSED, "fake: paused")

    def ensure_suspended(self, vm_id: str) -> PowerState:
        return self._set(vm_id, PowerState.SUSPENDED, "fake: suspended")

    def ensure_deleted(self, vm_id: str) -> None:
        with self._lock:
            self._vms.pop(vm_id, None)
            self._specs.pop(vm_id, None)
            self._console.pop(vm_id, None)
            self._volumes.pop(vm_id, None)
            self._disks.pop(vm_id, None)
        self._consoles.stop(vm_id)
        self._spice.stop(vm_id)
        self.config_drive_path(vm_id).unlink(missing_ok=True)

    def reboot(self, spec: VmSpec, hard: bool) -> PowerState:
        with self._lock:
            self._log(spec.id, "fake: hard reset" if hard else "fake: rebooting")
            self._vms[spec.id] = PowerState.RUNNING
            self._specs[spec.id] = spec
            return PowerState.RUNNING

    def rebuild(self, spec: VmSpec) -> PowerState:
        with self._lock:
            self._log(spec.id, "fake: rebuilt from image")
        self.ensure_deleted(spec.id)
        return self.ensure_running(spec)

    def observe(self, vm_id: str) -> PowerState:
        with self._lock:
            return self._vms.get(vm_id, PowerState.NOSTATE)

    def list_vms(self) -> list[str]:
        with self._lock:
            return list(self._vms)

    def console_output(self, vm_id: str, length: int | None = None) -> str:
        with self._lock:
            lines = self._console.get(vm_id, [])
            if length is not None:
                lines = lines[-length:] if length > 0 else []
            return "\n".join(lines) + ("\n" if lines else "")

    def attach_volume(self, vm_id: str, volume: VolumeSpec) -> None:
        with self._lock:
            attached = self._volumes.setdefault(vm_id, {})
            if volume.volume_id not in attached:
                self._log(vm_id, f"fake: volume {volume.volume_id} attached")
            attached[volume.volume_id] = volume

    def detach_volume(self, vm_id: str, volume_id: str) -> None:
        with self._lock:
            if self._volumes.get(vm_id, {}).pop(volume_id, None) is not None:
                self._log(vm_id, f"fake: volume {volume_id} detached")

    def disks(self, vm_id: str) -> list[Disk]:
        """The disks the VM was last started with, in order (the booting one has ``boot``)."""
        with self._lock:
            return list(self._disks.get(vm_id, []))

    def attached_volumes(self, vm_id: str) -> list[str]:
        with self._lock:
            return sorted(self._volumes.get(vm_id, {}))

    def snapshot(self, vm_id: str) -> bytes:
        return b"\0" * 65536  # a fake disk: 64 KiB of zeros

    def snapshot_to(self, vm_id: str, dest: Path) -> Path:
        """The fake root disk written to ``dest`` (a raw image: what ``snapshot`` returns)."""
        Path(dest).write_bytes(self.snapshot(vm_id))
        return Path(dest)

    def config_drive_path(self, vm_id: str) -> Path:
        return self._data_dir / "config-drives" / f"{vm_id}.iso"

    def console_socket(self, vm_id: str, kind: str) -> str | None:
        """A unix socket speaking the console's protocol (kumo.agents.compute.fake_console)."""
        with self._lock:
            spec = self._specs.get(vm_id)
            if spec is None or self._vms.get(vm_id) not in (PowerState.RUNNING, PowerState.PAUSED):
                return None
        return self._consoles.socket_path(vm_id, kind, spec.hostname)

    def spice_address(self, vm_id: str) -> tuple[str, int] | None:
        """Where the VM's SPICE server listens for a spice-direct proxy (kumo.agents.compute.fake_spice)."""
        with self._lock:
            if vm_id not in self._specs or self._vms.get(vm_id) not in (PowerState.RUNNING, PowerState.PAUSED):
                return None
        return self._spice.address(vm_id)


def make_driver(name: str, data_dir: Path, plugs_vifs: bool = False):  # type: ignore[no-untyped-def]
    if name == "fake":
        return FakeDriver(data_dir, plugs_vifs=plugs_vifs)
    raise ValueError(f"unknown compute driver {name!r} (available: fake)")
