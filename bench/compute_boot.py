#!/usr/bin/env python3
"""Boot benchmark through the compute API: ``server create`` → ACTIVE → boot marker, against bare QEMU.

    sudo .venv/bin/python bench/compute_boot.py              # N = 1 and 20, with and without a network
    sudo .venv/bin/python bench/compute_boot.py --n 1 5 --variants net

Issue 6's goals, side by side in one run on this machine:

* ACTIVE within 0.5 s of the API call (no network: nothing to wait for);
* the guest's boot marker within 1.2x of bare QEMU booting the same image the same way;
* 20 concurrent creates all ACTIVE within 1.5x of bare QEMU starting 20 at once (all ready).

It starts a private ``kumo up`` (qemu driver, linux network agent, its own data dir and port;
``kumo-tiny`` registered by kumo itself), raises the admin project's quotas, and boots N servers
at once through the API with httpx and a token: POST /servers, polls ``GET /servers/detail``
until ACTIVE, and ``os-getConsoleOutput`` until the boot marker. Two variants: ``none`` (no
networks) and ``net`` (a private network with DHCP: the guest waits paused for
network-vif-plugged, so ACTIVE comes after DHCP provisioning; the QEMU start time, from the
pid file QEMU writes, is reported too, with the number of DHCP discovers each guest sent).
The bare runner is bench/compute_qemu.py's (same overlay, machine, RAM, VGA + VNC, serial log,
no NIC: the physical floor; the ``net`` guests also do DHCP and a metadata fetch, ~0.3 s).

Waits for the host's network agent lock (one linux network agent per host). Deletes every
server, then stops its kumo by pid (whose agent removes its bridges and namespaces); its temp
dir is removed. Writes bench/results/compute-boot-latest.md. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import compute_qemu  # noqa: E402
from compute_qemu import bare  # noqa: E402

from kumo.agents.compute import tiny_image  # noqa: E402

LOCK = Path("/run/kumo-network-agent.lock")
RESULTS = ROOT / "bench" / "results" / "compute-boot-latest.md"
MV = {"OpenStack-API-Version": "compute 2.79"}
TIMEOUT = 400.0
compute_qemu.TIMEOUT = TIMEOUT  # 20 TCG guests at once on a loaded 2-core machine take minutes


def lock_holder() -> int | None:
    """The pid holding the network agent's host lock (from /proc/locks; nothing is locked here)."""
    try:
        ino = LOCK.stat().st_ino
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 6 and f[1] == "FLOCK":
            with contextlib.suppress(ValueError, IndexError):
                if int(f[5].split(":")[2]) == ino and os.path.exists(f"/proc/{f[4]}"):
                    return int(f[4])
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Kumo:
    """A private ``kumo up`` with the qemu driver and the linux network agent."""

    def __init__(self, work: Path) -> None:
        self.data = work / "kd"
        self.port = free_port()
        self.log = open(work / "kumo.log", "ab")  # noqa: SIM115 - closed in stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "KUMO_"))}
        env.update({"KUMO_COMPUTE__DRIVER": "qemu", "KUMO_NETWORK_AGENT__DRIVER": "linux",
                    "KUMO_COMPUTE__SHUTDOWN_TIMEOUT": "5", "PYTHONUNBUFFERED": "1"})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kumo", "up", "--data-dir", str(self.data), "--host", "127.0.0.1",
             "--port", str(self.port)], env=env, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"kumo exited ({self.proc.returncode}); see {self.log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/identity/v3", timeout=2).status_code == 200 and (
                        self.data / "clouds.yaml").is_file():
                    return
            time.sleep(0.3)
        raise SystemExit("kumo did not come up within 180 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def login(data: Path) -> tuple[str, dict[str, str], str]:
    auth = yaml.safe_load((data / "clouds.yaml").read_text())["clouds"]["kumo-admin"]["auth"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"], "domain": {"id": "default"}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"id": "default"}}}}}
    r = httpx.post(auth["auth_url"].rstrip("/") + "/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    urls = {e["type"]: next(ep["url"] for ep in e["endpoints"] if ep["interface"] == "public")
            for e in r.json()["token"]["catalog"]}
    return r.headers["X-Subject-Token"], urls, r.json()["token"]["project"]["id"]


def qemu_started(data: Path, sid: str) -> float | None:
    """Wall-clock time QEMU wrote its pid file (daemonized, about to run or wait paused)."""
    with contextlib.suppress(OSError):
        return (data / "compute" / "instances" / sid / "qemu.pid").stat().st_mtime
    return None


def boot_n(nova: httpx.Client, data: Path, n: int, image: str, networks: Any, tag: str) -> list[dict[str, Any]]:
    """N concurrent creates; per server: API return, ACTIVE, QEMU started, marker (s after the POSTs)."""
    t0, wall0 = time.monotonic(), time.time()

    def post(i: int) -> tuple[str, float]:
        r = nova.post("/servers", json={"server": {"name": f"bench-{tag}-{i}", "imageRef": image,
                                                   "flavorRef": "42", "networks": networks}})
        r.raise_for_status()
        return r.json()["server"]["id"], time.monotonic() - t0

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        posted = list(pool.map(post, range(n)))
    rows = {sid: {"id": sid, "api": t} for sid, t in posted}
    deadline = t0 + TIMEOUT
    while time.monotonic() < deadline and any("active" not in r for r in rows.values()):
        now = time.monotonic() - t0
        for s in nova.get("/servers/detail", params={"name": f"bench-{tag}-"}).json()["servers"]:
            row = rows.get(s["id"])
            if row is not None and "active" not in row and s["status"] in ("ACTIVE", "ERROR"):
                row["active"] = now if s["status"] == "ACTIVE" else float("nan")
                if s["status"] == "ERROR":
                    print(f"  {s['id']} ERROR: {s.get('fault')}")
        time.sleep(0.02)
    while time.monotonic() < deadline and any("marker" not in r for r in rows.values()):
        for sid, row in rows.items():
            if "log" not in row:  # the serial log on this host: when the guest printed it
                with contextlib.suppress(OSError):
                    log = data / "compute" / "instances" / sid / "console.log"
                    if tiny_image.BOOT_MARKER in log.read_text(errors="replace"):
                        row["log"] = time.monotonic() - t0
            if "marker" in row or row.get("active") != row.get("active"):
                row.setdefault("marker", float("nan"))
                continue
            out = nova.post(f"/servers/{sid}/action", json={"os-getConsoleOutput": {}})
            if out.status_code == 200 and tiny_image.BOOT_MARKER in out.json()["output"]:
                row["marker"] = time.monotonic() - t0
                text = out.json()["output"]
                row["discovers"] = next((ln.split(":")[-1].strip() for ln in text.splitlines()
                                         if "DHCP discovers sent" in ln), "-")
        time.sleep(0.1)
    for sid, row in rows.items():
        started = qemu_started(data, sid)
        row["qemu"] = started - wall0 if started else float("nan")
        row.setdefault("marker", float("nan"))
        row.setdefault("log", row["marker"])
        row.setdefault("active", float("nan"))
    return list(rows.values())


def delete_all(nova: httpx.Client, ids: list[str]) -> None:
    for sid in ids:
        nova.delete(f"/servers/{sid}")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        left = [sid for sid in ids if nova.get(f"/servers/{sid}").status_code != 404]
        if not left:
            return
        time.sleep(0.5)
    print(f"  warning: {len(left)} server(s) not deleted within 300 s")


def med(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if r[key] == r[key]]
    return statistics.median(vals) if vals else float("nan")


def worst(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if r[key] == r[key]]
    return max(vals) if len(vals) == len(rows) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 20])
    ap.add_argument("--variants", nargs="+", default=["none", "net"], choices=["none", "net"])
    ap.add_argument("--lock-wait", type=float, default=600.0)
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("qemu-system-x86_64") is None:
        raise SystemExit("needs root and qemu-system-x86_64 (the qemu driver and the linux network agent)")
    image_file = tiny_image.build()
    deadline = time.monotonic() + args.lock_wait
    while (holder := lock_holder()) is not None:
        if time.monotonic() > deadline:
            raise SystemExit(f"another kumo network agent (pid {holder}) holds the host lock")
        time.sleep(2.0)
    lines: list[str] = []

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    with open("/proc/loadavg") as fh:
        load = fh.read().split()[0]
    with tempfile.TemporaryDirectory(prefix="kumo-bench-boot-") as tmp:
        work = Path(tmp)
        kumo = Kumo(work)
        ids: list[str] = []
        try:
            kumo.wait_ready()
            token, urls, project = login(kumo.data)
            nova = httpx.Client(base_url=urls["compute"], headers={"X-Auth-Token": token, **MV}, timeout=120)
            net_api = httpx.Client(base_url=urls["network"].rstrip("/") + "/v2.0", headers={"X-Auth-Token": token},
                                   timeout=60)
            glance = httpx.Client(base_url=urls["image"], headers={"X-Auth-Token": token}, timeout=60)
            image = ""
            until = time.monotonic() + 180
            while not image and time.monotonic() < until:
                found = glance.get("/v2/images", params={"name": "kumo-tiny", "status": "active"}).json()["images"]
                image = found[0]["id"] if found else ""
                time.sleep(0.5)
            if not image:
                raise SystemExit("kumo-tiny was not registered within 180 s")
            top = max(args.n)
            r = nova.put(f"/os-quota-sets/{project}", json={"quota_set": {
                "instances": top + 5, "cores": top + 5, "ram": (top + 5) * 512}})
            r.raise_for_status()
            net = net_api.post("/networks", json={"network": {"name": "bench-boot"}}).json()["network"]
            net_api.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4,
                                                      "cidr": "10.93.60.0/24", "name": "bench-boot"}}).raise_for_status()
            # one boot first, not measured: the host's image cache and the services' logins are warm,
            # as for any second server
            warm = boot_n(nova, kumo.data, 1, image, [{"uuid": net["id"]}], "warm")
            delete_all(nova, [r["id"] for r in warm])
            say(f"# Boot through the API vs bare QEMU — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
            say()
            say(f"Machine: {os.cpu_count()} CPUs, TCG, load average {load} at start; kumo-tiny, m1.nano (128 MB).")
            say("Times in seconds from the POSTs (kumo) or the QEMU starts (bare); medians, `all` = the last server.")
            say()
            say("| N | variant | API returned | QEMU started | ACTIVE (median / all) | marker via API (median / all) "
                "| marker in serial log | bare marker (median / all) | marker ratio | all-ready ratio | DHCP discovers |")
            say("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
            verdicts = []
            for n in args.n:
                bare_dir = work / f"bare{n}"
                bare_dir.mkdir()
                b = bare(n, image_file, bare_dir)
                b_med = statistics.median([x[2] for x in b if x[2] is not None] or [float("nan")])
                b_all = max([x[2] for x in b if x[2] is not None] or [float("nan")]) if all(
                    x[2] is not None for x in b) else float("nan")
                for variant in args.variants:
                    networks = "none" if variant == "none" else [{"uuid": net["id"]}]
                    rows = boot_n(nova, kumo.data, n, image, networks, f"{variant}{n}")
                    ids = [r["id"] for r in rows]
                    disc = sorted({str(r.get("discovers", "-")) for r in rows})
                    mk_med, mk_all = med(rows, "marker"), worst(rows, "marker")
                    say(f"| {n} | {variant} | {med(rows, 'api'):.2f} | {med(rows, 'qemu'):.2f} "
                        f"| {med(rows, 'active'):.2f} / {worst(rows, 'active'):.2f} | {mk_med:.2f} / {mk_all:.2f} "
                        f"| {med(rows, 'log'):.2f} / {worst(rows, 'log'):.2f} "
                        f"| {b_med:.2f} / {b_all:.2f} | {mk_med / b_med:.2f}x | {worst(rows, 'active') / b_all:.2f}x "
                        f"| {', '.join(disc)} |")
                    if n == 1:
                        verdicts.append(f"N=1 {variant}: ACTIVE {med(rows, 'active'):.2f} s after the call "
                                        f"(goal ≤ 0.5 s{'' if variant == 'none' else '; after DHCP provisioning'}); "
                                        f"marker {mk_med / b_med:.2f}x bare (goal ≤ 1.2x)")
                    else:
                        verdicts.append(f"N={n} {variant}: all ACTIVE {worst(rows, 'active'):.2f} s = "
                                        f"{worst(rows, 'active') / b_all:.2f}x bare all-ready {b_all:.2f} s "
                                        f"(goal ≤ 1.5x); all markers {mk_all / b_all:.2f}x")
                    delete_all(nova, ids)
                    ids = []
            say()
            for v in verdicts:
                say(f"- {v}")
            with open("/proc/loadavg") as fh:
                say(f"\nLoad average at the end: {fh.read().split()[0]}.")
        finally:
            with contextlib.suppress(Exception):
                if ids:
                    delete_all(nova, ids)
            kumo.stop()
    if lines:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("\n".join(lines) + "\n")
        print(f"\nwritten: {RESULTS}")


if __name__ == "__main__":
    main()
