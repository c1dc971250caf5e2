"""The QEMU driver without QEMU: files, console, image cache, overlays, failures, accel choice."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kumo.agents.compute.driver import FlavorSpec, ImageRef, PowerState, VmSpec
from kumo.agents.compute.errors import PermanentError, TemporaryError
from kumo.agents.compute.qemu import accel, disks
from kumo.agents.compute.qemu import driver as qdriver
from kumo.agents.compute.qemu.driver import QemuDriver

VM = "3f2a6c1e-0b7d-4c52-9d1e-1234567890ab"
needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-utils not installed")


def make(tmp_path: Path, data: bytes = b"", md5: str | None = None, **kw) -> QemuDriver:  # type: ignore[no-untyped-def]
    @contextlib.contextmanager
    def fetch(url: str):  # type: ignore[no-untyped-def]
        yield iter([data[: len(data) // 2], data[len(data) // 2:]]), md5

    return QemuDriver(tmp_path / "compute", fetch, inventory={"vcpus": 2, "memory_mb": 2048, "local_gb": 10}, **kw)


def spec(**kw) -> VmSpec:  # type: ignore[no-untyped-def]
    base = dict(id=VM, name="vm", hostname="vm", project_id="p", flavor=FlavorSpec("f", 1, 128, 1),
                image=ImageRef(id="img1", url="http://image/v2/images/img1/file"))
    base.update(kw)
    return VmSpec(**base)  # type: ignore[arg-type]


def test_unknown_vm_has_no_state_and_a_stopped_one_is_shutdown(tmp_path: Path) -> None:
    d = make(tmp_path)
    assert d.type == "QEMU" and d.inventory() == {"vcpus": 2, "memory_mb": 2048, "local_gb": 10}
    assert d.observe(VM) == PowerState.NOSTATE and d.list_vms() == []
    assert d.ensure_stopped(VM) == PowerState.NOSTATE
    d.paths(VM).dir.mkdir(parents=True)
    assert d.observe(VM) == PowerState.SHUTDOWN and d.list_vms() == [VM]
    assert d.console_socket(VM, "vnc") is None and d.console_socket(VM, "nope") is None
    d.ensure_deleted(VM)
    assert not d.paths(VM).dir.exists() and d.observe(VM) == PowerState.NOSTATE
    with pytest.raises(PermanentError):
        d.paths("../etc")


def test_sockets_move_to_a_short_directory_when_the_data_dir_is_deep(tmp_path: Path) -> None:
    short = make(tmp_path).paths(VM)
    assert short.sockets == short.dir or len(str(short.dir)) > 80
    deep = make(tmp_path / ("x" * 80)).paths(VM)
    assert deep.sockets != deep.dir and len(str(deep.qmp)) < 100 and deep.sockets.name == VM


def test_console_output_is_cleaned_cut_to_length_and_capped(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    d = make(tmp_path)
    p = d.paths(VM)
    p.dir.mkdir(parents=True)
    p.console_log.write_bytes(b"SYSLINUX\r\nkumo-tiny: booting\r\n\x1b[6nline3\r\nlast\r\n")
    out = d.console_output(VM)
    assert out == "SYSLINUX\nkumo-tiny: booting\n[6nline3\nlast\n"
    assert d.console_output(VM, 2) == "[6nline3\nlast\n" and d.console_output(VM, 0) == ""
    monkeypatch.setattr(qdriver, "CONSOLE_CAP", 64)
    monkeypatch.setattr(qdriver, "CONSOLE_KEEP", 32)
    p.console_log.write_bytes(b"a" * 100 + b"\ntail line\n")
    assert d.console_output(VM).endswith("tail line\n")
    assert p.console_log.stat().st_size == 32
    assert d.console_output("0" * 36) == ""


@needs_qemu_img
def test_image_cache_verifies_and_overlay_is_sized_to_the_flavor(tmp_path: Path) -> None:
    data = b"\0" * (1024 * 1024)
    d = make(tmp_path, data, hashlib.md5(data).hexdigest())
    p = d.paths(VM)
    p.dir.mkdir(parents=True)
    d._ensure_disk(spec(), p)
    info = disks.image_info(p.disk)
    assert info["format"] == "qcow2" and info["virtual-size"] == 1024**3
    assert info["backing-filename"] == str(tmp_path / "compute" / "images" / "img1")
    assert json.loads((tmp_path / "compute" / "images" / "img1.json").read_text())["format"] == "raw"
    d._ensure_disk(spec(flavor=FlavorSpec("g", 1, 128, 2)), p)  # resize: the overlay grows
    assert disks.image_info(p.disk)["virtual-size"] == 2 * 1024**3


@needs_qemu_img
def test_bad_downloads_are_refused(tmp_path: Path) -> None:
    d = make(tmp_path, b"abc" * 1000, "0" * 32)
    with pytest.raises(TemporaryError, match="checksum"):
        d.images.ensure(ImageRef(id="img1", url="u"))
    assert not (tmp_path / "compute" / "images" / "img1").exists()
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "1M"], check=True)
    evil = tmp_path / "evil.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(evil)], check=True)
    d2 = make(tmp_path / "two", evil.read_bytes())
    with pytest.raises(PermanentError, match="backing file"):
        d2.images.ensure(ImageRef(id="img2", url="u"))
    with pytest.raises(PermanentError, match="cannot be downloaded"):
        QemuDriver(tmp_path / "three", None, inventory={"vcpus": 1}).images.ensure(ImageRef(id="i", url=""))


@needs_qemu_img
def test_a_qemu_that_fails_to_start_is_a_permanent_error(tmp_path: Path) -> None:
    d = make(tmp_path, b"\0" * 65536, binary="/bin/false")
    with pytest.raises(PermanentError, match="QEMU failed to start"):
        d.ensure_running(spec())
    assert d.observe(VM) == PowerState.SHUTDOWN  # the disk is there; no process runs
    d.ensure_deleted(VM)
    assert not d.paths(VM).dir.exists()


def test_accel_setting_and_cached_probe(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert accel.resolve("tcg", tmp_path) == "tcg" and accel.resolve("kvm", tmp_path) == "kvm"
    calls: list[str] = []

    def probe(binary: str) -> tuple[bool, str]:
        calls.append(binary)
        return False, "no KVM in this test"

    monkeypatch.setattr(accel, "probe_kvm", probe)
    assert accel.resolve("auto", tmp_path) == "tcg"
    assert accel.resolve("auto", tmp_path) == "tcg"
    assert calls == ["qemu-system-x86_64"]  # probed once, then cached
    doc = json.loads((tmp_path / "accel.json").read_text())
    assert doc["accel"] == "tcg" and doc["kernel"] == os.uname().release
