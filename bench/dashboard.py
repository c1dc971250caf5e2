#!/usr/bin/env python3
"""Dashboard page speed: a project with N servers (fake driver), each main page timed in Chromium.

Starts its own ``kumo up`` (fake compute and network drivers) in a temp dir, raises the admin
project's quotas, creates N servers on the private network, waits for them to be ACTIVE, then
opens every main dashboard page in headless Debian Chromium (Playwright, never a downloaded
browser) and reads the browser's own timing API: first contentful paint (``paint`` entries),
DOMContentLoaded and the response end (``navigation`` entry). Prints figures; asserts nothing.

    .venv/bin/python bench/dashboard.py [--servers 200] [--repeat 5] [--kumo .venv/bin/kumo]

The goal is first content within 300 ms on every page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import procs  # noqa: E402

PAGES = [
    "/", "/compute/instances", "/compute/instances/launch", "/compute/keypairs", "/images",
    "/network/networks", "/network/routers", "/network/floating-ips", "/network/security-groups",
    "/network/topology", "/storage/containers", "/identity/projects", "/identity/users",
    "/identity/application-credentials",
]  # fmt: skip
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-default-apps", "--disable-sync", "--no-first-run"]  # fmt: skip
TIMING_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return {fcp: fcp ? fcp.startTime : null, dcl: nav.domContentLoadedEventEnd, response: nav.responseEnd,
          size: nav.transferSize};
}"""


def populate(base: str, password: str, servers: int, network: bool, wait: float) -> None:
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "password": password, "domain": {"id": "default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}  # fmt: skip
    r = httpx.post(f"{base}/identity/v3/auth/tokens", json=auth, timeout=30)
    r.raise_for_status()
    token, project = r.headers["X-Subject-Token"], r.json()["token"]["project"]["id"]
    h = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.79"}
    with httpx.Client(base_url=base, headers=h, timeout=120) as c:
        c.put(f"/compute/v2.1/os-quota-sets/{project}", json={"quota_set": {
            "instances": servers + 10, "cores": servers + 10, "ram": 128 * (servers + 10)}}).raise_for_status()
        c.put(f"/network/v2.0/quotas/{project}", json={"quota": {"port": servers + 50}}).raise_for_status()
        img = c.post("/image/v2/images", json={"name": "bench-tiny", "disk_format": "raw",
                                               "container_format": "bare"}).json()  # fmt: skip
        c.put(f"/image/v2/images/{img['id']}/file", content=b"\0" * 65536,
              headers={"Content-Type": "application/octet-stream"}).raise_for_status()
        nets: object = "none"
        if network:
            nets = [{"uuid": c.get("/network/v2.0/networks", params={"name": "private"}).json()["networks"][0]["id"]}]
        t0 = time.perf_counter()
        left = servers
        while left:
            n = min(50, left)
            c.post("/compute/v2.1/servers", json={"server": {
                "name": "bench-vm", "imageRef": img["id"], "flavorRef": "42", "networks": nets,
                "min_count": n, "max_count": n}}).raise_for_status()  # fmt: skip
            left -= n
        while True:
            listing = c.get("/compute/v2.1/servers/detail", params={"limit": 1000}).json()["servers"]
            active = sum(s["status"] == "ACTIVE" for s in listing)
            if active >= servers or time.perf_counter() - t0 > wait:
                break
            time.sleep(1)
        print(f"{len(listing)} servers listed, {active} ACTIVE after {time.perf_counter() - t0:.1f} s")


def measure(base: str, password: str, repeat: int) -> list[tuple[str, list[dict]]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(base + "/dashboard/login")
            page.fill("#f-username", "admin")
            page.fill("#f-password", password)
            page.click("form[action$='/login'] button[type=submit]")
            page.wait_for_url("**/dashboard/")
            for path in PAGES:
                runs = []
                for _ in range(repeat + 1):  # the first load warms the static-file cache
                    page.goto(base + "/dashboard" + path, wait_until="load")
                    page.wait_for_timeout(50)  # let the paint entry land
                    runs.append(page.evaluate(TIMING_JS))
                out.append((path, runs[1:]))
            # the instance table arrives after the shell (htmx): time until its rows are in the page
            rows = []
            for _ in range(repeat):
                page.goto(base + "/dashboard/compute/instances", wait_until="commit")
                page.wait_for_selector("#instance-rows[data-count]", state="attached")
                rows.append(page.evaluate("performance.now()"))
            out.append(("/compute/instances rows visible", [{"fcp": None, "dcl": None, "response": r, "size": 0}
                                                           for r in rows]))
        finally:
            browser.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--servers", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--network", action="store_true", help="give every server a port on the private network")
    ap.add_argument("--wait", type=float, default=300.0, help="seconds to wait for the servers to be ACTIVE")
    ap.add_argument("--kumo", default=str(Path(sys.executable).parent / "kumo"))
    args = ap.parse_args()
    if not Path("/usr/bin/chromium").exists():
        print("needs Debian's chromium: apt-get install chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kumo-bench-dashboard-") as tmp:
        port = procs.free_port()
        data = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "KUMO_"))}
        env.update({"KUMO_IDENTITY__PASSWORD_HASH_ROUNDS": "4", "KUMO_NETWORK_AGENT__DRIVER": "fake",
                    "KUMO_COMPUTE__DRIVER": "fake",
                    # the fake hypervisor reports this machine's cores: let N small servers fit on it
                    "KUMO_COMPUTE__CPU_ALLOCATION_RATIO": "1000", "KUMO_COMPUTE__RAM_ALLOCATION_RATIO": "100"})  # fmt: skip
        log = Path(tmp) / "kumo.log"
        t0 = time.perf_counter()
        proc = procs.start([args.kumo, "up", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port)],
                           env=env, log=log)  # fmt: skip
        try:
            procs.wait_ready(proc, port, "/identity/v3", t0, timeout=90, log=log)
            base = f"http://127.0.0.1:{port}"
            password = (data / "admin-password").read_text().strip()
            populate(base, password, args.servers, args.network, args.wait)
            results = measure(base, password, args.repeat)
        finally:
            procs.stop(proc)
    print(f"\ndashboard pages, {args.servers} servers, median (max) of {args.repeat} loads, ms; goal FCP < 300")
    print(f"{'page':38} {'response':>14} {'FCP':>14} {'DOMContentLoaded':>18}")
    worst = 0.0
    for path, runs in results:
        def col(key: str, runs: list[dict] = runs) -> str:
            vals = [r[key] for r in runs if r[key] is not None]
            if not vals:
                return "-"
            return f"{statistics.median(vals):.0f} ({max(vals):.0f})"

        fcps = [r["fcp"] for r in runs if r["fcp"] is not None]
        worst = max(worst, max(fcps) if fcps else 0.0)
        print(f"{path:38} {col('response'):>14} {col('fcp'):>14} {col('dcl'):>18}")
    print(f"\nworst first contentful paint: {worst:.0f} ms (goal 300 ms: {'met' if worst < 300 else 'missed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
