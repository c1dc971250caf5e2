"""Multiattach volumes on the hypervisor side: the QEMU driver opens a shared disk with
``share-rw=on`` and without the image lock (raw data only), and the storage host's NBD daemon
serves several exports of one shared volume. Checked on the arguments and against real QEMU."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from kumo.agents.block_storage import nbd
from kumo.agents.compute.driver import VolumeSpec
from kumo.agents.compute.qemu import cmdline
from tests.unit.test_block_storage_nbd import NAME, _free_port, _qemu_io, needs_qemu

VID = "0b7d4c52-9d1e-4f00-8a11-223344556677"


def vol(kind: str = "file", fmt: str = "raw", shared: bool = True, **data: str) -> VolumeSpec:
    base = {"file": {"path": "/v/volume-1"}, "local": {"device_path": "/dev/kumo/volume-1"},
            "nbd": {"host": "10.0.0.2", "port": "10809", "export": "e" * 32}}[kind]
    info = {"driver_volume_type": kind, "data": {**base, "format": fmt, **data}, "multiattach": shared}
    return VolumeSpec(volume_id=VID, attachment_id="a1", connection_info=info)


@pytest.mark.parametrize("kind", ["file", "local", "nbd"])
def test_multiattach_disk_is_a_shared_device(kind: str) -> None:
    device = cmdline.volume_device(vol(kind))
    assert device["share-rw"] is True
    assert "share-rw=on" in cmdline._device_arg(device).split(",")
    _objects, blockdev = cmdline.volume_blockdev(vol(kind))
    assert "locking" not in blockdev["file"]  # QEMU's image lock stays (it becomes a shared one)


def test_other_disks_stay_exclusive() -> None:
    assert "share-rw" not in cmdline.volume_device(vol(shared=False))
    info = {"driver_volume_type": "file", "data": {"path": "/v/volume-1"}}  # no flag at all
    assert "share-rw" not in cmdline.volume_device(VolumeSpec(volume_id=VID, attachment_id="a", connection_info=info))


def test_boot_command_line_shares_a_multiattach_boot_volume(tmp_path: Path) -> None:
    from tests.unit.test_compute_qemu_cmdline import PATHS, opt, spec

    boot = VolumeSpec(volume_id=VID, attachment_id="a1", boot_index=0,
                      connection_info={"driver_volume_type": "file", "multiattach": True,
                                       "data": {"path": "/v/volume-1", "format": "raw"}})
    argv = cmdline.build_argv(spec(), PATHS, volumes=(boot,))
    (blockdev,) = [json.loads(b) for b in opt(argv, "-blockdev")]
    assert blockdev["file"] == {"driver": "file", "filename": "/v/volume-1", "read-only": False}
    device = next(d for d in opt(argv, "-device") if d.startswith("virtio-blk-pci,id=vol-"))
    assert "share-rw=on" in device.split(",") and "bootindex=0" in device.split(",")


# --- against real QEMU ---------------------------------------------------------------------------

needs_qemu_system = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                       reason="qemu-system-x86_64 is not installed")


def _start_guest(tmp_path: Path, name: str, volume: VolumeSpec) -> subprocess.CompletedProcess[str]:
    """A paused guest with the volume as its disk; -daemonize returns once QEMU opened it (or failed)."""
    _objects, blockdev = cmdline.volume_blockdev(volume)
    argv = ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-nodefaults", "-display", "none", "-S",
            "-m", "64", "-blockdev", json.dumps(blockdev),
            "-device", cmdline._device_arg(cmdline.volume_device(volume)),
            "-pidfile", str(tmp_path / f"{name}.pid"), "-daemonize"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.fixture
def guests(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield tmp_path
    for pidfile in tmp_path.glob("*.pid"):  # only the guests this test started
        with contextlib.suppress(ValueError, ProcessLookupError, OSError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)


def _disk(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / f"volume.{fmt}"
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), "16M"], check=True, timeout=30)
    return path


@needs_qemu_system
@needs_qemu
def test_two_guests_open_one_shared_raw_volume(guests: Path) -> None:
    shared = vol(path=str(_disk(guests, "raw")))
    first = _start_guest(guests, "a", shared)
    assert first.returncode == 0, first.stderr
    second = _start_guest(guests, "b", shared)
    assert second.returncode == 0, second.stderr


@needs_qemu_system
@needs_qemu
def test_a_second_guest_cannot_open_an_unshared_or_qcow2_volume(guests: Path) -> None:
    exclusive = vol(path=str(_disk(guests, "raw")), shared=False)
    assert _start_guest(guests, "a", exclusive).returncode == 0
    refused = _start_guest(guests, "b", exclusive)
    assert refused.returncode != 0 and "lock" in refused.stderr, refused.stderr
    qcow = vol(fmt="qcow2", path=str(_disk(guests, "qcow2")))
    assert _start_guest(guests, "c", qcow).returncode == 0
    refused = _start_guest(guests, "d", qcow)
    assert refused.returncode != 0 and "lock" in refused.stderr, refused.stderr


# --- the storage host's NBD daemon ---------------------------------------------------------------


@needs_qemu_system
@needs_qemu
def test_nbd_exports_and_a_local_guest_share_one_volume(guests: Path) -> None:
    """Cross-host multiattach: the storage host's daemon serves one export per remote attachment of
    the volume while a guest on the storage host has it open; all see the same data."""
    path = _disk(guests, "raw")
    other = "Second-export-of-the-shared-vol"
    exporter = nbd.NbdExporter(guests / "run", "127.0.0.1", _free_port())
    try:
        wanted = {n: nbd.ExportSpec("v", "file", str(path), "raw") for n in (NAME, other)}
        assert exporter.reconcile(wanted) == {NAME, other}
        local = _start_guest(guests, "local", vol(path=str(path)))
        assert local.returncode == 0, local.stderr
        w = _qemu_io(f"nbd://127.0.0.1:{exporter.port}/{NAME}", "write -P 0x3c 0 64k")
        assert w.returncode == 0, w.stderr
        r = _qemu_io(f"nbd://127.0.0.1:{exporter.port}/{other}", "read -P 0x3c 0 64k")
        assert "read 65536/65536" in r.stdout, r.stdout + r.stderr
        # a guest that does not share the disk is refused while the exports write to it
        refused = _start_guest(guests, "exclusive", vol(path=str(path), shared=False))
        assert refused.returncode != 0 and "lock" in refused.stderr, refused.stderr
    finally:
        exporter.stop()


def _hotplug(tmp_path: Path, name: str, volume: VolumeSpec) -> None:
    """Start an empty paused guest, then hot-plug the volume over QMP as the driver's attach does."""
    from kumo.agents.compute.qemu import qmp

    sock = tmp_path / f"{name}.qmp"
    subprocess.run(["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-nodefaults", "-display", "none",
                    "-S", "-m", "64", "-qmp", f"unix:{sock},server=on,wait=off",
                    "-pidfile", str(tmp_path / f"{name}.pid"), "-daemonize"], check=True, timeout=60)  # fmt: skip
    with qmp.QmpClient(sock, timeout=15) as q:
        _objects, blockdev = cmdline.volume_blockdev(volume)
        q.execute("blockdev-add", blockdev)
        q.execute("device_add", cmdline.volume_device(volume))
        plugged = [d["name"] for d in q.execute("qom-list", {"path": "/machine/peripheral"})]
    assert cmdline.volume_ids(volume.volume_id)[1] in plugged


@needs_qemu_system
@needs_qemu
def test_hot_plug_of_one_shared_volume_into_two_running_guests(guests: Path) -> None:
    from kumo.agents.compute.qemu import qmp

    path = str(_disk(guests, "raw"))
    _hotplug(guests, "a", vol(path=path))
    _hotplug(guests, "b", vol(path=path))
    # the same hot-plug of an unshared disk into a third guest is refused by the image lock
    with pytest.raises(qmp.QmpError, match="lock"):
        _hotplug(guests, "c", vol(path=path, shared=False))
