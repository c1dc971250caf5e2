"""Image upload/download throughput of a large image next to the raw disk bandwidth.

One run, one machine, one filesystem: starts its own kumo (temp data dir, free
port, 127.0.0.1), then measures

- raw disk write: 1 MiB ``write`` calls and one ``fsync``, into the image
  store's directory (what an upload does underneath);
- raw disk read: the same file read back after ``posix_fadvise(DONTNEED)`` on
  it (only this file's pages leave the page cache; no host-wide drop_caches);
- kumo upload: ``PUT /v2/images/{id}/file`` (disk_format raw) streamed from a
  generator, chunked, with kumo's md5 + sha512 hashing and format inspection;
  the sha512 kumo records is checked against one computed before timing;
- kumo download: ``GET .../file`` streamed, the image file's pages dropped
  first (cold), then again warm; checked with crc32 (cheap on the client core);
- optionally upstream Glance (``--glance``; see bench/upstream/glance.py) doing
  the same upload and download on the same filesystem.

Raw samples are taken before the first and after every service round; ratios use their
median (the disk is shared and its speed varies a lot from one second to the next).
Prints figures and ratios; asserts nothing about timings.

    .venv/bin/python bench/image_throughput.py [--size-mib 1024] [--rounds 2] [--glance]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx

CHUNK = 1024 * 1024
HERE = Path(__file__).resolve().parent


def hash_speeds(mib: int = 256) -> dict[str, float]:
    """MiB/s of the hashes an upload computes, on one core (the CPU floor of an upload)."""
    data = os.urandom(CHUNK)
    out = {}
    for names in (("md5",), ("sha512",), ("md5", "sha512")):
        hs = [hashlib.new(n) for n in names]
        t0 = time.perf_counter()
        for _ in range(mib):
            for h in hs:
                h.update(data)
        out["+".join(names)] = mib / (time.perf_counter() - t0)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blocks(size_mib: int) -> Iterator[bytes]:
    """Deterministic incompressible 1 MiB blocks (rotations of one random block)."""
    base = os.urandom(CHUNK) if not hasattr(blocks, "base") else blocks.base  # type: ignore[attr-defined]
    blocks.base = base  # type: ignore[attr-defined]
    for i in range(size_mib):
        k = (i * 4099) % CHUNK
        yield base[k:] + base[:k]


def expected(size_mib: int) -> tuple[str, int]:
    h, crc = hashlib.sha512(), 0
    for b in blocks(size_mib):
        h.update(b)
        crc = zlib.crc32(b, crc)
    return h.hexdigest(), crc


def drop_file_cache(path: Path) -> None:
    """Evict one file's pages from the page cache (flushing it first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def raw_disk(directory: Path, size_mib: int) -> tuple[float, float]:
    path = directory / ".raw-disk-test"
    try:
        t0 = time.perf_counter()
        with open(path, "wb", buffering=0) as fh:
            for b in blocks(size_mib):
                fh.write(b)
            os.fsync(fh.fileno())
        write = size_mib / (time.perf_counter() - t0)
        drop_file_cache(path)
        t0 = time.perf_counter()
        with open(path, "rb", buffering=0) as fh:
            while fh.read(CHUNK):
                pass
        read = size_mib / (time.perf_counter() - t0)
    finally:
        path.unlink(missing_ok=True)
    return write, read


def wait_http(url: str, ok: int, what: str, log: Path, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == ok:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not start; see {log}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, 15)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait()


class Side:
    """One image API (kumo or glance): how to create, upload, download, find the file."""

    name = ""
    client: httpx.Client
    store_dir: Path

    def create(self) -> str:
        r = self.client.post("/v2/images", json={"name": "bench", "disk_format": "raw", "container_format": "bare"})
        r.raise_for_status()
        return r.json()["id"]

    def show(self, image_id: str) -> dict:
        r = self.client.get(f"/v2/images/{image_id}")
        r.raise_for_status()
        return r.json()

    def delete(self, image_id: str) -> None:
        self.client.delete(f"/v2/images/{image_id}")


def kumo_side(root: Path) -> tuple[Side, subprocess.Popen]:
    data_dir, port = root / "kumo", free_port()
    kumo = Path(sys.executable).parent / "kumo"
    log = root / "kumo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(kumo), "up", "--data-dir", str(data_dir), "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/image/", 300, "kumo", log)
        password = (data_dir / "admin-password").read_text().strip()
        auth = {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}  # fmt: skip
        token = httpx.post(base + "/identity/v3/auth/tokens", json={"auth": auth}).headers["X-Subject-Token"]
    except BaseException:
        stop(proc)
        raise
    side = Side()
    side.name = "kumo"
    side.client = httpx.Client(base_url=base + "/image", headers={"X-Auth-Token": token}, timeout=900)
    side.store_dir = data_dir / "images"
    return side, proc


def measure(side: Side, size_mib: int, digest: str, crc: int) -> dict[str, float]:
    image_id = side.create()
    t0 = time.perf_counter()
    r = side.client.put(f"/v2/images/{image_id}/file", content=blocks(size_mib),
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    up = size_mib / (time.perf_counter() - t0)
    if r.status_code not in (201, 204):
        raise SystemExit(f"{side.name} upload failed: {r.status_code} {r.text[:300]}")
    shown = side.show(image_id)
    if shown.get("os_hash_value") != digest or shown.get("size") != size_mib * CHUNK:
        raise SystemExit(f"{side.name}: sha512/size mismatch after upload")
    files = [p for p in side.store_dir.iterdir() if p.name.startswith(image_id)]
    if len(files) != 1:
        raise SystemExit(f"{side.name}: cannot find the stored file of {image_id} in {side.store_dir}")
    out: dict[str, float] = {"upload": up}
    for label in ("download_cold", "download_warm"):
        if label == "download_cold":
            drop_file_cache(files[0])
        got, n = 0, 0
        t0 = time.perf_counter()
        with side.client.stream("GET", f"/v2/images/{image_id}/file") as resp:
            resp.raise_for_status()
            for data in resp.iter_raw():
                got = zlib.crc32(data, got)
                n += len(data)
        out[label] = size_mib / (time.perf_counter() - t0)
        if got != crc or n != size_mib * CHUNK:
            raise SystemExit(f"{side.name}: data mismatch after download")
    side.delete(image_id)
    return out


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: max(r[k] for r in runs) for k in runs[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2, help="upload+download rounds per side (best is shown)")
    ap.add_argument("--glance", action="store_true", help="also run upstream Glance (builds bench/.venv-glance)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kumo-image-tp-", dir=os.environ.get("BENCH_TMP")))
    procs: list[subprocess.Popen] = []
    results: dict[str, dict[str, float]] = {}
    raw: list[tuple[float, float]] = []
    try:
        digest, crc = expected(args.size_mib)
        hashes = hash_speeds()
        side, proc = kumo_side(root)
        procs.append(proc)
        sides = [side]
        if args.glance:
            sys.path.insert(0, str(HERE))
            from upstream.glance import glance_side  # type: ignore[import-not-found]

            g = Side()
            g.name = "glance"
            g.client, g.store_dir, gproc = glance_side(root, free_port())
            procs.append(gproc)
            wait_http(str(g.client.base_url) + "/", 300, "glance", root / "glance" / "glance.log")
            sides.append(g)
        raw.append(raw_disk(side.store_dir, args.size_mib))
        runs: dict[str, list[dict[str, float]]] = {s.name: [] for s in sides}
        for _ in range(args.rounds):  # rounds interleave sides and raw samples: same conditions
            for s in sides:
                runs[s.name].append(measure(s, args.size_mib, digest, crc))
                raw.append(raw_disk(side.store_dir, args.size_mib))
        results = {name: best(r) for name, r in runs.items()}
    finally:
        for p in procs:
            stop(p)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    disk_w = statistics.median(w for w, _ in raw)
    disk_r = statistics.median(r for _, r in raw)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"image {args.size_mib} MiB, {args.rounds} round(s) per side (best shown); "
          f"CPUs: {os.cpu_count()}, load average at the end: {load}")  # fmt: skip
    print("raw disk write+fsync: " + ", ".join(f"{w:.0f}" for w, _ in raw) + f" MiB/s (median {disk_w:.0f})")
    print("raw disk read (cold): " + ", ".join(f"{r:.0f}" for _, r in raw) + f" MiB/s (median {disk_r:.0f})")
    print("hashing on one core:  " + ", ".join(f"{k} {v:.0f} MiB/s" for k, v in hashes.items()))
    print(f"{'':8} {'upload':>16} {'download cold':>20} {'download warm':>15}")
    for name, r in results.items():
        print(f"{name:8} {r['upload']:7.0f} MiB/s {r['upload'] / disk_w:4.0%} "
              f"{r['download_cold']:8.0f} MiB/s {r['download_cold'] / disk_r:4.0%} "
              f"{r['download_warm']:8.0f} MiB/s")  # fmt: skip
    if "glance" in results:
        k, g = results["kumo"], results["glance"]
        print("kumo/glance: " + ", ".join(f"{key} {k[key] / g[key]:.2f}" for key in k))
    print("sha512 (upload) and crc32 (downloads) verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
