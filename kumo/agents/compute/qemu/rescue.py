"""The QEMU arguments of a rescue disk (``RescueSpec``): the device the guest boots while rescued.

Classic rescue puts it first as a virtio disk; stable device rescue adds it after every other
disk, as the device kind and on the bus the rescue image asks for (``hw_rescue_device`` /
``hw_rescue_bus``). It always carries ``bootindex=0``; the VM's own boot disk moves to 1.
"""

from __future__ import annotations

from pathlib import Path

from kumo.agents.compute.driver import RescueSpec
from kumo.agents.compute.errors import PermanentError

DRIVE_ID, DEVICE_ID = "rescue", "rescuedisk"
# (bus, device) -> the QEMU controller to add first (or None), and the device model
MODELS: dict[tuple[str, str], tuple[str | None, str]] = {
    ("virtio", "disk"): (None, "virtio-blk-pci"),
    ("scsi", "disk"): ("virtio-scsi-pci", "scsi-hd"),
    ("scsi", "cdrom"): ("virtio-scsi-pci", "scsi-cd"),
    ("usb", "disk"): ("qemu-xhci", "usb-storage"),
    ("ide", "disk"): (None, "ide-hd"),  # the pc machine's own PIIX IDE controller
    ("ide", "cdrom"): (None, "ide-cd"),
    ("sata", "disk"): ("ich9-ahci", "ide-hd"),
    ("sata", "cdrom"): ("ich9-ahci", "ide-cd"),
}
CONTROLLER_ID = "rescuectl"


def argv(rescue: RescueSpec, disk: Path) -> list[str]:
    """``-drive``/``-device`` arguments attaching ``disk`` (a qcow2 overlay) as the rescue device."""
    kind = (rescue.bus, rescue.device) if rescue.stable else ("virtio", "disk")
    read_only = kind[1] in ("cdrom", "floppy")
    drive = f"file={disk},if=none,id={DRIVE_ID},format=qcow2" + (",readonly=on" if read_only else "")
    if kind == ("fdc", "floppy"):  # the pc machine's floppy controller; its drive A boots first
        return ["-drive", drive, "-device", f"floppy,unit=0,drive={DRIVE_ID},id={DEVICE_ID}",
                "-global", "isa-fdc.bootindexA=0"]
    if kind not in MODELS:
        raise PermanentError(f"Requested rescue device '{rescue.device}' is not supported on bus '{rescue.bus}'")
    controller, model = MODELS[kind]
    out = ["-drive", drive]
    bus = ""
    if controller is not None:
        out += ["-device", f"{controller},id={CONTROLLER_ID}"]
        bus = f",bus={CONTROLLER_ID}.0"
    elif rescue.bus == "ide":
        bus = ",bus=ide.0,unit=0"
    return out + ["-device", f"{model}{bus},drive={DRIVE_ID},id={DEVICE_ID},bootindex=0"]
