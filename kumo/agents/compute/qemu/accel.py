"""Choosing the accelerator: TCG unless a real KVM boot succeeds (``/dev/kvm`` alone proves nothing)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import time
from pathlib import Path

log = logging.getLogger("kumo.agents.compute.qemu")


def probe_kvm(binary: str = "qemu-system-x86_64", timeout: float = 20.0) -> tuple[bool, str]:
    """Boot the tiny image under KVM; True only if its first marker reaches the serial console."""
    if not os.path.exists("/dev/kvm") or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "no usable /dev/kvm"
    from kumo.agents.compute import tiny_image

    try:
        image = tiny_image.build()
    except tiny_image.BuildError as exc:
        return False, f"no probe image: {exc}"
    with tempfile.TemporaryDirectory(prefix="kumo-kvm-probe-") as tmp:
        console = Path(tmp) / "console.log"
        overlay = Path(tmp) / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image), str(overlay)],
                       check=True, capture_output=True)
        argv = [binary, "-accel", "kvm", "-cpu", "host", "-machine", "pc", "-m", "128", "-nodefaults",
                "-no-user-config", "-display", "none", "-serial", f"file:{console}",
                "-drive", f"file={overlay},if=virtio,format=qcow2"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip()
                    return False, f"qemu exited ({proc.returncode}): {err[-200:]}"
                if console.is_file() and tiny_image.FIRST_MARKER in console.read_text(errors="replace"):
                    return True, "a KVM probe boot reached the guest's init"
                time.sleep(0.2)
            return False, f"no guest output under KVM within {timeout:.0f}s"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def resolve(setting: str, state_dir: Path, binary: str = "qemu-system-x86_64") -> str:
    """``tcg`` / ``kvm`` as configured; ``auto`` probes once and caches the verdict in ``state_dir``."""
    if setting in ("tcg", "kvm"):
        return setting
    cache = state_dir / "accel.json"
    try:
        doc = json.loads(cache.read_text())
        if doc.get("binary") == binary and doc.get("kernel") == os.uname().release:
            return str(doc["accel"])
    except (OSError, ValueError, KeyError):
        pass
    ok, why = probe_kvm(binary)
    accel = "kvm" if ok else "tcg"
    log.warning("compute: accelerator %s (%s)", accel, why)
    state_dir.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"accel": accel, "why": why, "binary": binary, "kernel": os.uname().release}))
    return accel
