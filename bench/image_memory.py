"""Image upload/download of a large image: kumo's memory growth and throughput.

Starts its own kumo (temp data dir, free port), uploads a generated image
(default 1 GiB) with a chunked PUT, downloads it again, and prints kumo's RSS
growth (goal: < 50 MB; the data must stream, never sit in memory) and the
throughput next to a raw disk write (with fsync) and read measured in the same
run on the same filesystem. Prints figures; asserts nothing about timings.

    .venv/bin/python bench/image_memory.py [--size-mib 1024] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

CHUNK = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.05)


def blocks(size_mib: int):
    base = os.urandom(CHUNK)
    for i in range(size_mib):
        yield base[i % 4096 :] + base[: i % 4096]


def raw_disk(directory: Path, size_mib: int) -> tuple[float, float]:
    path = directory / "raw-disk-test"
    t0 = time.perf_counter()
    with open(path, "wb") as fh:
        for b in blocks(size_mib):
            fh.write(b)
        fh.flush()
        os.fsync(fh.fileno())
    write = size_mib / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        while fh.read(CHUNK):
            pass
    read = size_mib / (time.perf_counter() - t0)
    path.unlink()
    return write, read


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--keep", action="store_true", help="keep the temp data dir")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kumo-image-bench-"))
    data_dir, port = root / "data", free_port()
    kumo = Path(sys.executable).parent / "kumo"
    log = open(root / "kumo.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([str(kumo), "up", "--data-dir", str(data_dir), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(base + "/image/", timeout=1).status_code == 300:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("kumo did not start; see " + str(root / "kumo.log"))
        password = (data_dir / "admin-password").read_text().strip()
        auth = {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}  # fmt: skip
        token = httpx.post(base + "/identity/v3/auth/tokens", json={"auth": auth}).headers["X-Subject-Token"]
        client = httpx.Client(base_url=base + "/image/v2", headers={"X-Auth-Token": token}, timeout=600)
        image = client.post("/images", json={"name": "bench", "disk_format": "raw",
                                             "container_format": "bare"}).json()  # fmt: skip
        # warm up (imports, first requests) before taking the baseline
        client.get("/images")
        baseline = rss_kib(proc.pid)
        sampler = RssSampler(proc.pid)
        sampler.start()

        digest = hashlib.sha512()

        def body():
            for b in blocks(args.size_mib):
                digest.update(b)
                yield b

        t0 = time.perf_counter()
        r = client.put(f"/images/{image['id']}/file", content=body(),
                       headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        up = args.size_mib / (time.perf_counter() - t0)
        assert r.status_code == 204, r.text
        shown = client.get(f"/images/{image['id']}").json()
        assert shown["os_hash_value"] == digest.hexdigest(), "sha512 mismatch after upload"
        down_digest = hashlib.sha512()
        t0 = time.perf_counter()
        with client.stream("GET", f"/images/{image['id']}/file") as resp:
            for data in resp.iter_bytes(CHUNK):
                down_digest.update(data)
        down = args.size_mib / (time.perf_counter() - t0)
        sampler.stop.set()
        sampler.join()
        assert down_digest.hexdigest() == digest.hexdigest(), "sha512 mismatch after download"
        disk_w, disk_r = raw_disk(data_dir, args.size_mib)
        growth = (sampler.peak - baseline) / 1024
        print(f"image size           {args.size_mib} MiB")
        print(f"kumo RSS baseline    {baseline / 1024:.1f} MiB, peak {sampler.peak / 1024:.1f} MiB, "
              f"growth {growth:.1f} MiB (goal < 50)")  # fmt: skip
        print(f"upload   {up:8.1f} MiB/s   (raw disk write+fsync {disk_w:8.1f} MiB/s)")
        print(f"download {down:8.1f} MiB/s   (raw disk read        {disk_r:8.1f} MiB/s, page cache likely)")
        print("sha512 verified on upload and download")
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print("kept", root)


if __name__ == "__main__":
    raise SystemExit(main())
