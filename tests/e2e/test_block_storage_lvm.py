"""The LVM back end on a real (loop-device) volume group made by the test and removed after it.

Needs root, the lvm2 / thin-provisioning-tools / qemu-utils packages and a kernel with
device-mapper (thin targets); skips with the reason otherwise. Only a ``kumo-test-*`` volume
group on a loop device over a sparse file in a temp dir is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import uuid

import pytest

from kumo.agents.block_storage import backup
from kumo.agents.block_storage.backend import GiB, PermanentError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop devices, LVM)")


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120).stdout


def _why_not() -> str | None:
    for tool in ("losetup", "pvcreate", "vgcreate", "lvcreate", "thin_check", "qemu-img"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt lvm2 thin-provisioning-tools qemu-utils)"
    try:
        _run("dmsetup", "version")
    except (subprocess.CalledProcessError, OSError):
        return "the kernel has no device-mapper"
    targets = _run("dmsetup", "targets")
    if "thin-pool" not in targets:
        with contextlib.suppress(Exception):
            _run("modprobe", "dm-thin-pool")
        if "thin-pool" not in _run("dmsetup", "targets"):
            return "the kernel has no dm thin-pool target"
    return None


@pytest.fixture
def vg(tmp_path):
    why = _why_not()
    if why:
        pytest.skip(why)
    name = f"kumo-test-{uuid.uuid4().hex[:8]}"
    backing = tmp_path / "pv.img"
    with open(backing, "wb") as fh:
        fh.truncate(4 * GiB)
    loop = _run("losetup", "--find", "--show", str(backing)).strip()
    try:
        _run("pvcreate", "-qq", "--yes", loop)
        _run("vgcreate", "-qq", name, loop)
        yield name
    finally:
        with contextlib.suppress(Exception):
            _run("vgremove", "-qq", "-f", name)
        with contextlib.suppress(Exception):
            _run("pvremove", "-qq", "-f", loop)
        _run("losetup", "-d", loop)


def _sha(path, size=None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        left = size
        while left is None or left > 0:
            block = fh.read(1 << 20 if left is None else min(1 << 20, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
    return h.hexdigest()


def test_lvm_volumes_snapshots_clones_and_backup(vg, tmp_path):
    from kumo.agents.block_storage.lvm import LvmBackend

    be = LvmBackend(vg, pool="kumo-pool")
    cap = be.capacity()  # creates the thin pool
    assert cap.total_gb > 3 and cap.provisioned_gb == 0
    v1, v2, v3, snap = (str(uuid.uuid4()) for _ in range(4))
    be.create_volume(v1, 1)
    be.create_volume(v1, 1)  # idempotent
    assert be.list_volumes() == [v1] and be.volume_size_gb(v1) == 1
    info = be.connection_info(v1, {"host": "h"})
    assert info["driver_volume_type"] == "local"
    dev = info["data"]["device_path"]
    assert os.path.exists(dev)
    assert _sha(dev) == hashlib.sha256(b"\0" * GiB).hexdigest()  # a new volume reads as zeros
    with be.raw_writer(v1) as path, open(path, "r+b") as fh:
        fh.seek(5 << 20)
        fh.write(b"kumo-marker" * 100)
    before = _sha(dev)
    be.create_snapshot(snap, v1)
    assert be.list_snapshots() == [snap]
    with be.raw_writer(v1) as path, open(path, "r+b") as fh:
        fh.write(b"changed after the snapshot")
    be.create_from_snapshot(v2, 2, snap)
    assert be.volume_size_gb(v2) == 2
    assert _sha(be.connection_info(v2)["data"]["device_path"], GiB) == before
    be.clone_volume(v3, 1, v1)
    assert _sha(be.connection_info(v3)["data"]["device_path"]) == _sha(dev)
    be.extend_volume(v3, 2)
    assert be.volume_size_gb(v3) == 2
    # backup through a temporary read snapshot, restore into another volume
    swift = backup.MemorySwift()
    with be.raw_reader(v1) as path:
        res = backup.create_backup(path, swift, "b1", v1)
    assert res.size == GiB and res.stored <= 2
    assert not [n for n in be._lvs() if n.startswith("kumo-tmp-")]  # the read snapshot is gone
    v4 = str(uuid.uuid4())
    be.create_volume(v4, 1)
    with be.raw_writer(v4) as path:
        backup.restore_backup(swift, "b1", path)
    assert _sha(be.connection_info(v4)["data"]["device_path"]) == _sha(dev)
    # an image into a volume
    img = tmp_path / "img.qcow2"
    _run("qemu-img", "create", "-q", "-f", "qcow2", str(img), "64M")
    v5 = str(uuid.uuid4())
    be.create_from_image(v5, 1, img, "qcow2")
    with pytest.raises(PermanentError, match="doesn't fit"):
        big = tmp_path / "big.qcow2"
        _run("qemu-img", "create", "-q", "-f", "qcow2", str(big), "3G")
        be.create_from_image(str(uuid.uuid4()), 1, big, "qcow2")
    for vid in (v1, v2, v3, v4, v5):
        be.delete_volume(vid)
        be.delete_volume(vid)  # absent: a no-op
    be.delete_snapshot(snap)
    assert be.list_volumes() == [] and be.list_snapshots() == []
