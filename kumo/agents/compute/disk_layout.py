"""The disks a VM is started with, in order, and the one it boots: what the QEMU driver's command
line attaches (``kumo.agents.compute.qemu.cmdline``), told as data so the fake driver can keep and
show the same state (the functional tests read it from its console)."""

from __future__ import annotations

from dataclasses import dataclass

from kumo.agents.compute.driver import VmSpec


@dataclass(frozen=True, slots=True)
class Disk:
    role: str  # root | volume | config | rescue
    source: str  # the image or volume id it is made from ("" for the config drive)
    device: str = "disk"
    bus: str = "virtio"
    boot: bool = False

    def describe(self) -> str:
        return f"{self.role} {self.device} on {self.bus}{' ' + self.source if self.source else ''}" + (
            " (boot)" if self.boot else "")


def layout(spec: VmSpec) -> list[Disk]:
    """Classic rescue: the rescue disk, then the root disk (no volumes). Stable device rescue: the
    usual disks, then the rescue device. Either way the rescue disk boots; else the root disk
    (or the boot volume) does."""
    rescue = spec.rescue
    rescue_disk = None
    if rescue is not None:
        device, bus = (rescue.device, rescue.bus) if rescue.stable else ("disk", "virtio")
        rescue_disk = Disk("rescue", rescue.image.id, device, bus, boot=True)
    classic = rescue is not None and not rescue.stable
    volumes = () if classic else spec.volumes
    boot_volume = next((v for v in volumes if v.boot_index == 0), None)
    disks: list[Disk] = [rescue_disk] if classic and rescue_disk is not None else []
    if boot_volume is None:
        disks.append(Disk("root", spec.image.id if spec.image else "", boot=rescue is None))
    for vol in sorted(volumes, key=lambda v: (v.boot_index is None, v.boot_index or 0, v.volume_id)):
        disks.append(Disk("volume", vol.volume_id, boot=vol is boot_volume and rescue is None))
    if spec.config_drive:
        disks.append(Disk("config", ""))
    if rescue_disk is not None and not classic:
        disks.append(rescue_disk)
    return disks
