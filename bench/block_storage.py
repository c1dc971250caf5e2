#!/usr/bin/env python3
"""Block storage benchmark: volume create latency (POST /volumes -> available) for empty volumes
and for volumes made from an image, snapshot latency, and N concurrent empty creates. Prints
figures; asserts nothing.

    python3 bench/block_storage.py --clouds /tmp/kd/clouds.yaml [--cloud kumo-admin] [-n 5] [--concurrent 5]
        [--image-mb 64]

Needs a running kumo with the volume agent (file back end by default) and a volumes quota that
allows n + concurrent + 1 volumes (the default is 10; the admin project's is raised if needed).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import time

import httpx
import yaml


def session(clouds: str, cloud: str) -> tuple[httpx.Client, httpx.Client, str]:
    with open(clouds) as fh:
        auth = yaml.safe_load(fh)["clouds"][cloud]["auth"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"], "domain": {"id": "default"}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"id": "default"}}}}}  # fmt: skip
    r = httpx.post(auth["auth_url"].rstrip("/") + "/auth/tokens", json=body, timeout=30)
    r.raise_for_status()
    token, catalog = r.headers["X-Subject-Token"], r.json()["token"]["catalog"]

    def url(kind: str) -> str:
        entry = next(e for e in catalog if e["type"] == kind)
        return next(e["url"] for e in entry["endpoints"] if e["interface"] == "public")

    headers = {"X-Auth-Token": token}
    cinder = httpx.Client(base_url=url("block-storage"), headers=headers, timeout=120)
    glance = httpx.Client(base_url=url("image"), headers=headers, timeout=600)
    return cinder, glance, r.json()["token"]["project"]["id"]


def wait(cinder: httpx.Client, path: str, key: str, status: str, t0: float) -> float:
    while True:
        doc = cinder.get(path).json()[key]
        if doc["status"] == status:
            return time.perf_counter() - t0
        if doc["status"].startswith("error"):
            raise SystemExit(f"{path} went to {doc['status']}")
        time.sleep(0.05)


def create(cinder: httpx.Client, body: dict) -> tuple[str, float]:
    t0 = time.perf_counter()
    r = cinder.post("/volumes", json={"volume": body})
    r.raise_for_status()
    vid = r.json()["volume"]["id"]
    return vid, wait(cinder, f"/volumes/{vid}", "volume", "available", t0)


def stats(name: str, values: list[float]) -> None:
    values = sorted(values)
    print(f"{name:32s} n={len(values):3d}  median {statistics.median(values) * 1000:8.1f} ms  "
          f"min {values[0] * 1000:8.1f} ms  max {values[-1] * 1000:8.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clouds", required=True)
    ap.add_argument("--cloud", default="kumo-admin")
    ap.add_argument("-n", type=int, default=5)
    ap.add_argument("--concurrent", type=int, default=5)
    ap.add_argument("--image-mb", type=int, default=64)
    args = ap.parse_args()
    cinder, glance, project = session(args.clouds, args.cloud)
    cinder.put(f"/os-quota-sets/{project}", json={"quota_set": {"volumes": args.n * 2 + args.concurrent + 5,
                                                                "snapshots": args.n + 5}})
    made: list[str] = []
    try:
        empty = []
        for _ in range(args.n):
            vid, dt = create(cinder, {"size": 1})
            made.append(vid)
            empty.append(dt)
        stats("empty 1 GiB volume", empty)

        image = glance.post("/v2/images", json={"name": "bench-volume-image", "disk_format": "raw",
                                                "container_format": "bare"}).json()
        glance.put(f"/v2/images/{image['id']}/file", content=os.urandom(args.image_mb * 1024 * 1024),
                   headers={"Content-Type": "application/octet-stream"}).raise_for_status()
        try:
            from_image = []
            for _ in range(args.n):
                vid, dt = create(cinder, {"size": 1, "imageRef": image["id"]})
                made.append(vid)
                from_image.append(dt)
            stats(f"from a {args.image_mb} MiB raw image", from_image)
        finally:
            glance.delete(f"/v2/images/{image['id']}")

        snaps = []
        for vid in made[: args.n]:
            t0 = time.perf_counter()
            sid = cinder.post("/snapshots", json={"snapshot": {"volume_id": vid}}).json()["snapshot"]["id"]
            snaps.append(wait(cinder, f"/snapshots/{sid}", "snapshot", "available", t0))
            cinder.delete(f"/snapshots/{sid}")
        stats("snapshot of a 1 GiB volume", snaps)

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.concurrent) as pool:
            results = list(pool.map(lambda _: create(cinder, {"size": 1}), range(args.concurrent)))
        wall = time.perf_counter() - t0
        made += [vid for vid, _ in results]
        stats(f"{args.concurrent} concurrent empty creates", [dt for _, dt in results])
        print(f"{'concurrent wall time':32s} {wall * 1000:8.1f} ms  ({args.concurrent / wall:.1f} volumes/s)")
        print(f"{'image-backed / empty (median)':32s} {statistics.median(from_image) / statistics.median(empty):.1f}x")
    finally:
        for vid in made:
            while cinder.delete(f"/volumes/{vid}").status_code == 400:  # a snapshot is still going away
                time.sleep(0.2)


if __name__ == "__main__":
    main()
