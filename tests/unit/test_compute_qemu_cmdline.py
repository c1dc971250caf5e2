"""The QEMU driver's pure parts: command lines, volume blockdevs, the tiny image's initramfs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from kumo.agents.compute import tiny_image
from kumo.agents.compute.driver import FlavorSpec, ImageRef, PortSpec, VmSpec, VolumeSpec
from kumo.agents.compute.errors import PermanentError
from kumo.agents.compute.qemu import cmdline
from kumo.agents.compute.qemu.cmdline import VmPaths

VM = "3f2a6c1e-0b7d-4c52-9d1e-1234567890ab"
PORT = PortSpec(id="8d1f0c2a-aaaa-bbbb-cccc-000000000001", network_id="5e9b7a10-1111-2222-3333-444455556666",
                mac_address="FA:16:3E:00:00:01", fixed_ips=("10.0.0.5",))


def spec(**kw) -> VmSpec:  # type: ignore[no-untyped-def]
    base = dict(id=VM, name="vm", hostname="vm", project_id="p", flavor=FlavorSpec("m1.tiny", 2, 256, 1),
                image=ImageRef(id="img", url="http://x/image/v2/images/img/file"), ports=(PORT,))
    base.update(kw)
    return VmSpec(**base)  # type: ignore[arg-type]


PATHS = VmPaths(Path("/d/instances") / VM, Path("/d/instances") / VM)


def opt(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_argv_has_tcg_qmp_serial_log_vnc_and_daemonizes() -> None:
    argv = cmdline.build_argv(spec(), PATHS)
    assert argv[0] == "qemu-system-x86_64"
    assert opt(argv, "-accel") == ["tcg"] and "-cpu" not in argv
    assert opt(argv, "-smp") == ["2"] and opt(argv, "-m") == ["256"]
    assert opt(argv, "-qmp") == [f"unix:{PATHS.qmp},server=on,wait=off"]
    (chardev,) = opt(argv, "-chardev")
    assert f"path={PATHS.serial}" in chardev and f"logfile={PATHS.console_log}" in chardev
    assert opt(argv, "-serial") == ["chardev:serial0"]
    assert opt(argv, "-vnc") == [f"unix:{PATHS.vnc}"]
    assert opt(argv, "-pidfile") == [str(PATHS.pidfile)] and "-daemonize" in argv and "-no-shutdown" in argv
    assert any(d.startswith(f"file={PATHS.disk},") for d in opt(argv, "-drive"))
    assert "vhost" not in " ".join(argv)


def test_kvm_uses_the_host_cpu() -> None:
    argv = cmdline.build_argv(spec(), PATHS, accel="kvm")
    assert opt(argv, "-accel") == ["kvm"] and opt(argv, "-cpu") == ["host"]


def test_nics_are_taps_named_for_the_network_agent() -> None:
    argv = cmdline.build_argv(spec(), PATHS)
    assert opt(argv, "-netdev") == ["tap,id=net0,ifname=ktap-8d1f0c2a-a,script=no,downscript=no"]
    assert "virtio-net-pci,netdev=net0,mac=fa:16:3e:00:00:01,id=nic0" in opt(argv, "-device")
    assert cmdline.tap_name(PORT.id) == "ktap-8d1f0c2a-a" and len(cmdline.tap_name(PORT.id)) <= 15
    assert cmdline.bridge_name(PORT.network_id) == "kbr-5e9b7a10-11"


def test_bad_mac_and_tiny_flavor_are_permanent_errors() -> None:
    with pytest.raises(PermanentError, match="MAC"):
        cmdline.build_argv(spec(ports=(PortSpec(id="p", network_id="n", mac_address="nope"),)), PATHS)
    with pytest.raises(PermanentError, match="too small"):
        cmdline.build_argv(spec(flavor=FlavorSpec("x", 1, 8, 1)), PATHS)


FILE_VOL = VolumeSpec(volume_id="0a1b2c3d-4e5f-6789-abcd-ef0123456789", attachment_id="a",
                      connection_info={"driver_volume_type": "file",
                                       "data": {"path": "/v/volume-1", "format": "qcow2"}})


def test_file_volume_blockdev_and_device() -> None:
    objects, blockdev = cmdline.volume_blockdev(FILE_VOL)
    node, dev = cmdline.volume_ids(FILE_VOL.volume_id)
    assert objects == [] and len(node) <= 31 and dev == f"vol-{FILE_VOL.volume_id}"
    assert blockdev == {"driver": "qcow2", "node-name": node, "read-only": False,
                        "file": {"driver": "file", "filename": "/v/volume-1", "read-only": False}}
    device = cmdline.volume_device(FILE_VOL)
    assert device == {"driver": "virtio-blk-pci", "id": dev, "drive": node, "serial": FILE_VOL.volume_id[:20]}


def test_qos_becomes_a_throttle_group_and_nbd_and_local_volumes() -> None:
    vol = VolumeSpec(volume_id="v1", attachment_id="a", read_only=True,
                     connection_info={"driver_volume_type": "nbd", "data": {"host": "10.0.0.9", "port": 10809,
                                                                             "export": "volume-v1"}},
                     qos={"total_iops_sec": "500", "read_bytes_sec": "1048576", "unknown": "1",
                          "write_iops_sec": "fast"})  # unparsable: no limit, never a failed attach
    objects, blockdev = cmdline.volume_blockdev(vol)
    assert objects == [{"qom-type": "throttle-group", "id": "tgv1",
                        "limits": {"iops-total": 500, "bps-read": 1048576}}]
    assert blockdev["driver"] == "throttle" and blockdev["throttle-group"] == "tgv1" and blockdev["read-only"]
    inner = blockdev["file"]
    assert inner["driver"] == "raw" and inner["file"]["driver"] == "nbd"
    assert inner["file"]["server"] == {"type": "inet", "host": "10.0.0.9", "port": "10809"}
    local = VolumeSpec(volume_id="v2", attachment_id="a", connection_info={
        "driver_volume_type": "local", "data": {"device_path": "/dev/kumo/v2"}})
    assert cmdline.volume_blockdev(local)[1]["file"] == {"driver": "host_device", "filename": "/dev/kumo/v2",
                                                        "read-only": False}
    with pytest.raises(PermanentError, match="cannot attach"):
        cmdline.volume_blockdev(VolumeSpec(volume_id="v3", attachment_id="a", connection_info={}))


def test_boot_from_volume_replaces_the_overlay() -> None:
    boot = VolumeSpec(volume_id=FILE_VOL.volume_id, attachment_id="a", boot_index=0,
                      connection_info=FILE_VOL.connection_info)
    argv = cmdline.build_argv(spec(image=None), PATHS, volumes=(boot,))
    assert not any(d.startswith(f"file={PATHS.disk}") for d in opt(argv, "-drive"))
    (blockdev,) = [json.loads(b) for b in opt(argv, "-blockdev")]
    assert blockdev["file"]["filename"] == "/v/volume-1"
    assert any(d.startswith("virtio-blk-pci,") and "bootindex=0" in d and "serial=" in d for d in opt(argv, "-device"))


def test_config_drive_is_a_read_only_disk() -> None:
    argv = cmdline.build_argv(spec(config_drive=True), PATHS, config_drive=True)
    assert f"file={PATHS.config_drive},if=none,id=config,format=raw,readonly=on" in opt(argv, "-drive")


def test_newc_archive_and_initramfs(tmp_path: Path) -> None:
    data = tiny_image.newc_archive([("init", 0o100755, b"#!/bin/sh\n"), ("dev/console", 0o20600, b"")])
    assert data.startswith(b"070701") and b"TRAILER!!!" in data and len(data) % 4 == 0
    # the char device carries rdev 5:1 (fields 10 and 11 of the second header)
    second = data.index(b"070701", 6)
    fields = [int(data[second + 6 + 8 * i: second + 14 + 8 * i], 16) for i in range(13)]
    assert (fields[9], fields[10]) == (5, 1)
    bb = tmp_path / "busybox"
    bb.write_text("#!/bin/sh\necho sh ls\n")
    bb.chmod(0o755)
    mods = {}
    for m in tiny_image.MODULES:
        (tmp_path / f"{m}.ko").write_bytes(b"\x7fELF" + m.encode())
        mods[m] = tmp_path / f"{m}.ko"
    archive = gzip.decompress(tiny_image.initramfs(bb, mods))
    for name in (b"init\0", b"bin/sh\0", b"etc/udhcpc.sh\0", b"etc/acpi/PWRF/00000080\0", b"lib/modules/virtio_net.ko\0"):
        assert name in archive
    assert tiny_image.BOOT_MARKER.encode() in archive
