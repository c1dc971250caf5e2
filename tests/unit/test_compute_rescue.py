"""Rescue without a cloud: the API's rules (which image, classic or stable), the QEMU command
line and disk layout of a rescued VM, the fake driver's state through rescue and unrescue."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from kumo.agents.compute.agent import to_spec
from kumo.agents.compute.disk_layout import Disk, layout
from kumo.agents.compute.driver import FlavorSpec, ImageRef, PowerState, RescueSpec, VmSpec, VolumeSpec
from kumo.agents.compute.errors import PermanentError
from kumo.agents.compute.fake import FakeDriver
from kumo.agents.compute.qemu import cmdline, disks
from kumo.agents.compute.qemu.cmdline import VmPaths
from kumo.agents.compute.qemu.driver import QemuDriver
from kumo.compute.errors import BadRequest
from kumo.compute.service import rescue

VM = "3f2a6c1e-0b7d-4c52-9d1e-1234567890ab"
PATHS = VmPaths(Path("/d/instances") / VM, Path("/d/instances") / VM)
RESCUE_IMG = ImageRef(id="rescue-img", url="http://x/v2/images/rescue-img/file")
VOL = VolumeSpec(volume_id="0c7e3f5a-1111-2222-3333-444455556666", attachment_id="a1",
                 connection_info={"driver_volume_type": "file", "data": {"path": "/v/vol", "format": "raw"}})
BOOT_VOL = VolumeSpec(volume_id="9a9a9a9a-1111-2222-3333-444455556666", attachment_id="a2", boot_index=0,
                      connection_info={"driver_volume_type": "file", "data": {"path": "/v/boot", "format": "raw"}})


def spec(**kw) -> VmSpec:  # type: ignore[no-untyped-def]
    base = dict(id=VM, name="vm", hostname="vm", project_id="p", flavor=FlavorSpec("m1.tiny", 1, 128, 1),
                image=ImageRef(id="own-img", url="http://x/v2/images/own-img/file"))
    base.update(kw)
    return VmSpec(**base)  # type: ignore[arg-type]


def devices(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]


def drives(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]


# -- the QEMU command line ------------------------------------------------------------------


def test_classic_rescue_boots_the_rescue_disk_first_with_the_root_disk_second() -> None:
    s = spec(rescue=RescueSpec(image=RESCUE_IMG), volumes=(VOL,))
    argv = cmdline.build_argv(s, PATHS, volumes=s.volumes, rescue_disk=PATHS.rescue_disk)
    assert drives(argv)[:2] == [f"file={PATHS.rescue_disk},if=none,id=rescue,format=qcow2",
                                f"file={PATHS.disk},if=none,id=root,format=qcow2,discard=unmap"]
    disk_devs = [d for d in devices(argv) if "drive=" in d]
    assert disk_devs == ["virtio-blk-pci,drive=rescue,id=rescuedisk,bootindex=0",
                         "virtio-blk-pci,drive=root,id=rootdisk,bootindex=1"]
    assert "-blockdev" not in argv  # classic rescue leaves the volumes out, as Nova's libvirt driver
    # not rescued (or no rescue disk made): the usual layout, the root disk boots
    plain = cmdline.build_argv(spec(), PATHS)
    assert [d for d in devices(plain) if "drive=" in d] == ["virtio-blk-pci,drive=root,id=rootdisk,bootindex=0"]
    assert str(PATHS.rescue_disk) not in " ".join(plain)


@pytest.mark.parametrize(("device", "bus", "expect"), [
    ("disk", "virtio", ["virtio-blk-pci,drive=rescue,id=rescuedisk,bootindex=0"]),
    ("disk", "scsi", ["virtio-scsi-pci,id=rescuectl", "scsi-hd,bus=rescuectl.0,drive=rescue,id=rescuedisk,bootindex=0"]),
    ("cdrom", "scsi", ["virtio-scsi-pci,id=rescuectl", "scsi-cd,bus=rescuectl.0,drive=rescue,id=rescuedisk,bootindex=0"]),
    ("disk", "usb", ["qemu-xhci,id=rescuectl", "usb-storage,bus=rescuectl.0,drive=rescue,id=rescuedisk,bootindex=0"]),
    ("cdrom", "ide", ["ide-cd,bus=ide.0,unit=0,drive=rescue,id=rescuedisk,bootindex=0"]),
    ("disk", "sata", ["ich9-ahci,id=rescuectl", "ide-hd,bus=rescuectl.0,drive=rescue,id=rescuedisk,bootindex=0"]),
    ("floppy", "fdc", ["floppy,unit=0,drive=rescue,id=rescuedisk"]),
])
def test_stable_rescue_keeps_every_disk_and_adds_the_rescue_device_last(device: str, bus: str,
                                                                        expect: list[str]) -> None:  # fmt: skip
    s = spec(image=None, volumes=(BOOT_VOL, VOL), config_drive=True,
             rescue=RescueSpec(image=RESCUE_IMG, stable=True, device=device, bus=bus))
    argv = cmdline.build_argv(s, PATHS, volumes=s.volumes, config_drive=True, rescue_disk=PATHS.rescue_disk)
    devs = devices(argv)
    assert devs[-len(expect):] == expect
    boot_vol = next(d for d in devs if "vol-9a9a9a9a" in d)
    assert boot_vol.endswith("bootindex=1")  # the boot volume keeps its place but no longer boots first
    assert any("vol-0c7e3f5a" in d for d in devs) and "virtio-blk-pci,drive=config,id=configdrive" in devs
    assert devs.index("virtio-blk-pci,drive=config,id=configdrive") < devs.index(expect[-1])
    rescue_drive = drives(argv)[-1]
    assert rescue_drive.startswith(f"file={PATHS.rescue_disk},") and ("readonly=on" in rescue_drive) == (device != "disk")
    assert ("isa-fdc.bootindexA=0" in argv) == (bus == "fdc")


def test_a_rescue_device_qemu_cannot_attach_is_refused() -> None:
    s = spec(rescue=RescueSpec(image=RESCUE_IMG, stable=True, device="cdrom", bus="virtio"))
    with pytest.raises(PermanentError, match="'cdrom' is not supported on bus 'virtio'"):
        cmdline.build_argv(s, PATHS, rescue_disk=PATHS.rescue_disk)


def test_disk_layout_tells_the_same_order_as_the_command_line() -> None:
    classic = layout(spec(rescue=RescueSpec(image=RESCUE_IMG), volumes=(VOL,)))
    assert classic == [Disk("rescue", "rescue-img", boot=True), Disk("root", "own-img")]
    stable = layout(spec(image=None, volumes=(BOOT_VOL, VOL),
                         rescue=RescueSpec(image=RESCUE_IMG, stable=True, device="cdrom", bus="ide")))
    assert [(d.role, d.source, d.device, d.bus, d.boot) for d in stable] == [
        ("volume", BOOT_VOL.volume_id, "disk", "virtio", False), ("volume", VOL.volume_id, "disk", "virtio", False),
        ("rescue", "rescue-img", "cdrom", "ide", True)]
    assert layout(spec()) == [Disk("root", "own-img", boot=True)]


def test_agent_spec_carries_the_rescue() -> None:
    doc = {"id": VM, "name": "vm", "project_id": "p", "flavor": {"vcpus": 1, "ram_mb": 128, "disk_gb": 1},
           "image": {"id": "own-img", "url": ""},
           "rescue": {"image": {"id": "r", "url": "http://i/v2/images/r/file"}, "stable": True, "device": "cdrom",
                      "bus": "scsi"}}
    assert to_spec(doc).rescue == RescueSpec(image=ImageRef(id="r", url="http://i/v2/images/r/file"), stable=True,
                                             device="cdrom", bus="scsi")
    assert to_spec({**doc, "rescue": None}).rescue is None


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-utils not installed")
def test_qemu_driver_makes_the_rescue_overlay_and_throws_it_away(tmp_path: Path) -> None:
    src = tmp_path / "src.raw"
    src.write_bytes(b"\1" * 65536)

    @contextlib.contextmanager
    def fetch(url: str):  # type: ignore[no-untyped-def]
        yield iter([src.read_bytes()]), None

    d = QemuDriver(tmp_path / "compute", fetch, inventory={"vcpus": 1, "memory_mb": 512, "local_gb": 1})
    p = d.paths(VM)
    p.dir.mkdir(parents=True)
    rescued = spec(rescue=RescueSpec(image=RESCUE_IMG))
    path = d._rescue_disk(rescued, p)
    assert path == p.rescue_disk and path.is_file()
    info = disks.image_info(path)
    assert info["format"] == "qcow2" and info["backing-filename"].endswith("rescue-img")
    assert d._machine(rescued)["rescue"] == ["rescue-img", False, "disk", "virtio"]
    assert "rescue" not in d._machine(spec())  # unrescue: a different machine, so the guest restarts
    assert d._rescue_disk(spec(), p) is None and not p.rescue_disk.exists()


# -- the fake driver --------------------------------------------------------------------------


def test_fake_driver_restarts_on_the_rescue_disk_and_back(tmp_path: Path) -> None:
    d = FakeDriver(tmp_path, inventory={"vcpus": 1, "memory_mb": 512, "local_gb": 1})
    assert d.ensure_running(spec(volumes=(VOL,))) == PowerState.RUNNING
    assert [x.role for x in d.disks(VM)] == ["root", "volume"] and d.disks(VM)[0].boot
    rescued = spec(volumes=(VOL,), rescue=RescueSpec(image=RESCUE_IMG))
    assert d.ensure_running(rescued) == PowerState.RUNNING
    assert d.disks(VM) == [Disk("rescue", "rescue-img", boot=True), Disk("root", "own-img")]
    console = d.console_output(VM)
    assert "fake: powered off" in console and "fake: disk 0: rescue disk on virtio rescue-img (boot)" in console
    assert console.count("fake: power on") == 2
    d.ensure_running(rescued)  # idempotent: no third boot
    assert d.console_output(VM).count("fake: power on") == 2
    d.ensure_running(spec(volumes=(VOL,)))  # unrescue
    assert [x.role for x in d.disks(VM)] == ["root", "volume"] and d.disks(VM)[0].boot
    assert d.console_output(VM).count("fake: power on") == 3
    d.ensure_deleted(VM)
    assert d.disks(VM) == []


# -- the API's rules ----------------------------------------------------------------------------


def _server(image_id: str | None = "own") -> SimpleNamespace:
    return SimpleNamespace(id=VM, image_id=image_id)


def test_plan_classic_and_stable() -> None:
    own = {"id": "own"}
    assert rescue.plan(_server(), own, None, False, False) == {"image_id": "own", "stable": False,  # type: ignore[arg-type]
                                                               "device": "disk", "bus": "virtio"}
    img = {"id": "r", "hw_rescue_device": "cdrom"}
    assert rescue.plan(_server(), img, "r", False, False) == {"image_id": "r", "stable": True,  # type: ignore[arg-type]
                                                              "device": "cdrom", "bus": "ide"}
    img = {"id": "r", "hw_rescue_bus": "scsi"}
    assert rescue.plan(_server(), img, "r", False, False)["device"] == "disk"  # type: ignore[arg-type]


@pytest.mark.parametrize(("image", "ref", "bfv", "v287", "message"), [
    (None, "r", False, True, "Requested rescue image 'r' is not supported"),
    ({"id": "r", "img_block_device_mapping": "[]"}, "r", False, True, "Requested rescue image 'r' is not supported"),
    ({"id": "r", "hw_rescue_device": "disk", "hw_rescue_bus": "virtio"}, "r", True, False,
     f"Instance {VM} cannot be rescued: Cannot rescue a volume-backed instance"),
    ({"id": "r", "hw_rescue_device": "disk"}, "r", True, True, "Cannot rescue a volume-backed instance"),
    ({"id": "r", "hw_rescue_device": "lun"}, "r", False, True, "Requested rescue device 'lun' is not supported"),
    ({"id": "r", "hw_rescue_bus": "xen"}, "r", False, True,
     "Requested rescue bus 'xen' is not supported by the qemu virt driver"),
    ({"id": "r", "hw_rescue_device": "cdrom", "hw_rescue_bus": "virtio"}, "r", False, True,
     "Requested rescue device 'cdrom' is not supported on bus 'virtio'"),
])
def test_plan_refusals(image, ref, bfv, v287, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadRequest, match=message):
        rescue.plan(_server(None if bfv else "own"), image, ref, bfv, v287)  # type: ignore[arg-type]


def test_volume_backed_server_rescued_with_stable_rescue_from_287() -> None:
    img = {"id": "r", "hw_rescue_device": "disk", "hw_rescue_bus": "virtio"}
    assert rescue.plan(_server(None), img, "r", True, True)["stable"] is True  # type: ignore[arg-type]


def test_current_layout_follows_the_operation() -> None:
    doc = {"image_id": "r", "stable": False, "device": "disk", "bus": "virtio"}
    row = SimpleNamespace(pending={"op": "rescue", "rescue": doc}, vm_state="active", system_metadata={})
    assert rescue.current(row) == doc  # type: ignore[arg-type]
    row = SimpleNamespace(pending=None, vm_state="rescued", system_metadata={"rescue": doc})
    assert rescue.current(row) == doc  # type: ignore[arg-type]
    row = SimpleNamespace(pending={"op": "unrescue"}, vm_state="rescued", system_metadata={"rescue": doc})
    assert rescue.current(row) is None  # type: ignore[arg-type]
    assert rescue.spec_doc(doc, "http://img") == {"image": {"id": "r", "url": "http://img/v2/images/r/file"},
                                                  "stable": False, "device": "disk", "bus": "virtio"}
