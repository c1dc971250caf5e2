#!/usr/bin/env python3
"""QEMU driver benchmark: kumo's driver against bare QEMU booting the same tiny image.

    .venv/bin/python bench/compute_qemu.py            # N = 1 and 5 concurrent boots
    .venv/bin/python bench/compute_qemu.py --n 1 5 10

For each N, twice: (a) bare ``qemu-system-x86_64`` (the same overlay, machine, RAM, VGA + VNC
socket, serial log, no NIC), started N at once — the physical floor; (b) the QEMU driver's
``ensure_running`` for N VM specs at once (image from the local cache, overlay, QMP, VNC,
daemonized). Reported: time until the call returns (the VM is "ACTIVE" for the API), time
until the guest's first marker (init running) and its ready marker on the serial console,
the ratio driver/bare, and QEMU's RSS. No network (no DHCP waits): the figures are about
booting. Needs qemu-system-x86 and the tiny image's tools. Prints figures, asserts nothing.
Everything it started is ended by pid; its temp dir is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kumo.agents.compute import tiny_image  # noqa: E402
from kumo.agents.compute.driver import FlavorSpec, ImageRef, VmSpec  # noqa: E402
from kumo.agents.compute.qemu.driver import QemuDriver  # noqa: E402

TIMEOUT = 300.0


def wait_marker(path: Path, marker: str, since: float) -> float | None:
    deadline = since + TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if marker in path.read_text(errors="replace"):
                return time.monotonic() - since
        time.sleep(0.05)
    return None


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bare(n: int, image: Path, work: Path) -> list[tuple[float, float | None, float | None, float]]:
    procs, logs = [], []
    t0 = time.monotonic()
    for i in range(n):
        disk, log = work / f"bare{i}.qcow2", work / f"bare{i}.log"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image), str(disk)],
                       check=True)
        procs.append(subprocess.Popen(
            ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-m", "128", "-nodefaults", "-no-user-config",
             "-vga", "std", "-vnc", f"unix:{work}/bare{i}.vnc", "-serial", f"file:{log}",
             "-drive", f"file={disk},if=none,id=root,format=qcow2", "-device", "virtio-blk-pci,drive=root"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        logs.append(log)
    started = time.monotonic() - t0
    out = []
    try:
        for p, log in zip(procs, logs, strict=True):
            first = wait_marker(log, tiny_image.FIRST_MARKER, t0)
            ready = wait_marker(log, tiny_image.BOOT_MARKER, t0)
            out.append((started, first, ready, rss_mib(p.pid)))
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return out


def driver(n: int, image: Path, work: Path) -> list[tuple[float, float | None, float | None, float]]:
    @contextlib.contextmanager
    def fetch(url: str):  # type: ignore[no-untyped-def]
        yield iter([image.read_bytes()]), None

    d = QemuDriver(work / "compute", fetch, vnc=True)
    specs = [VmSpec(id=str(uuid.uuid4()), name=f"b{i}", hostname=f"b{i}", project_id="bench",
                    flavor=FlavorSpec("m1.nano", 1, 128, 1), image=ImageRef(id="kumo-tiny", url="local"))
             for i in range(n)]
    d.images.ensure(specs[0].image)  # the image cache is warm, as for a second server on a host
    returned: dict[str, float] = {}
    t0 = time.monotonic()

    def boot(s: VmSpec) -> None:
        d.ensure_running(s)
        returned[s.id] = time.monotonic() - t0

    threads = [threading.Thread(target=boot, args=(s,)) for s in specs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = []
    try:
        for s in specs:
            log = d.paths(s.id).console_log
            first = wait_marker(log, tiny_image.FIRST_MARKER, t0)
            ready = wait_marker(log, tiny_image.BOOT_MARKER, t0)
            pid = d.machine_info(s.id)["pid"]
            out.append((returned[s.id], first, ready, rss_mib(pid) if pid else 0.0))
    finally:
        for s in specs:
            d.ensure_deleted(s.id)
    return out


def summary(rows: list[tuple[float, float | None, float | None, float]]) -> tuple[float, float, float, float]:
    def med(i: int) -> float:
        vals = [r[i] for r in rows if r[i] is not None]
        return statistics.median(vals) if vals else float("nan")

    def worst(i: int) -> float:
        vals = [r[i] for r in rows if r[i] is not None]
        return max(vals) if len(vals) == len(rows) else float("nan")

    return med(0), med(1), worst(2), med(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[1, 5])
    args = parser.parse_args()
    image = tiny_image.build()
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[0]
    print(f"tiny image {image}; load average {load} at start")
    print(f"{'N':>3} {'what':<7} {'call s':>8} {'init s':>8} {'all ready s':>12} {'RSS MiB':>8}")
    for n in args.n:
        with tempfile.TemporaryDirectory(prefix="kumo-bench-qemu-") as tmp:
            work = Path(tmp)
            b = summary(bare(n, image, work))
            k = summary(driver(n, image, work))
        print(f"{n:>3} {'bare':<7} {b[0]:>8.2f} {b[1]:>8.2f} {b[2]:>12.2f} {b[3]:>8.0f}")
        print(f"{n:>3} {'kumo':<7} {k[0]:>8.2f} {k[1]:>8.2f} {k[2]:>12.2f} {k[3]:>8.0f}")
        print(f"{n:>3} ratio kumo/bare: init {k[1] / b[1]:.2f}x, all ready {k[2] / b[2]:.2f}x")


if __name__ == "__main__":
    main()
