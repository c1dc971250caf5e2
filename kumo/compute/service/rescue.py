"""Rescue (``os-rescue``): which image the rescued guest boots and where its disk goes.

Two layouts, as with Nova's libvirt driver:

* classic: the guest restarts booting the rescue image as its first disk, its own root disk
  attached as the second; attached volumes are left out;
* stable device rescue: when the rescue image carries ``hw_rescue_device`` or ``hw_rescue_bus``,
  every disk keeps its place and the rescue image is added as one more device of that kind,
  the one the guest boots. Volume-backed servers are rescued only this way, from 2.87, and only
  with an image that names both properties.

The rescue image is ``rescue_image_ref`` when given, else the server's own image. What is
decided here travels to the agent with the ``rescue`` operation and stays in the server's
``system_metadata["rescue"]`` while it is rescued (``kumo.compute.service.agents`` puts it
into the VM spec).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kumo.compute.errors import BadRequest
from kumo.compute.models import Server
from kumo.compute.service.core import ComputeService, now
from kumo.compute.service.states import RESCUED

DEVICES = ("disk", "cdrom", "floppy")
# the buses kumo's QEMU driver can put a rescue device on, and the devices each one takes
BUSES: dict[str, tuple[str, ...]] = {
    "virtio": ("disk",),
    "scsi": ("disk", "cdrom"),
    "usb": ("disk",),
    "ide": ("disk", "cdrom"),
    "sata": ("disk", "cdrom"),
    "fdc": ("floppy",),
}
DEFAULT_BUS = {"disk": "virtio", "cdrom": "ide", "floppy": "fdc"}
KEY = "rescue"


def not_rescuable(server_id: str, reason: str) -> BadRequest:
    return BadRequest(f"Instance {server_id} cannot be rescued: {reason}")


def unsupported_image(image_ref: str) -> BadRequest:
    return BadRequest(f"Requested rescue image '{image_ref}' is not supported")


def plan(server: Server, image: Mapping[str, Any] | None, image_ref: str | None, volume_backed: bool,
         stable_allowed: bool) -> dict[str, Any]:
    """The rescue of ``server`` with ``image`` (the rescue image's record, None when not found).

    ``image_ref`` is what the request named (None: the server's own image); ``stable_allowed``
    is microversion 2.87, which lets a volume-backed server be rescued with stable device rescue.
    Raises 400 with Nova's messages when the server cannot be rescued that way.
    """
    if image_ref and image is None:
        raise unsupported_image(image_ref)
    props = dict(image or {})
    if image_ref and props.get("img_block_device_mapping"):  # a volume snapshot's image: no disk to boot
        raise unsupported_image(image_ref)
    device, bus = props.get("hw_rescue_device"), props.get("hw_rescue_bus")
    if volume_backed and not (stable_allowed and device is not None and bus is not None and image_ref):
        raise not_rescuable(server.id, "Cannot rescue a volume-backed instance")
    image_id = (image or {}).get("id") or image_ref or server.image_id
    if not image_id:
        raise not_rescuable(server.id, "no image to boot the rescue disk from")
    if device is None and bus is None:
        return {"image_id": image_id, "stable": False, "device": "disk", "bus": "virtio"}
    device = str(device) if device is not None else "disk"
    if device not in DEVICES:
        raise not_rescuable(server.id, f"Requested rescue device '{device}' is not supported")
    bus = str(bus) if bus is not None else DEFAULT_BUS[device]
    if bus not in BUSES:
        raise not_rescuable(server.id, f"Requested rescue bus '{bus}' is not supported by the qemu virt driver")
    if device not in BUSES[bus]:
        raise not_rescuable(server.id, f"Requested rescue device '{device}' is not supported on bus '{bus}'")
    return {"image_id": image_id, "stable": True, "device": device, "bus": bus}


def remember(svc: ComputeService, server_id: str, doc: dict[str, Any] | None) -> None:
    """Keep (or, with None, forget) the rescue layout in the server's system metadata."""
    with svc.db.session() as s:
        row = s.get(Server, server_id)
        if row is None:
            return
        meta = {k: v for k, v in (row.system_metadata or {}).items() if k != KEY}
        if doc is not None:
            meta[KEY] = doc
        row.system_metadata = meta
        row.updated_at = now()


def current(server: Server) -> dict[str, Any] | None:
    """The rescue layout the server's VM should have now (None: its own disks).

    While the ``rescue`` operation runs it is the operation's; once rescued, the remembered
    one; an ``unrescue`` (or any other state) means none.
    """
    pending = server.pending or {}
    if pending.get("op") == "rescue":
        return pending.get(KEY)
    if pending.get("op") == "unrescue" or server.vm_state != RESCUED:
        return None
    return (server.system_metadata or {}).get(KEY)


def spec_doc(doc: Mapping[str, Any] | None, image_url: str | None) -> dict[str, Any] | None:
    """The ``rescue`` entry of the agent's VM spec: the image to download and where it goes."""
    if not doc:
        return None
    url = f"{image_url}/v2/images/{doc['image_id']}/file" if image_url else ""
    return {"image": {"id": doc["image_id"], "url": url}, "stable": bool(doc.get("stable")),
            "device": doc.get("device", "disk"), "bus": doc.get("bus", "virtio")}
