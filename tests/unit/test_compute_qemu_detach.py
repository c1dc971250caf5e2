"""A guest that never releases a hot-unplugged volume (no OS, no ACPI hotplug): the QEMU driver's
detach is retried, then fails for good, as Nova's libvirt driver gives up after its attempts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kumo.agents.compute.errors import PermanentError, TemporaryError
from kumo.agents.compute.qemu import driver as qemu_driver

VOL = "0b7d4c52-9d1e-4f2a-8c1e-1234567890ab"
VM = "3f2a6c1e-0b7d-4c52-9d1e-1234567890ab"


class DeafGuest:
    """QMP of a VM whose guest ignores device_del (or, with ``releases``, acknowledges it)."""

    def __init__(self, releases: bool = False) -> None:
        self.releases, self.calls = releases, []

    def __enter__(self) -> DeafGuest:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def execute(self, name: str, args: dict[str, Any] | None = None) -> Any:
        self.calls.append(name)
        if name == "qom-list":
            return [{"name": f"vol-{VOL}", "type": "child<virtio-blk-pci>"}]
        if name == "query-named-block-nodes":
            return []
        return {}

    def wait_event(self, name: str, match: Any, timeout: float = 10.0) -> dict[str, Any] | None:
        return {"event": name, "data": {"device": f"vol-{VOL}"}} if self.releases else None


@pytest.fixture
def qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    d = qemu_driver.QemuDriver(tmp_path, inventory={"vcpus": 1, "memory_mb": 512, "local_gb": 1})
    monkeypatch.setattr(d, "_pid", lambda p: 4242)
    return d


def test_a_guest_that_never_releases_the_volume_fails_the_detach(qemu, monkeypatch: pytest.MonkeyPatch) -> None:
    guest = DeafGuest()
    monkeypatch.setattr(qemu_driver.qmp, "QmpClient", lambda *a, **k: guest)
    clock = [1000.0]
    monkeypatch.setattr(qemu_driver.time, "monotonic", lambda: clock[0])
    with pytest.raises(TemporaryError):  # first wait (60 s) over: tried again later
        qemu.detach_volume(VM, VOL)
    clock[0] += 60.0
    with pytest.raises(TemporaryError):
        qemu.detach_volume(VM, VOL)
    clock[0] += qemu_driver.DETACH_GIVE_UP
    with pytest.raises(PermanentError, match="Device detach failed"):
        qemu.detach_volume(VM, VOL)
    assert guest.calls.count("device_del") == 3 and "blockdev-del" not in guest.calls
    # a later detach starts a fresh count, and a guest that acknowledges completes it
    monkeypatch.setattr(qemu_driver.qmp, "QmpClient", lambda *a, **k: DeafGuest(releases=True))
    qemu.detach_volume(VM, VOL)
    assert qemu._detaching == {}
