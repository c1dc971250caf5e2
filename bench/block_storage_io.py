#!/usr/bin/env python3
"""In-guest 4 KiB I/O on a kumo volume against the same kind of file used directly by QEMU (issue 8).

    sudo .venv/bin/python bench/block_storage_io.py [--mib 64] [--ops 500] [--rounds 3]

Both sides run the same busybox script, delivered as user_data on a config drive (the tiny image
runs it at boot, output on the serial console; nothing is typed into the guest): it waits for the
disk whose serial starts with the volume id, then per round times with /proc/uptime (10 ms) a
sequential write and read of --mib MiB (``dd bs=4k`` with O_DIRECT, so no guest page cache) and
--ops random 4 KiB reads and writes (one O_DIRECT ``dd`` per op inside the written area, so both
sides pay the same fork cost). (a) kumo: ``kumo up`` (qemu driver, fake network agent), a 1 GiB
volume, kumo-tiny booted with ``--nic none --config-drive true``, the volume hot-plugged with
``server add volume``; results read from ``console log show``. (b) bare: ``qemu-system-x86_64``
with the argv the driver builds (kumo.agents.compute.qemu.cmdline.build_argv: the same root
overlay, virtio-blk, blockdev options and config drive), a fresh 1 GiB volume file of the kumo
volume's format attached at start, the serial log read directly. Prints per-phase medians and
kumo/bare ratios (goal >= 0.9), asserts nothing, writes bench/results/block-storage-io-latest.md.
Everything started is ended by pid (kumo, QEMU) and the temp dir is removed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kumo.agents.compute import tiny_image  # noqa: E402
from kumo.agents.compute.configdrive import build_config_drive  # noqa: E402
from kumo.agents.compute.driver import FlavorSpec, ImageRef, VmSpec, VolumeSpec  # noqa: E402
from kumo.agents.compute.qemu.cmdline import VmPaths, build_argv  # noqa: E402
from tests.support import KumoCloud  # noqa: E402

TIMEOUT = 900.0
PHASES = ("seq_write_mib_s", "seq_read_mib_s", "rand_read_iops", "rand_write_iops")
SCRIPT = r"""#!/bin/sh
d=; i=0
while [ -z "$d" ] && [ $i -lt 600 ]; do
  for s in /sys/block/vd*/serial; do
    [ -e "$s" ] || continue
    case "$(cat "$s")" in @SERIAL@*) d=${s%/serial}; d=/dev/${d##*/};; esac
  done
  [ -n "$d" ] || sleep 1; i=$((i+1))
done
[ -b "$d" ] || { echo "KUMO-IO error=no-disk"; exit 1; }
now() { cut -d' ' -f1 /proc/uptime; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { t = b - a; if (t < 0.01) t = 0.01; printf "%.2f", n / t }'; }
blocks=$((@MIB@ * 256)); r=1
while [ $r -le @ROUNDS@ ]; do
  t0=$(now); dd if=/dev/zero of=$d bs=4k count=$blocks oflag=direct conv=fsync 2>/dev/null; t1=$(now)
  echo "KUMO-IO round=$r seq_write_mib_s=$(rate @MIB@ $t0 $t1)"
  sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(now); dd if=$d of=/dev/null bs=4k count=$blocks iflag=direct 2>/dev/null; t1=$(now)
  echo "KUMO-IO round=$r seq_read_mib_s=$(rate @MIB@ $t0 $t1)"
  i=0; t0=$(now)
  while [ $i -lt @OPS@ ]; do
    dd if=$d of=/dev/null bs=4k count=1 skip=$(( (RANDOM * 32768 + RANDOM) % blocks )) iflag=direct 2>/dev/null
    i=$((i+1))
  done
  t1=$(now); echo "KUMO-IO round=$r rand_read_iops=$(rate @OPS@ $t0 $t1)"
  i=0; t0=$(now)
  while [ $i -lt @OPS@ ]; do
    dd if=/dev/zero of=$d bs=4k count=1 seek=$(( (RANDOM * 32768 + RANDOM) % blocks )) oflag=direct 2>/dev/null
    i=$((i+1))
  done
  t1=$(now); echo "KUMO-IO round=$r rand_write_iops=$(rate @OPS@ $t0 $t1)"
  r=$((r+1))
done
echo "KUMO-IO done"
"""
LINE = re.compile(r"KUMO-IO round=(\d+) (\w+)=([0-9.]+)")


def user_data(volume_id: str, args: argparse.Namespace) -> str:
    return (SCRIPT.replace("@SERIAL@", volume_id[:20]).replace("@MIB@", str(args.mib))
            .replace("@OPS@", str(args.ops)).replace("@ROUNDS@", str(args.rounds)))


def wait_results(read, what: str) -> dict[str, list[float]]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        text = read()
        if "KUMO-IO error" in text:
            raise SystemExit(f"{what}: {text.splitlines()[-5:]}")
        if "KUMO-IO done" in text:
            out: dict[str, list[float]] = {p: [] for p in PHASES}
            for m in LINE.finditer(text):
                out[m.group(2)].append(float(m.group(3)))
            return out
        time.sleep(3.0)
    raise SystemExit(f"{what}: timed out after {TIMEOUT:.0f}s")


def kill_pidfiles(root: Path) -> None:
    for pidfile in root.rglob("qemu.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)


def kumo_side(work: Path, args: argparse.Namespace) -> tuple[dict[str, list[float]], str]:
    data = work / "kd"
    cloud = KumoCloud(data, env={"KUMO_NETWORK_AGENT__DRIVER": "fake", "KUMO_COMPUTE__DRIVER": "qemu"})
    cloud.port = args.port
    try:
        cloud.start()
        deadline = time.monotonic() + 300
        while cloud.cli("image", "show", "kumo-tiny", "-c", "status", "-f", "value").stdout.strip() != "active":
            if time.monotonic() > deadline:
                raise SystemExit("kumo-tiny never became active")
            time.sleep(2.0)
        vol = cloud.cli_json("volume", "create", "--size", "1", "bench-io-vol")
        while cloud.cli_json("volume", "show", vol["id"])["status"] != "available":
            time.sleep(1.0)
        (work / "ud.sh").write_text(user_data(vol["id"], args))
        server = cloud.cli_json("server", "create", "bench-io", "--image", "kumo-tiny", "--flavor", "m1.nano",
                                "--nic", "none", "--config-drive", "true", "--user-data", str(work / "ud.sh"),
                                "--wait")
        done = cloud.cli("server", "add", "volume", server["id"], vol["id"])
        if done.returncode:
            raise SystemExit(f"server add volume: {done.stderr}")
        res = wait_results(lambda: cloud.cli("console", "log", "show", server["id"]).stdout, "kumo side")
        files = [p for p in (data / "volumes").rglob("*") if p.is_file() and vol["id"] in p.name]
        info = json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(files[0])],
                                         check=True, capture_output=True, text=True).stdout)
        cloud.cli("server", "delete", "--wait", server["id"])
        return res, info["format"]
    finally:
        cloud.stop()
        kill_pidfiles(data)


def bare_side(work: Path, fmt: str, args: argparse.Namespace) -> dict[str, list[float]]:
    paths = VmPaths(dir=work / "bare", sockets=work / "bare")
    paths.dir.mkdir()
    vid = str(uuid.uuid4())
    volfile = work / f"volume-{vid}"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(tiny_image.build()),
                    str(paths.disk)], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(volfile), "1G"], check=True)
    files = {"openstack/latest/meta_data.json": json.dumps({"uuid": vid, "hostname": "bench-io"}).encode(),
             "openstack/latest/user_data": user_data(vid, args).encode()}
    build_config_drive({"label": "config-2", "files": [{"path": k, "content": base64.b64encode(v).decode()}
                                                       for k, v in files.items()]}, paths.config_drive)
    vol = VolumeSpec(volume_id=vid, attachment_id=str(uuid.uuid4()),
                     connection_info={"driver_volume_type": "file", "data": {"path": str(volfile), "format": fmt}})
    spec = VmSpec(id=vid, name="bench-io", hostname="bench-io", project_id="bench",
                  flavor=FlavorSpec("m1.nano", 1, 128, 1), image=ImageRef(id="kumo-tiny", url="local"))
    argv = build_argv(spec, paths, volumes=(vol,), config_drive=True, vnc=False)
    try:
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        return wait_results(lambda: paths.console_log.read_text(errors="replace")
                            if paths.console_log.exists() else "", "bare side")
    finally:
        kill_pidfiles(paths.dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=64, help="MiB written then read sequentially (<= 1023)")
    parser.add_argument("--ops", type=int, default=500, help="random 4 KiB reads, then writes, per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side; medians are reported")
    parser.add_argument("--port", type=int, default=5331, help="kumo's API port")
    args = parser.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="f3-bench-io-", dir="/tmp") as tmp:
        kumo, fmt = kumo_side(Path(tmp), args)
        bare = bare_side(Path(tmp), fmt, args)
    load1 = os.getloadavg()
    rows = [f"| {p} | {statistics.median(bare[p]):.2f} | {statistics.median(kumo[p]):.2f} | "
            f"{statistics.median(kumo[p]) / statistics.median(bare[p]):.2f} |" for p in PHASES]
    text = "\n".join([
        "# Block storage in-guest I/O: kumo volume vs bare QEMU", "",
        f"kumo-tiny, m1.nano (1 vCPU, 128 MB), TCG, volume format {fmt}, 4 KiB blocks with O_DIRECT; "
        f"{args.mib} MiB sequential, {args.ops} random ops; median of {args.rounds} rounds per side. "
        f"Load average {load0[0]:.2f} at start, {load1[0]:.2f} at end. Goal: kumo/bare >= 0.9.", "",
        "| phase | bare | kumo | kumo/bare |", "|---|---|---|---|", *rows, "",
        f"Per round: bare {json.dumps(bare)}; kumo {json.dumps(kumo)}", ""])
    print(text)
    out = ROOT / "bench" / "results" / "block-storage-io-latest.md"
    out.write_text(text)
    print(f"written {out}")


if __name__ == "__main__":
    main()
