"""Volumes with real VMs through the CLI: ``kumo up`` with the qemu driver (TCG), the linux
network agent and the file volume back end.

One scenario, in order, sharing one kumo: a 1 GiB volume hot-plugged into a running kumo-tiny
VM, whose user_data (backgrounded, polling ``/sys/block/vd*/serial`` for the volume id prefix)
writes a marker to the disk's first bytes; detach; attach to a second VM whose user_data reads
the marker back onto its console. Then boot from a volume created from kumo-tiny. Then back up
the marker volume, delete it, restore the backup into a new volume and compare the sha256 of
both volumes' data, each converted to raw with ``qemu-img convert`` from the file back end's
files under ``<data_dir>/volumes``.

Skipped like tests/e2e/test_compute_qemu.py (root, qemu, network tools, the network agent's host
lock); the same cleanup, even on failure: kumo first, then QEMUs by pid, then taps and bridges.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from kumo.agents.compute import tiny_image
from tests.e2e.test_compute_qemu import qemu_cloud, qemu_pids, wait_for  # noqa: F401  (the fixture)
from tests.support import KumoCloud

CONSOLE_TIMEOUT = 240.0  # the serial console is slow under TCG on a loaded 2-core machine

POLL = r"""#!/bin/sh
(
i=0
while [ $i -lt 300 ]; do
  for s in /sys/block/vd*/serial; do
    [ -e "$s" ] || continue
    case "$(cat "$s")" in
    @SERIAL@*)
      d=${s%/serial}; d=/dev/${d##*/}
      [ -b "$d" ] || break
      @ACTION@
      exit 0 ;;
    esac
  done
  sleep 1
  i=$((i+1))
done
echo "MARKER-TIMEOUT"
) </dev/null >/dev/console 2>&1 &
"""
WRITE = 'printf "%s" "@MARKER@" | dd of="$d" bs=512 conv=sync 2>/dev/null; sync; echo "MARKER-WRITTEN $d"'
READ = 'echo "MARKER-READ $(dd if="$d" bs=64 count=1 2>/dev/null | tr -d "\\000")"'


def user_data(volume_id: str, action: str) -> str:
    return POLL.replace("@SERIAL@", volume_id[:20]).replace("@ACTION@", action)


def run(cloud: KumoCloud, *args: str, timeout: float = 120) -> str:
    done = cloud.cli(*args, cloud="kumo-admin", timeout=timeout)
    assert done.returncode == 0, f"openstack {' '.join(args)}: {done.stderr or done.stdout}"
    return done.stdout


def run_json(cloud: KumoCloud, *args: str, timeout: float = 120) -> dict:
    return json.loads(run(cloud, *args, "-f", "json", timeout=timeout))


def console(cloud: KumoCloud, server_id: str) -> str:
    return cloud.cli("console", "log", "show", server_id, cloud="kumo-admin").stdout


def wait_console(cloud: KumoCloud, server_id: str, needle: str, what: str) -> str:
    deadline = time.monotonic() + CONSOLE_TIMEOUT
    while True:
        text = console(cloud, server_id)
        if needle in text:
            return text
        if time.monotonic() > deadline:
            tail = "\n".join(text.splitlines()[-25:])
            network = "\n".join(x for x in cloud.log().splitlines() if "network" in x.lower())[-4000:]
            raise AssertionError(
                f"timed out after {CONSOLE_TIMEOUT:.0f}s waiting for {what} ({needle!r}) "
                f"on the console of {server_id}; last lines:\n{tail}\nkumo's network log lines:\n{network}"
            )
        time.sleep(2.0)


def volume_status(cloud: KumoCloud, volume_id: str, want: str, timeout: float = 120) -> None:
    last: dict = {}

    def check() -> bool:
        nonlocal last
        last = run_json(cloud, "volume", "show", volume_id)
        assert last["status"] != "error", f"volume {volume_id} went to error: {last}"
        return last["status"] == want

    try:
        wait_for(f"volume {volume_id} {want}", check, timeout, 1.0)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; last: status {last.get('status')}, attachments {last.get('attachments')}"
        ) from None


def server_boot(cloud: KumoCloud, name: str, *args: str) -> dict:
    server = run_json(cloud, "server", "create", name, "--flavor", "m1.nano", *args, "--wait", timeout=240)
    assert server["status"] == "ACTIVE", server
    return server


def raw_sha256(src: Path, tmp: Path) -> tuple[str, bytes]:
    """sha256 and first 64 bytes of a file-back-end volume's data: ``qemu-img convert`` to raw, then hash it."""
    raw = tmp / (src.name + ".raw")
    subprocess.run(
        ["qemu-img", "convert", "-U", "-O", "raw", str(src), str(raw)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    digest = hashlib.sha256()
    with raw.open("rb") as f:
        head = f.read(64)
        digest.update(head)
        while chunk := f.read(4 * 1024 * 1024):
            digest.update(chunk)
    raw.unlink()
    return digest.hexdigest(), head


@pytest.fixture
def remove_data_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Requested before qemu_cloud, so this runs after its cleanup: the data dir goes too."""
    yield
    shutil.rmtree(tmp_path / "kd", ignore_errors=True)


def test_volume_moves_between_vms_boots_and_survives_backup(
    remove_data_dir: None,
    qemu_cloud: KumoCloud,  # noqa: F811
    tmp_path: Path,
) -> None:
    cloud = qemu_cloud
    started = time.monotonic()
    conn = cloud.sdk("kumo-admin")
    image = wait_for("image kumo-tiny", lambda: next(iter(conn.image.images(name="kumo-tiny")), None), 120)
    wait_for("kumo-tiny active", lambda: conn.image.get_image(image.id).status == "active", 60)
    conn.close()
    net = run_json(cloud, "network", "create", "e2e-bs-net")
    cloud.e2e_networks = [net["id"]]  # type: ignore[attr-defined]
    run(cloud, "subnet", "create", "--network", net["id"], "--subnet-range", "10.93.11.0/24", "e2e-bs-sub")
    volumes = cloud.data_dir / "volumes"

    # 1. a 1 GiB volume hot-plugged into VM A, whose user_data writes the marker to it
    marker = f"kumo-marker-{secrets.token_hex(6)}"
    vol = run_json(cloud, "volume", "create", "--size", "1", "e2e-bs-vol")
    volume_status(cloud, vol["id"], "available")
    (tmp_path / "a.sh").write_text(user_data(vol["id"], WRITE.replace("@MARKER@", marker)))
    a = server_boot(
        cloud,
        "e2e-bs-a",
        "--image",
        "kumo-tiny",
        "--network",
        net["id"],
        "--user-data",
        str(tmp_path / "a.sh"),
        "--config-drive",  # user_data also on a config drive: this test is about volumes, not DHCP
        "True",
    )
    wait_console(cloud, a["id"], tiny_image.BOOT_MARKER, "the boot marker of VM A")
    run(cloud, "server", "add", "volume", a["id"], vol["id"])
    volume_status(cloud, vol["id"], "in-use")
    log = wait_console(cloud, a["id"], "MARKER-WRITTEN", "the marker written by VM A")
    assert "MARKER-TIMEOUT" not in log
    run(cloud, "server", "remove", "volume", a["id"], vol["id"])
    volume_status(cloud, vol["id"], "available")
    step1 = time.monotonic() - started

    # 2. the same volume hot-plugged into VM B, whose user_data reads the marker back
    (tmp_path / "b.sh").write_text(user_data(vol["id"], READ))
    b = server_boot(
        cloud,
        "e2e-bs-b",
        "--image",
        "kumo-tiny",
        "--network",
        net["id"],
        "--user-data",
        str(tmp_path / "b.sh"),
        "--config-drive",  # user_data also on a config drive: this test is about volumes, not DHCP
        "True",
    )
    wait_console(cloud, b["id"], tiny_image.BOOT_MARKER, "the boot marker of VM B")
    run(cloud, "server", "add", "volume", b["id"], vol["id"])
    volume_status(cloud, vol["id"], "in-use")
    log = wait_console(cloud, b["id"], "MARKER-READ", "the marker read by VM B")
    line = next(x for x in log.splitlines() if "MARKER-READ" in x)
    assert line.strip().endswith(f"MARKER-READ {marker}"), line
    run(cloud, "server", "delete", "--wait", a["id"], b["id"], timeout=180)
    volume_status(cloud, vol["id"], "available")  # deleting B detaches the volume
    step2 = time.monotonic() - started

    # 3. boot from a volume created from the tiny image
    bootvol = run_json(cloud, "volume", "create", "--image", "kumo-tiny", "--size", "1", "e2e-bs-bootvol")
    volume_status(cloud, bootvol["id"], "available")
    c = run_json(
        cloud,
        "server",
        "create",
        "e2e-bs-bfv",
        "--volume",
        bootvol["id"],
        "--flavor",
        "m1.tiny",
        "--network",
        net["id"],
        "--wait",
        timeout=240,
    )
    assert c["status"] == "ACTIVE", c
    wait_console(cloud, c["id"], tiny_image.BOOT_MARKER, "the boot marker of the volume-backed VM")
    assert not (cloud.data_dir / "compute" / "instances" / c["id"] / "disk.qcow2").exists()
    run(cloud, "server", "delete", "--wait", c["id"], timeout=180)
    volume_status(cloud, bootvol["id"], "available")
    run(cloud, "volume", "delete", bootvol["id"])
    step3 = time.monotonic() - started

    # 4. back up the marker volume, delete it, restore it, compare the data
    original, head = raw_sha256(volumes / f"volume-{vol['id']}", tmp_path)
    assert head.startswith(marker.encode()), head  # the guest's write reached the volume file
    backup = run_json(cloud, "volume", "backup", "create", "--name", "e2e-bs-backup", vol["id"])
    wait_for(
        "the backup available",
        lambda: run_json(cloud, "volume", "backup", "show", backup["id"])["status"] == "available",
        180,
        1.0,
    )
    run(cloud, "volume", "delete", vol["id"])
    wait_for("the volume gone", lambda: not (volumes / f"volume-{vol['id']}").exists(), 60)
    restored = run_json(cloud, "volume", "backup", "restore", backup["id"], "e2e-bs-restored")
    new_id = restored["volume_id"]
    volume_status(cloud, new_id, "available", 180)
    assert raw_sha256(volumes / f"volume-{new_id}", tmp_path) == (original, head)
    run(cloud, "volume", "backup", "delete", backup["id"])
    run(cloud, "volume", "delete", new_id)
    total = time.monotonic() - started
    print(
        f"\nvolume e2e: write+detach {step1:.1f}s, read {step2 - step1:.1f}s, boot from volume "
        f"{step3 - step2:.1f}s, backup/restore {total - step3:.1f}s, total {total:.1f}s"
    )
    wait_for("no QEMU left", lambda: qemu_pids(str(cloud.data_dir)) == [], 30)
    run(cloud, "network", "delete", net["id"])
