"""Rescue and unrescue on the shared cloud (fake driver): the openstack CLI and the compute API,
Nova's rules, and the disks the (fake) guest is restarted with, read from its console."""

from __future__ import annotations

import httpx
import pytest

from tests import compute_helpers as helpers
from tests.functional.test_compute_metadata import upload_image
from tests.support import KumoCloud, unique

pytestmark = pytest.mark.cli
_hdr, _until, _settled = helpers.hdr, helpers.until, helpers.settled


@pytest.fixture(scope="module")
def nova(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def image(cloud: KumoCloud) -> dict:
    return upload_image(cloud, unique("rescue-own"))


def _image_with(cloud: KumoCloud, **props: str) -> str:
    img = upload_image(cloud, unique("rescue-img"))
    patch = [{"op": "add", "path": f"/{k}", "value": v} for k, v in props.items()]
    r = httpx.patch(f"{cloud.url}/image/v2/images/{img['id']}", json=patch, timeout=30,
                    headers={"X-Auth-Token": cloud.admin_token,
                             "Content-Type": "application/openstack-images-v2.1-json-patch"})  # fmt: skip
    assert r.status_code == 200, r.text
    return img["id"]


def _boot(nova: httpx.Client, body: dict, version: str = "2.37") -> str:
    r = nova.post("/servers", json={"server": {"name": unique("rsc"), "flavorRef": "1", "networks": "none", **body}},
                  headers=_hdr(version))  # fmt: skip
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    _until(f"{sid} ACTIVE", _settled(nova, sid, "ACTIVE"))
    return sid


def _console(nova: httpx.Client, sid: str) -> str:
    r = nova.post(f"/servers/{sid}/action", json={"os-getConsoleOutput": {}})
    assert r.status_code == 200, r.text
    return r.json()["output"]


def _last_boot(nova: httpx.Client, sid: str, marker: str) -> list[str]:
    """The ``fake: disk N: ...`` lines of the guest's latest boot, once ``marker`` shows among them."""

    def lines() -> list[str] | None:
        text = _console(nova, sid)
        boot = text.rsplit("fake: powered off", 1)[-1]
        found = [ln.split("] ", 1)[-1] for ln in boot.splitlines() if "fake: disk " in ln]
        return found if any(marker in ln for ln in found) else None

    return _until(f"{sid} booted with {marker}", lines, timeout=30)


def _action(nova: httpx.Client, sid: str, body: dict, version: str = "2.37") -> httpx.Response:
    return nova.post(f"/servers/{sid}/action", json=body, headers=_hdr(version))


def test_classic_rescue_boots_the_image_with_the_root_disk_second(cloud: KumoCloud, nova: httpx.Client,
                                                                  image: dict):  # fmt: skip
    sid = _boot(nova, {"imageRef": image["id"]})
    try:
        res = cloud.cli("server", "rescue", "--password", "S3cret-rescue", sid)
        assert res.returncode == 0, res.stderr
        _until("RESCUE", _settled(nova, sid, "RESCUE"))
        assert _last_boot(nova, sid, "(boot)") == [
            f"fake: disk 0: rescue disk on virtio {image['id']} (boot)",  # no rescue_image_ref: its own image
            f"fake: disk 1: root disk on virtio {image['id']}",
        ]
        # a rescued server is not rebooted, rebuilt, stopped or rescued again (409, as Nova)
        for body in ({"reboot": {"type": "HARD"}}, {"os-stop": None}, {"rescue": None},
                     {"rebuild": {"imageRef": image["id"]}}):  # fmt: skip
            r = _action(nova, sid, body)
            assert r.status_code == 409, (body, r.text)
        res = cloud.cli("server", "unrescue", sid)
        assert res.returncode == 0, res.stderr
        _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        assert _last_boot(nova, sid, "root disk") == [f"fake: disk 0: root disk on virtio {image['id']} (boot)"]
        # adminPass: the one asked for, else a generated one (never a fixed value)
        r = _action(nova, sid, {"rescue": {"adminPass": "given-pass"}})
        assert r.status_code == 200 and r.json() == {"adminPass": "given-pass"}, r.text
        _until("RESCUE", _settled(nova, sid, "RESCUE"))
        assert _action(nova, sid, {"unrescue": None}).status_code == 202
        _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        first = _action(nova, sid, {"rescue": None}).json()["adminPass"]
        _until("RESCUE", _settled(nova, sid, "RESCUE"))
        _action(nova, sid, {"unrescue": None})
        _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        second = _action(nova, sid, {"rescue": {}}).json()["adminPass"]
        assert first != second and len(first) >= 8
        _until("RESCUE", _settled(nova, sid, "RESCUE"))
        _action(nova, sid, {"unrescue": None})
        _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
    finally:
        nova.delete(f"/servers/{sid}")


def test_stable_device_rescue_and_refusals(cloud: KumoCloud, nova: httpx.Client, image: dict):
    sid = _boot(nova, {"imageRef": image["id"]})
    try:
        cdrom = _image_with(cloud, hw_rescue_device="cdrom", hw_rescue_bus="scsi")
        res = cloud.cli("server", "rescue", "--image", cdrom, sid)
        assert res.returncode == 0, res.stderr
        _until("RESCUE", _settled(nova, sid, "RESCUE"))
        assert _last_boot(nova, sid, "(boot)") == [
            f"fake: disk 0: root disk on virtio {image['id']}",  # stays first; the rescue device is added last
            f"fake: disk 1: rescue cdrom on scsi {cdrom} (boot)",
        ]
        assert _action(nova, sid, {"unrescue": None}).status_code == 202
        _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        assert _last_boot(nova, sid, "root disk") == [f"fake: disk 0: root disk on virtio {image['id']} (boot)"]

        # only the bus named: the device is a disk
        usb = _image_with(cloud, hw_rescue_bus="usb")
        assert _action(nova, sid, {"rescue": {"rescue_image_ref": usb}}).status_code == 200
        _until("RESCUE", _settled(nova, sid, "RESCUE"))
        assert f"fake: disk 1: rescue disk on usb {usb} (boot)" in _last_boot(nova, sid, "(boot)")
        _action(nova, sid, {"unrescue": None})
        _until("ACTIVE", _settled(nova, sid, "ACTIVE"))

        refusals = [
            ({"rescue_image_ref": _image_with(cloud, hw_rescue_bus="xen")},
             "Requested rescue bus 'xen' is not supported by the qemu virt driver"),
            ({"rescue_image_ref": _image_with(cloud, hw_rescue_device="lun")},
             "Requested rescue device 'lun' is not supported"),
            ({"rescue_image_ref": _image_with(cloud, hw_rescue_device="cdrom", hw_rescue_bus="virtio")},
             "Requested rescue device 'cdrom' is not supported on bus 'virtio'"),
            ({"rescue_image_ref": "8c1f5e0a-0000-4000-8000-000000000000"},
             "Requested rescue image '8c1f5e0a-0000-4000-8000-000000000000' is not supported"),
            ({"rescue_image_ref": "not-a-uuid"}, "rescue_image_ref"),
            ({"rescue_image_ref": image["id"], "other": 1}, "'other' was unexpected"),
        ]
        for body, message in refusals:
            r = _action(nova, sid, {"rescue": body})
            assert r.status_code == 400 and message in r.json()["badRequest"]["message"], (body, r.text)
        assert helpers.server(nova, sid)["status"] == "ACTIVE"  # nothing changed

        # state: a paused server cannot be rescued (409)
        assert _action(nova, sid, {"pause": None}).status_code == 202
        _until("PAUSED", _settled(nova, sid, "PAUSED"))
        r = _action(nova, sid, {"rescue": None})
        assert r.status_code == 409 and "vm_state paused" in r.text, r.text
        _action(nova, sid, {"unpause": None})
        _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
    finally:
        nova.delete(f"/servers/{sid}")


def test_rescue_of_a_stopped_server_runs_it_on_the_rescue_disk(nova: httpx.Client, image: dict):
    sid = _boot(nova, {"imageRef": image["id"]})
    try:
        assert _action(nova, sid, {"os-stop": None}).status_code == 202
        _until("SHUTOFF", _settled(nova, sid, "SHUTOFF"))
        assert _action(nova, sid, {"rescue": None}).status_code == 200
        s = _until("RESCUE", _settled(nova, sid, "RESCUE"))
        assert s["OS-EXT-STS:power_state"] == 1
        assert _last_boot(nova, sid, "(boot)")[0] == f"fake: disk 0: rescue disk on virtio {image['id']} (boot)"
        _action(nova, sid, {"unrescue": None})
        assert _until("ACTIVE", _settled(nova, sid, "ACTIVE"))["OS-EXT-STS:power_state"] == 1
    finally:
        nova.delete(f"/servers/{sid}")


def test_volume_backed_server_needs_287_and_a_stable_rescue_image(cloud: KumoCloud, nova: httpx.Client,
                                                                  image: dict):  # fmt: skip
    bdm = [{"boot_index": 0, "source_type": "image", "uuid": image["id"], "destination_type": "volume",
            "volume_size": 1, "delete_on_termination": True}]  # fmt: skip
    sid = _boot(nova, {"block_device_mapping_v2": bdm})
    try:
        stable = _image_with(cloud, hw_rescue_device="disk", hw_rescue_bus="virtio")
        only_device = _image_with(cloud, hw_rescue_device="disk")
        for body, version in (({"rescue_image_ref": stable}, "2.86"), ({"rescue_image_ref": only_device}, "2.87"),
                              (None, "2.87")):  # fmt: skip
            r = _action(nova, sid, {"rescue": body}, version)
            assert r.status_code == 400, r.text
            assert r.json()["badRequest"]["message"] == (
                f"Instance {sid} cannot be rescued: Cannot rescue a volume-backed instance")
        r = _action(nova, sid, {"rescue": {"rescue_image_ref": stable}}, "2.87")
        assert r.status_code == 200, r.text
        _until("RESCUE", _settled(nova, sid, "RESCUE"))
        lines = _last_boot(nova, sid, "(boot)")
        assert lines[0].startswith("fake: disk 0: volume disk on virtio ") and "(boot)" not in lines[0]
        assert lines[-1] == f"fake: disk 1: rescue disk on virtio {stable} (boot)"
        _action(nova, sid, {"unrescue": None})
        _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        final = _last_boot(nova, sid, "(boot)")
        assert len(final) == 1 and final[0].startswith("fake: disk 0: volume disk on virtio") and "(boot)" in final[0]
    finally:
        nova.delete(f"/servers/{sid}")
