#!/usr/bin/env python3
"""Compute control-plane benchmark with the fake driver: POST /servers -> ACTIVE.

Measures the API + scheduler + agent round trip (no hypervisor): sequential creates
and N concurrent creates, then deletes them. Prints figures; asserts nothing.

    python3 bench/compute_fake.py --clouds /tmp/kd/clouds.yaml [--cloud kumo-admin] [-n 10] [--concurrent 20]

Needs a running kumo (fake driver) with an image called ``kumo-tiny``, flavor 42 (m1.nano) and an
instances quota that allows n + concurrent servers (the default is 10).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import time

import httpx
import yaml


def session(clouds: str, cloud: str) -> httpx.Client:
    with open(clouds) as fh:
        auth = yaml.safe_load(fh)["clouds"][cloud]["auth"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"], "domain": {"id": "default"}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"id": "default"}}}}}  # fmt: skip
    r = httpx.post(auth["auth_url"].rstrip("/") + "/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    compute = next(e for e in r.json()["token"]["catalog"] if e["type"] == "compute")
    url = next(e["url"] for e in compute["endpoints"] if e["interface"] == "public")
    return httpx.Client(base_url=url, headers={"X-Auth-Token": r.headers["X-Subject-Token"]}, timeout=60)


def boot(nova: httpx.Client, image: str, name: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    r = nova.post("/servers", json={"server": {"name": name, "imageRef": image, "flavorRef": "42", "networks": "none"}},
                  headers={"OpenStack-API-Version": "compute 2.37"})  # fmt: skip
    r.raise_for_status()
    sid = r.json()["server"]["id"]
    while (status := nova.get(f"/servers/{sid}").json()["server"]["status"]) not in ("ACTIVE", "ERROR"):
        time.sleep(0.01)
    return sid, (time.perf_counter() - t0) if status == "ACTIVE" else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clouds", required=True)
    ap.add_argument("--cloud", default="kumo-admin")
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--concurrent", type=int, default=20)
    args = ap.parse_args()
    nova = session(args.clouds, args.cloud)
    image_url = nova.base_url.copy_with(path="/image/v2/images")
    images = httpx.get(str(image_url), params={"name": "kumo-tiny"}, headers=nova.headers, timeout=30).json()["images"]
    image = images[0]["id"]
    ids: list[str] = []
    try:
        run(nova, image, args, ids)
    finally:
        for sid in ids:
            nova.delete(f"/servers/{sid}")


def run(nova: httpx.Client, image: str, args: argparse.Namespace, ids: list[str]) -> None:
    times = []
    for i in range(args.n):
        sid, took = boot(nova, image, f"bench-seq-{i}")
        ids.append(sid)
        times.append(took)
    print(f"sequential create->ACTIVE: median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms (n={args.n})")  # fmt: skip
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.concurrent) as pool:
        results = list(pool.map(lambda i: boot(nova, image, f"bench-par-{i}"), range(args.concurrent)))
    wall = time.perf_counter() - t0
    ids += [sid for sid, _ in results]
    print(f"{args.concurrent} concurrent creates: all ACTIVE after {wall * 1000:.0f} ms "
          f"(median each {statistics.median(t for _, t in results) * 1000:.0f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
