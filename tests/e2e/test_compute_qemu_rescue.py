"""Rescue of a real guest with the QEMU driver (no cloud, no network: the driver alone, TCG).

The kumo-tiny guest boots, and a marker is written through its serial shell into its root disk
(far past the image's data). Rescue restarts it on a fresh rescue disk: the boot marker shows
again, the rescue disk is ``vda`` (no marker) and the original disk is ``vdb`` (the marker).
Unrescue restarts it on its own disk (``vda`` has the marker again) and the rescue disk is gone.
A second test starts QEMU (vCPUs stopped) with each stable-rescue device and bus the API accepts.
Skipped without qemu-system-x86_64 / qemu-img or when the tiny image cannot be built; the VM is
deleted (its QEMU ended by pid) even on failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kumo.agents.compute import tiny_image
from kumo.agents.compute.driver import FlavorSpec, ImageRef, PowerState, RescueSpec, VmSpec
from kumo.agents.compute.qemu.driver import QemuDriver
from kumo.agents.compute.qemu.rescue import argv as rescue_argv
from kumo.compute.service.rescue import BUSES

VM = "5d0c2a8e-7e1f-4b6a-9c3d-0123456789ab"
TIMEOUT = 240.0  # TCG boots on a loaded 2-core machine
MARK = "KUMO-ORIG-MARK"  # 14 characters


def _wait(what: str, check, timeout: float = TIMEOUT):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


def _type(sock_path: Path, line: str) -> None:
    """Type one command into the guest's serial shell."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sock_path))
        s.sendall(line.encode() + b"\n")
        time.sleep(0.5)


@pytest.fixture
def driver(tmp_path: Path):  # type: ignore[no-untyped-def]
    if shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None:
        pytest.skip("qemu-system-x86 / qemu-utils are not installed (scripts/test.sh installs them)")
    try:
        image = tiny_image.build()
    except tiny_image.BuildError as exc:
        pytest.skip(f"the tiny image cannot be built here: {exc}")

    @contextlib.contextmanager
    def fetch(url: str):  # type: ignore[no-untyped-def]
        yield iter([image.read_bytes()]), None

    d = QemuDriver(tmp_path / "compute", fetch, inventory={"vcpus": 1, "memory_mb": 1024, "local_gb": 2},
                   vnc=False, stop_timeout=20.0)
    try:
        yield d
    finally:
        d.ensure_deleted(VM)


def test_rescue_boots_the_rescue_disk_with_the_original_disk_second(driver: QemuDriver) -> None:
    tiny = ImageRef(id="kumo-tiny", url="file://kumo-tiny")
    spec = VmSpec(id=VM, name="rescue-e2e", hostname="rescue-e2e", project_id="p",
                  flavor=FlavorSpec("m1.nano", 1, 256, 1), image=tiny)
    p = driver.paths(VM)

    def boots() -> int:
        return driver.console_output(VM).count(tiny_image.BOOT_MARKER)

    def probe(tag: str) -> str:
        """Each virtio disk's bytes at the marker's offset, printed as DISK-<tag>-<dev>-<bytes>-END."""
        _type(p.serial, f"for d in vda vdb; do echo DISK-{tag}-$d-$(dd if=/dev/$d bs=1M skip=600 count=1 "
                        f"2>/dev/null | head -c 14 | tr -d '\\000')-END; done")  # fmt: skip
        def lines() -> str | None:
            found = [ln for ln in driver.console_output(VM).splitlines() if ln.startswith(f"DISK-{tag}-")]
            return "\n".join(found) if len(found) >= 2 else None

        return _wait(f"disk probe {tag}", lines, 60)

    assert driver.ensure_running(spec) == PowerState.RUNNING
    _wait("the first boot", lambda: boots() == 1)
    _type(p.serial, f"echo {MARK} | dd of=/dev/vda bs=1M seek=600 conv=notrunc,fsync 2>/dev/null; "
                    "sync; echo WROTE-$((6*7))")  # fmt: skip
    _wait("the marker written", lambda: "WROTE-42" in driver.console_output(VM), 60)

    rescued = dataclasses.replace(spec, rescue=RescueSpec(image=tiny))
    assert driver.ensure_running(rescued) == PowerState.RUNNING
    _wait("the rescue boot", lambda: boots() == 2)
    assert p.rescue_disk.is_file()
    argv = " ".join(driver.machine_info(VM)["argv"])
    assert argv.index("drive=rescue,id=rescuedisk,bootindex=0") < argv.index("drive=root,id=rootdisk,bootindex=1")
    lines = probe("r")
    assert "DISK-r-vda--END" in lines and f"DISK-r-vdb-{MARK}-END" in lines, lines

    assert driver.ensure_running(spec) == PowerState.RUNNING  # unrescue
    _wait("the boot on its own disk", lambda: boots() == 3)
    assert not p.rescue_disk.exists()
    lines = probe("u")
    assert f"DISK-u-vda-{MARK}-END" in lines and "DISK-u-vdb--END" in lines, lines


@pytest.mark.parametrize(("device", "bus"), [(d, b) for b, devs in BUSES.items() for d in devs])
def test_qemu_accepts_every_rescue_device_kumo_builds(tmp_path: Path, device: str, bus: str) -> None:
    """Each (device, bus) the API lets through makes a command line this QEMU starts (vCPUs stopped)."""
    if shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None:
        pytest.skip("qemu-system-x86 / qemu-utils are not installed (scripts/test.sh installs them)")
    disk = tmp_path / "rescue.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    args = rescue_argv(RescueSpec(image=ImageRef(id="r", url=""), stable=True, device=device, bus=bus), disk)
    proc = subprocess.run(["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-nodefaults", "-no-user-config",
                           "-display", "none", "-S", "-qmp", "stdio", *args],
                          input='{"execute":"qmp_capabilities"}\n{"execute":"query-block"}\n{"execute":"quit"}\n',
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 0 and "rescuedisk" in proc.stdout, proc.stderr  # the drive sits in its device
