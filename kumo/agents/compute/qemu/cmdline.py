"""QEMU command lines and QMP arguments, built from specs (pure functions; unit-tested)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kumo.agents.compute.driver import PortSpec, VmSpec, VolumeSpec
from kumo.agents.compute.errors import PermanentError
from kumo.agents.compute.qemu.rescue import argv as rescue_argv

# Cinder front-end QoS keys -> QEMU throttle-group limits
QOS_LIMITS = {
    "total_iops_sec": "iops-total",
    "read_iops_sec": "iops-read",
    "write_iops_sec": "iops-write",
    "total_bytes_sec": "bps-total",
    "read_bytes_sec": "bps-read",
    "write_bytes_sec": "bps-write",
    "total_iops_sec_max": "iops-total-max",
    "read_iops_sec_max": "iops-read-max",
    "write_iops_sec_max": "iops-write-max",
    "total_bytes_sec_max": "bps-total-max",
    "read_bytes_sec_max": "bps-read-max",
    "write_bytes_sec_max": "bps-write-max",
    "size_iops_sec": "iops-size",
}
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


@dataclass(frozen=True, slots=True)
class VmPaths:
    """Where one VM's files live (sockets may sit in a shorter directory: unix paths are short)."""

    dir: Path
    sockets: Path

    @property
    def disk(self) -> Path:
        return self.dir / "disk.qcow2"

    @property
    def pidfile(self) -> Path:
        return self.dir / "qemu.pid"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def qemu_log(self) -> Path:
        return self.dir / "qemu.log"

    @property
    def rescue_disk(self) -> Path:
        return self.dir / "disk.rescue.qcow2"

    @property
    def config_drive(self) -> Path:
        return self.dir / "config.iso"

    @property
    def qmp(self) -> Path:
        return self.sockets / "qmp.sock"

    @property
    def serial(self) -> Path:
        return self.sockets / "serial.sock"

    @property
    def vnc(self) -> Path:
        return self.sockets / "vnc.sock"


def tap_name(port_id: str) -> str:
    """The host tap of a port: the name the network agent looks for (``ktap-<port_id[:10]>``)."""
    return f"ktap-{port_id[:10]}"


def bridge_name(network_id: str) -> str:
    return f"kbr-{network_id[:11]}"


def volume_ids(volume_id: str) -> tuple[str, str]:
    """(block node name, device id) of a volume; node names are limited to 31 characters."""
    compact = volume_id.replace("-", "")
    return f"vol{compact[:26]}", f"vol-{volume_id}"


def shared_volume(volume: VolumeSpec) -> bool:
    """Whether the volume is multiattach (Cinder's flag, carried in its connection_info)."""
    return bool((volume.connection_info or {}).get("multiattach"))


def volume_blockdev(volume: VolumeSpec) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(QMP ``object-add`` args for a throttle group or nothing, ``blockdev-add`` args) for a volume."""
    info = volume.connection_info or {}
    kind = info.get("driver_volume_type")
    data = info.get("data") or {}
    fmt = str(data.get("format") or "raw")
    if fmt not in ("raw", "qcow2"):
        raise PermanentError(f"volume {volume.volume_id}: unsupported format {fmt!r}")
    if kind == "file" and data.get("path"):
        file: dict[str, Any] = {"driver": "file", "filename": str(data["path"])}
    elif kind == "local" and data.get("device_path"):
        file = {"driver": "host_device", "filename": str(data["device_path"])}
    elif kind == "nbd" and data.get("host") and data.get("port"):
        file = {"driver": "nbd", "server": {"type": "inet", "host": str(data["host"]), "port": str(data["port"])}}
        if data.get("export"):
            file["export"] = str(data["export"])
    else:
        raise PermanentError(f"volume {volume.volume_id}: cannot attach connection type {kind!r} ({sorted(data)})")
    node, _dev = volume_ids(volume.volume_id)
    ro = bool(volume.read_only)
    fmt_node: dict[str, Any] = {"driver": fmt, "node-name": node if not volume.qos else node + "f",
                                "read-only": ro, "file": {**file, "read-only": ro}}
    limits = {QOS_LIMITS[k]: n for k, v in (volume.qos or {}).items() if k in QOS_LIMITS and (n := _limit(v)) > 0}
    if not limits:
        return [], fmt_node
    group = f"tg{node[3:]}"
    objects = [{"qom-type": "throttle-group", "id": group, "limits": limits}]
    return objects, {"driver": "throttle", "node-name": node, "throttle-group": group, "read-only": ro,
                     "file": fmt_node}


def volume_device(volume: VolumeSpec, boot_index: int | None = None) -> dict[str, Any]:
    node, dev = volume_ids(volume.volume_id)
    args: dict[str, Any] = {"driver": "virtio-blk-pci", "id": dev, "drive": node, "serial": volume.serial[:20]}
    if shared_volume(volume):
        # a multiattach volume: the guest lets other writers (other guests, the storage host's NBD
        # exports) open the disk. QEMU's image lock stays: it turns shared, so an exclusive opener is
        # still refused, and a qcow2 image (whose metadata one writer owns) still takes one guest only
        args["share-rw"] = True
    if boot_index is not None:
        args["bootindex"] = boot_index
    return args


def _device_arg(args: Mapping[str, Any]) -> str:
    parts = [str(args["driver"])] + [f"{k}={_qemu_value(v)}" for k, v in args.items() if k != "driver"]
    return ",".join(parts)


def _qemu_value(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v).replace(",", ",,")


def nic_args(index: int, port: PortSpec) -> list[str]:
    if not _MAC.match(port.mac_address or ""):
        raise PermanentError(f"port {port.id} has no valid MAC address ({port.mac_address!r})")
    tap = tap_name(port.id)
    return ["-netdev", f"tap,id=net{index},ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=net{index},mac={port.mac_address.lower()},id=nic{index}"]


def build_argv(spec: VmSpec, paths: VmPaths, *, accel: str = "tcg", binary: str = "qemu-system-x86_64",
               volumes: tuple[VolumeSpec, ...] = (), config_drive: bool = False,
               vnc: bool = True, rescue_disk: Path | None = None,
               spice: tuple[str, int] | None = None) -> list[str]:
    """The full ``qemu-system-x86_64`` command line of a VM (daemonized, QMP, serial log, VNC);
    with ``rescue_disk`` (the overlay of ``spec.rescue``'s image) the rescued layout."""
    f = spec.flavor
    if f.vcpus < 1 or f.ram_mb < 16:
        raise PermanentError(f"flavor {f.name!r} is too small to boot ({f.vcpus} vCPU, {f.ram_mb} MB)")
    argv = [
        binary,
        "-name", f"guest={spec.id},debug-threads=on",
        "-uuid", spec.id,
        "-machine", "pc",
        "-accel", accel,
        *(["-cpu", "host"] if accel == "kvm" else []),
        "-smp", str(f.vcpus),
        "-m", str(f.ram_mb),
        "-nodefaults", "-no-user-config",
        "-no-shutdown",
        "-qmp", f"unix:{paths.qmp},server=on,wait=off",
        "-chardev", f"socket,id=serial0,path={paths.serial},server=on,wait=off,logfile={paths.console_log},logappend=on",
        "-serial", "chardev:serial0",
        "-pidfile", str(paths.pidfile),
        "-daemonize",
    ]
    if spec.start_paused:  # vCPUs stopped until QMP "cont" (the network reported the ports plugged)
        argv.append("-S")
    if vnc:
        argv += ["-vga", "std", "-vnc", f"unix:{paths.vnc}"]
    else:
        argv += ["-display", "none"]
    if spice is not None:  # (address, port): a SPICE display for spice-direct consoles, no ticket (2.99)
        argv += [*([] if vnc else ["-vga", "std"]), "-spice", f"port={spice[1]},addr={spice[0]},disable-ticketing=on"]
    # rescued (kumo.agents.compute.qemu.rescue): the rescue disk boots, the VM's own boot disk is second
    rescue = spec.rescue if rescue_disk is not None else None
    classic = rescue is not None and not rescue.stable
    boot = 1 if rescue is not None else 0
    if classic:  # the rescue disk first, the root disk second; volumes stay out
        assert rescue is not None and rescue_disk is not None
        argv += rescue_argv(rescue, rescue_disk)
        volumes = ()
    boot_volume = next((v for v in volumes if v.boot_index == 0), None)
    if boot_volume is None:
        argv += ["-drive", f"file={paths.disk},if=none,id=root,format=qcow2,discard=unmap",
                 "-device", f"virtio-blk-pci,drive=root,id=rootdisk,bootindex={boot}"]
    for vol in sorted(volumes, key=lambda v: (v.boot_index is None, v.boot_index or 0, v.volume_id)):
        objects, blockdev = volume_blockdev(vol)
        for obj in objects:
            argv += ["-object", json.dumps(obj, separators=(",", ":"))]
        argv += ["-blockdev", json.dumps(blockdev, separators=(",", ":")),
                 "-device", _device_arg(volume_device(vol, boot if vol is boot_volume else None))]
    if config_drive:
        argv += ["-drive", f"file={paths.config_drive},if=none,id=config,format=raw,readonly=on",
                 "-device", "virtio-blk-pci,drive=config,id=configdrive"]
    if rescue is not None and not classic:  # stable device rescue: every disk in place, the rescue one last
        assert rescue_disk is not None
        argv += rescue_argv(rescue, rescue_disk)
    for i, port in enumerate(spec.ports):
        argv += nic_args(i, port)
    return argv


def _limit(value: object) -> int:
    """A QoS spec value as a positive integer limit; anything unparsable means no limit."""
    try:
        return max(0, int(float(str(value))))
    except ValueError:
        return 0
