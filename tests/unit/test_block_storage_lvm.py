"""The LVM back end's logic over a simulated LVM (the real thing: tests/e2e/test_block_storage_lvm.py)."""

from __future__ import annotations

import pytest

from kumo.agents.block_storage import lvm as lvm_backend
from kumo.agents.block_storage.backend import GiB, PermanentError, TemporaryError
from kumo.privileged import lvm as priv
from kumo.privileged.cmd import CommandError, PrivilegedError


class FakeLvm:
    """Just enough LVM state: LV name -> size, pool, origin, activation skip."""

    def __init__(self, vg: str, free: int = 100 * GiB) -> None:
        self.vg, self.free = vg, free
        self.lvs: dict[str, dict] = {}
        self.calls: list[tuple] = []
        self.busy: set[str] = set()

    def install(self, monkeypatch) -> None:
        for name in ("vg_exists", "list_lvs", "create_thin_pool", "create_thin", "snapshot", "activate",
                     "extend", "remove", "image_virtual_size", "image_into"):  # fmt: skip
            monkeypatch.setattr(priv, name, getattr(self, name))

    def vg_exists(self, vg):
        return vg == self.vg

    def list_lvs(self, vg):
        return [
            {"name": n, "size": str(r["size"]), "pool_lv": r.get("pool", ""), "origin": r.get("origin", ""),
             "data_percent": "10.00" if r.get("type") == "pool" else "", "attr": "", "path": f"/dev/{vg}/{n}"}
            for n, r in self.lvs.items()
        ]  # fmt: skip

    def create_thin_pool(self, vg, pool, percent):
        self.calls.append(("pool", pool))
        self.lvs[pool] = {"size": self.free * percent // 100, "type": "pool"}

    def create_thin(self, vg, pool, lv, size):
        priv.check_lv(lv)
        self.calls.append(("create", lv, size))
        self.lvs[lv] = {"size": size, "pool": pool}

    def snapshot(self, vg, origin, lv, active=False):
        priv.check_lv(lv)
        self.calls.append(("snapshot", origin, lv, active))
        self.lvs[lv] = {**self.lvs[origin], "origin": origin}

    def activate(self, vg, lv):
        self.calls.append(("activate", lv))

    def extend(self, vg, lv, size):
        self.calls.append(("extend", lv, size))
        self.lvs[lv]["size"] = size

    def remove(self, vg, lv):
        if lv in self.busy:
            raise CommandError(["lvremove"], 5, f"Logical volume {vg}/{lv} in use.")
        self.calls.append(("remove", lv))
        self.lvs.pop(lv, None)

    def image_virtual_size(self, image, fmt):
        return 3 * GiB if "big" in image else 100 * 1024 * 1024

    def image_into(self, image, fmt, vg, lv, target_is_zero=True):
        self.calls.append(("image", lv, target_is_zero))


@pytest.fixture
def fake(monkeypatch):
    f = FakeLvm("kumo-test-vg")
    f.install(monkeypatch)
    return f


def test_volumes_are_thin_lvs_in_the_pool(fake):
    be = lvm_backend.LvmBackend("kumo-test-vg", pool="pool0")
    be.create_volume("v1", 2)
    be.create_volume("v1", 2)  # idempotent
    assert fake.calls[:2] == [("pool", "pool0"), ("create", "volume-v1", 2 * GiB)]
    assert len([c for c in fake.calls if c[0] == "create"]) == 1
    assert be.list_volumes() == ["v1"] and be.volume_size_gb("v1") == 2
    cap = be.capacity()
    assert cap.provisioned_gb == 2 and cap.total_gb == 90 and cap.free_gb == pytest.approx(81)
    info = be.connection_info("v1", {"host": "x"})
    assert info == {
        "driver_volume_type": "local",
        "data": {
            "device_path": "/dev/kumo-test-vg/volume-v1",
            "format": "raw",
            "volume_id": "v1",
            "access_mode": "rw",
        },
    }
    be.extend_volume("v1", 3)
    be.extend_volume("v1", 1)  # never shrinks
    assert be.volume_size_gb("v1") == 3


def test_snapshots_clones_and_images(fake):
    be = lvm_backend.LvmBackend("kumo-test-vg")
    be.create_volume("v1", 1)
    be.create_snapshot("s1", "v1")
    assert ("snapshot", "volume-v1", "snapshot-s1", False) in fake.calls
    be.create_from_snapshot("v2", 2, "s1")
    assert ("snapshot", "snapshot-s1", "volume-v2", True) in fake.calls
    assert ("extend", "volume-v2", 2 * GiB) in fake.calls
    be.clone_volume("v3", 1, "v1")
    assert be.list_volumes() == ["v1", "v2", "v3"] and be.list_snapshots() == ["s1"]
    with pytest.raises(PermanentError):
        be.create_from_snapshot("v4", 1, "nope")
    with pytest.raises(PermanentError):
        be.create_snapshot("s2", "nope")
    be.create_from_image("v5", 1, "/tmp/img", "qcow2")
    assert ("image", "volume-v5", True) in fake.calls
    with pytest.raises(PermanentError, match="doesn't fit"):
        be.create_from_image("v6", 1, "/tmp/big", "qcow2")
    assert not be.volume_exists("v6")


def test_reader_uses_a_temporary_snapshot_and_removes_it(fake):
    be = lvm_backend.LvmBackend("kumo-test-vg")
    be.create_volume("v1", 1)
    with be.raw_reader("v1") as path:
        temp = path.name
        assert temp.startswith("kumo-tmp-") and temp in fake.lvs
    assert temp not in fake.lvs
    with be.raw_writer("v1") as path:
        assert str(path) == "/dev/kumo-test-vg/volume-v1"


def test_busy_volume_is_a_temporary_error_and_names_are_guarded(fake):
    be = lvm_backend.LvmBackend("kumo-test-vg")
    be.create_volume("v1", 1)
    fake.busy.add("volume-v1")
    with pytest.raises(TemporaryError):
        be.delete_volume("v1")
    fake.busy.clear()
    be.delete_volume("v1")
    be.delete_volume("v1")
    assert be.list_volumes() == []
    with pytest.raises(PrivilegedError):
        priv.check_lv("root")
    with pytest.raises(PrivilegedError):
        priv.check_vg("bad name")
    with pytest.raises(PermanentError, match="does not exist"):
        lvm_backend.LvmBackend("other-vg").create_volume("v1", 1)
