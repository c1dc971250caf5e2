"""The virt driver interface: small, typed, idempotent; specs are frozen dataclasses.

QEMU pids, QMP sockets and tap names never leave a driver. Every method may be
called again with the same spec (after an agent restart, a lost report, a resync)
and must converge to the same result.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class PowerState(enum.IntEnum):
    """Nova's power states (the numbers are on the wire as OS-EXT-STS:power_state)."""

    NOSTATE = 0
    RUNNING = 1
    PAUSED = 3
    SHUTDOWN = 4
    CRASHED = 6
    SUSPENDED = 7


@dataclass(frozen=True, slots=True)
class FlavorSpec:
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    extra_specs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageRef:
    id: str
    url: str  # where to download the data (the image API's /v2/images/{id}/file)
    disk_format: str = "raw"
    checksum: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BlockDeviceMapping:
    """One block_device_mapping_v2 entry: a local image disk now, a volume later."""

    boot_index: int | None
    source_type: str  # image | blank | volume | snapshot
    destination_type: str  # local | volume
    uuid: str | None = None
    size_gb: int | None = None
    device_name: str | None = None
    delete_on_termination: bool = True
    # set for destination_type=volume by the block-storage work: how to reach the volume
    connection_info: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PortSpec:
    id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[str, ...] = ()
    mtu: int | None = None


@dataclass(frozen=True, slots=True)
class VolumeSpec:
    """A block-storage volume attached to a VM (hot-plugged, or present at boot).

    ``connection_info`` is what the block storage API returned when the attachment was
    completed for this host's connector, e.g.
    ``{"driver_volume_type": "file", "data": {"path": "/.../volume-ID", "format": "qcow2"}}``
    (a file on this host), ``{"driver_volume_type": "local", "data": {"device_path": "/dev/...",
    "format": "raw"}}`` (a block device on this host, e.g. an LVM LV) or
    ``{"driver_volume_type": "nbd", "data": {"host": ..., "port": ..., "export": ...}}``
    (exported by another storage host). ``qos`` carries front-end limits
    (``total_iops_sec``, ``read_bytes_sec``, ...) applied as QEMU I/O throttling.
    """

    volume_id: str
    attachment_id: str
    connection_info: Mapping[str, Any] = field(default_factory=dict)
    device_name: str | None = None  # e.g. /dev/vdb (informational; the guest names disks itself)
    boot_index: int | None = None  # 0 for a boot-from-volume root disk
    read_only: bool = False
    qos: Mapping[str, str] = field(default_factory=dict)

    @property
    def serial(self) -> str:
        """The disk serial the guest sees (/dev/disk/by-id/virtio-<first 20 chars>)."""
        return self.volume_id


@dataclass(frozen=True, slots=True)
class RescueSpec:
    """A rescued VM's rescue disk (``kumo.compute.service.rescue``): the image it is made from and,
    for a stable device rescue, the kind of device and bus it is attached as. Classic rescue
    boots it as the first disk with the root disk second (volumes left out); stable rescue keeps
    every disk in place and adds it last. Either way the guest boots from it."""

    image: ImageRef
    stable: bool = False
    device: str = "disk"  # disk | cdrom | floppy
    bus: str = "virtio"  # virtio | scsi | usb | ide | sata | fdc


@dataclass(frozen=True, slots=True)
class VmSpec:
    id: str  # the server uuid
    name: str
    hostname: str
    project_id: str
    flavor: FlavorSpec
    image: ImageRef | None
    block_devices: tuple[BlockDeviceMapping, ...] = ()
    ports: tuple[PortSpec, ...] = ()
    user_data: bytes | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    config_drive: bool = False
    key_name: str | None = None
    public_key: str | None = None
    volumes: tuple[VolumeSpec, ...] = ()  # attached volumes (boot volume has boot_index 0)
    # when config_drive: the drive's files, {"label": "config-2", "files": [{"path", "content" (base64)}]};
    # kumo.agents.compute.configdrive.build_config_drive(doc, path) writes the ISO
    config_drive_doc: Mapping[str, Any] | None = None
    # a new guest waiting for its network (network-vif-plugged): created with its vCPUs stopped,
    # let run by a later ensure_running of the same spec without it
    start_paused: bool = False
    # set while the server is rescued: the guest runs on its rescue disk (see RescueSpec)
    rescue: RescueSpec | None = None


class Driver(Protocol):
    """What the compute agent needs from a hypervisor."""

    type: str  # hypervisor_type shown by the API ("fake", "QEMU")

    def inventory(self) -> Mapping[str, int]:
        """``vcpus``, ``memory_mb``, ``local_gb`` this host offers."""
        ...

    def ensure_running(self, spec: VmSpec) -> PowerState: ...

    def ensure_stopped(self, vm_id: str) -> PowerState: ...

    def ensure_paused(self, vm_id: str) -> PowerState: ...

    def ensure_suspended(self, vm_id: str) -> PowerState: ...

    def ensure_deleted(self, vm_id: str) -> None: ...

    def reboot(self, spec: VmSpec, hard: bool) -> PowerState: ...

    def rebuild(self, spec: VmSpec) -> PowerState: ...

    def observe(self, vm_id: str) -> PowerState:
        """The real power state (NOSTATE when the driver does not know the VM)."""
        ...

    def list_vms(self) -> list[str]: ...

    def console_output(self, vm_id: str, length: int | None = None) -> str: ...

    def attach_volume(self, vm_id: str, volume: VolumeSpec) -> None:
        """Hot-plug ``volume`` into the running (or paused) VM; idempotent."""
        ...

    def detach_volume(self, vm_id: str, volume_id: str) -> None:
        """Hot-unplug the volume and wait until the guest released it; idempotent."""
        ...

    def snapshot(self, vm_id: str) -> bytes:
        """The root disk's contents (small drivers); the qemu driver may stream a file instead."""
        ...

    def snapshot_to(self, vm_id: str, dest: Path) -> Path:
        """Write the root disk as an image file at ``dest`` (qcow2 for qemu, raw for fake); returns it."""
        ...
