#!/usr/bin/env python3
"""Object-store benchmark: kumo vs upstream OpenStack Swift, side by side, in one run.

Both run on this machine at the same time, on loopback, one replica on one device directory:

- kumo: ``kumo up`` (one process: identity + the Swift proxy + one in-process storage node,
  its replicator/auditor/updater/expirer running), requests carry a Keystone token.
- Swift: PyPI ``swift`` (bench/requirements-swift.txt, in bench/.venv-swift), a SAIO-like
  layout: proxy, account, container and object servers (one process each, ``workers = 0``),
  rings of one device, no auth middleware (the proxy admits every request, so Swift does
  not pay for token validation here; kumo does).

Figures: 4 KiB PUT and GET with 20 concurrent clients (ops/s, p50/p99), one large object PUT
and GET (MB/s) next to this disk's raw write bandwidth (fsync'd file in the same directory),
the first page (1,000 rows) of a container listing with N objects, and the RSS of each side.

    python3 bench/object_store.py [--small 2000] [--concurrency 20] [--large-mib 256] [--listing 10000]

Writes bench/results/object-store-latest.md.  Never asserts timings; exit 1 only when a
side could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from load import run_in_subprocess  # noqa: E402
from procs import free_port, rss_mb, start, stop, wait_ready  # noqa: E402
from upstream.venv import ensure_venv  # noqa: E402

CHUNK = 1 << 20


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---- the two sides --------------------------------------------------------------------------


class Side:
    name = ""
    port = 0
    prefix = ""  # path of the account, e.g. /v1/AUTH_test
    headers: dict[str, str] = {}  # noqa: RUF012
    procs: list[subprocess.Popen] = []  # noqa: RUF012
    data: Path = Path()

    def rss(self) -> float:
        return sum(rss_mb(p.pid)[0] for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            stop(p)


class Kumo(Side):
    name = "kumo"

    def __init__(self, work: Path) -> None:
        self.data = work / "kumo"
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUMO_", "OS_"))}
        env.update({"KUMO_IDENTITY__PASSWORD_HASH_ROUNDS": "4", "KUMO_NETWORK_AGENT__DRIVER": "fake",
                    "KUMO_COMPUTE__DRIVER": "fake"})  # fmt: skip
        kumo = str(ROOT / ".venv" / "bin" / "kumo")
        t0 = time.perf_counter()
        proc = start([kumo, "up", "--data-dir", str(self.data), "--port", str(self.port)], env=env,
                     log=work / "kumo.log")  # fmt: skip
        self.procs = [proc]
        wait_ready(proc, self.port, "/identity/v3", t0, timeout=120, log=work / "kumo.log")
        password = (self.data / "admin-password").read_text().strip()
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(
            "POST", "/identity/v3/auth/tokens", json.dumps(body), {"Content-Type": "application/json"}
        )
        resp = conn.getresponse()
        token = resp.getheader("X-Subject-Token") or ""
        project = json.loads(resp.read())["token"]["project"]["id"]
        conn.close()
        self.prefix = f"/object-store/v1/AUTH_{project}"
        self.headers = {"X-Auth-Token": token}


class Swift(Side):
    name = "swift"

    def __init__(self, work: Path) -> None:
        venv = ensure_venv("swift", "requirements-swift.txt", log=log)
        bin_ = venv / "bin"
        etc, self.data = work / "swift-etc", work / "swift-srv"
        etc.mkdir()
        (self.data / "sdb1").mkdir(parents=True)
        (etc / "swift.conf").write_text(
            "[swift-hash]\nswift_hash_path_suffix = kumobench\nswift_hash_path_prefix = kumobench\n"
            "[storage-policy:0]\nname = Policy-0\ndefault = yes\n"
        )
        ports = {n: free_port() for n in ("object", "container", "account", "proxy")}
        for server in ("object", "container", "account"):
            builder = str(etc / f"{server}.builder")
            ring = [str(bin_ / "swift-ring-builder"), builder]
            subprocess.run([*ring, "create", "10", "1", "1"], check=True, capture_output=True)
            subprocess.run([*ring, "add", f"r1z1-127.0.0.1:{ports[server]}/sdb1", "100"], check=True,
                           capture_output=True)  # fmt: skip
            subprocess.run([*ring, "rebalance"], check=False, capture_output=True)
            (etc / f"{server}-server.conf").write_text(
                f"[DEFAULT]\ndevices = {self.data}\nmount_check = false\nbind_ip = 127.0.0.1\n"
                f"bind_port = {ports[server]}\nworkers = 0\nswift_dir = {etc}\nlog_level = WARNING\n"
                f"[pipeline:main]\npipeline = {server}-server\n[app:{server}-server]\nuse = egg:swift#{server}\n"
            )
        (etc / "proxy-server.conf").write_text(
            f"[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {ports['proxy']}\nworkers = 0\nswift_dir = {etc}\n"
            "log_level = WARNING\n[pipeline:main]\npipeline = catch_errors proxy-server\n"
            "[app:proxy-server]\nuse = egg:swift#proxy\naccount_autocreate = true\n"
            "[filter:catch_errors]\nuse = egg:swift#catch_errors\n"
        )
        self.procs = []
        t0 = time.perf_counter()
        for server in ("object", "container", "account", "proxy"):
            lg = work / f"swift-{server}.log"
            proc = start([str(bin_ / f"swift-{server}-server"), str(etc / f"{server}-server.conf")], log=lg)
            self.procs.append(proc)
        self.port = ports["proxy"]
        wait_ready(self.procs[-1], self.port, "/info", t0, timeout=120, log=work / "swift-proxy.log")
        self.prefix = "/v1/AUTH_bench"
        self.headers = {}
        deadline = time.monotonic() + 120
        while True:  # the backends start on their own time: wait until a container PUT works
            try:
                if _call(self, "PUT", "/ready")[0] in (201, 202):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("swift backends did not answer within 120 s")
            time.sleep(0.5)


# ---- scenarios --------------------------------------------------------------------------------


def _call(side: Side, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", side.port, timeout=120)
    try:
        conn.request(method, side.prefix + path, body, side.headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def small_objects(side: Side, count: int, conc: int) -> dict[str, Any]:
    assert _call(side, "PUT", "/small")[0] in (201, 202)
    body = "x" * 4096
    puts = [{"method": "PUT", "path": f"{side.prefix}/small/o{i}", "headers": {**side.headers,
             "Content-Type": "application/octet-stream"}, "body": body} for i in range(count)]  # fmt: skip
    put = run_in_subprocess(
        {"port": side.port, "requests": puts, "count": count, "concurrency": conc, "warmup": 0}
    )
    gets = [
        {"method": "GET", "path": f"{side.prefix}/small/o{i}", "headers": side.headers} for i in range(count)
    ]
    get = run_in_subprocess(
        {"port": side.port, "requests": gets, "count": count, "concurrency": conc, "warmup": 0}
    )
    return {"put": put, "get": get}


def large_object(side: Side, mib: int) -> dict[str, float]:
    assert _call(side, "PUT", "/large")[0] in (201, 202)
    chunk = os.urandom(CHUNK)
    conn = http.client.HTTPConnection("127.0.0.1", side.port, timeout=600)
    t0 = time.perf_counter()
    conn.putrequest("PUT", side.prefix + "/large/big")
    for k, v in {**side.headers, "Content-Length": str(mib * CHUNK)}.items():
        conn.putheader(k, v)
    conn.endheaders()
    for _ in range(mib):
        conn.send(chunk)
    resp = conn.getresponse()
    resp.read()
    put_s = time.perf_counter() - t0
    assert resp.status == 201, resp.status
    t0 = time.perf_counter()
    conn.request("GET", side.prefix + "/large/big", headers=side.headers)
    resp = conn.getresponse()
    got = 0
    while data := resp.read(CHUNK):
        got += len(data)
    get_s = time.perf_counter() - t0
    conn.close()
    assert got == mib * CHUNK, got
    return {"put_mbs": mib * CHUNK / put_s / 1e6, "get_mbs": mib * CHUNK / get_s / 1e6}


def listing(side: Side, count: int, conc: int) -> dict[str, float]:
    assert _call(side, "PUT", "/list")[0] in (201, 202)
    puts = [{"method": "PUT", "path": f"{side.prefix}/list/{i:08d}", "headers": side.headers, "body": ""}
            for i in range(count)]  # fmt: skip
    fill = run_in_subprocess({"port": side.port, "requests": puts, "count": count, "concurrency": conc,
                              "warmup": 0, "max_seconds": 600})  # fmt: skip
    pages = [{"method": "GET", "path": f"{side.prefix}/list?format=json&limit=1000", "headers": side.headers}]
    first = run_in_subprocess(
        {"port": side.port, "requests": pages, "count": 50, "concurrency": 1, "warmup": 3}
    )
    return {"filled": fill["ok"], "fill_rps": fill["rps"], "page_p50_ms": first["latency_ms"]["p50"],
            "page_p99_ms": first["latency_ms"]["p99"]}  # fmt: skip


def raw_disk(work: Path, mib: int) -> float:
    """MB/s of writing ``mib`` MiB to a file in the same directory, fsync'd."""
    chunk = os.urandom(CHUNK)
    path = work / "raw.bin"
    t0 = time.perf_counter()
    with open(path, "wb") as fh:
        for _ in range(mib):
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    secs = time.perf_counter() - t0
    path.unlink()
    return mib * CHUNK / secs / 1e6


# ---- report -----------------------------------------------------------------------------------


def ratio(a: float, b: float, higher_better: bool = True) -> str:
    if not a or not b:
        return "-"
    return f"{(a / b if higher_better else b / a):.2f}x"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=2000, help="4 KiB objects to PUT and GET")
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--large-mib", type=int, default=256, help="size of the large object")
    ap.add_argument("--listing", type=int, default=10000, help="objects in the listed container")
    ap.add_argument("--kumo-only", action="store_true", help="skip upstream Swift")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kumo-bench-object-"))
    sides: list[Side] = []
    results: dict[str, dict[str, Any]] = {}
    try:
        log(f"work dir {work}")
        sides.append(Kumo(work))
        if not args.kumo_only:
            try:
                sides.append(Swift(work))
            except Exception as exc:  # noqa: BLE001 - reported, kumo still measured
                log(f"upstream Swift could not be set up: {exc}")
        for side in sides:
            results[side.name] = {"rss_idle_mb": side.rss()}
        for side in sides:  # one scenario on both sides before the next one
            log(f"{side.name}: {args.small} x 4 KiB PUT/GET, {args.concurrency} clients")
            results[side.name]["small"] = small_objects(side, args.small, args.concurrency)
        raw = raw_disk(work, args.large_mib)
        for side in sides:
            log(f"{side.name}: {args.large_mib} MiB object PUT/GET")
            results[side.name]["large"] = large_object(side, args.large_mib)
        for side in sides:
            log(f"{side.name}: listing of {args.listing} objects")
            results[side.name]["listing"] = listing(side, args.listing, args.concurrency)
            results[side.name]["rss_loaded_mb"] = side.rss()
    finally:
        for side in sides:
            side.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = render(results, raw, args)
    print(report)
    out = BENCH / "results" / "object-store-latest.md"
    out.write_text(report)
    log(f"wrote {out}")
    return 0 if "kumo" in results else 1


def render(results: dict[str, dict[str, Any]], raw: float, args: argparse.Namespace) -> str:
    k, s = results.get("kumo", {}), results.get("swift", {})

    def g(side: dict[str, Any], *path: str) -> float:
        cur: Any = side
        for p in path:
            if not isinstance(cur, dict) or p not in cur:
                return 0.0
            cur = cur[p]
        return float(cur)

    rows = [
        ("4 KiB PUT ops/s", g(k, "small", "put", "rps"), g(s, "small", "put", "rps"), True),
        (
            "4 KiB PUT p50 ms",
            g(k, "small", "put", "latency_ms", "p50"),
            g(s, "small", "put", "latency_ms", "p50"),
            False,
        ),
        (
            "4 KiB PUT p99 ms",
            g(k, "small", "put", "latency_ms", "p99"),
            g(s, "small", "put", "latency_ms", "p99"),
            False,
        ),
        ("4 KiB GET ops/s", g(k, "small", "get", "rps"), g(s, "small", "get", "rps"), True),
        (
            "4 KiB GET p50 ms",
            g(k, "small", "get", "latency_ms", "p50"),
            g(s, "small", "get", "latency_ms", "p50"),
            False,
        ),
        (
            "4 KiB GET p99 ms",
            g(k, "small", "get", "latency_ms", "p99"),
            g(s, "small", "get", "latency_ms", "p99"),
            False,
        ),
        (f"{args.large_mib} MiB PUT MB/s", g(k, "large", "put_mbs"), g(s, "large", "put_mbs"), True),
        (f"{args.large_mib} MiB GET MB/s", g(k, "large", "get_mbs"), g(s, "large", "get_mbs"), True),
        (
            f"listing fill ({args.listing} empty PUTs) ops/s",
            g(k, "listing", "fill_rps"),
            g(s, "listing", "fill_rps"),
            True,
        ),
        (
            f"listing first page of {args.listing}, p50 ms",
            g(k, "listing", "page_p50_ms"),
            g(s, "listing", "page_p50_ms"),
            False,
        ),
        (
            f"listing first page of {args.listing}, p99 ms",
            g(k, "listing", "page_p99_ms"),
            g(s, "listing", "page_p99_ms"),
            False,
        ),
        ("RSS idle MiB", g(k, "rss_idle_mb"), g(s, "rss_idle_mb"), False),
        ("RSS after the run MiB", g(k, "rss_loaded_mb"), g(s, "rss_loaded_mb"), False),
    ]
    errors = {
        n: {sc: r.get("small", {}).get(sc, {}).get("errors") for sc in ("put", "get")}
        for n, r in results.items()
    }
    lines = [
        f"# Object storage: kumo vs upstream Swift ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end. One replica, one device directory, loopback.",
        "kumo: `kumo up` (one process, Keystone tokens checked). Swift "
        + (
            "2.38.3 (PyPI): proxy + account + container + object servers, `workers = 0`, no auth middleware."
            if s
            else "could not be set up: kumo alone."
        ),  # fmt: skip
        f"{args.concurrency} concurrent clients (bench/load.py); raw disk write (fsync) in the same run: "
        f"{raw:.0f} MB/s.",
        "",
        "| figure | kumo | swift | kumo vs swift |",
        "|---|---:|---:|---:|",
    ]
    for name, kv, sv, higher in rows:
        lines.append(f"| {name} | {kv:.1f} | {sv:.1f} | {ratio(kv, sv, higher)} |")
    if raw:
        lines.append(f"| large PUT as % of raw disk write | {g(k, 'large', 'put_mbs') / raw * 100:.0f}% | "
                     f"{g(s, 'large', 'put_mbs') / raw * 100:.0f}% | |")  # fmt: skip
    lines += ["", f"Request errors: {json.dumps(errors)}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
