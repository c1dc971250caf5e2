#!/usr/bin/env python3
"""Object-store benchmark: kumo vs upstream OpenStack Swift, side by side, in one run.

Both run on this machine at the same time, on loopback, one replica on one device directory:

- kumo: ``kumo up`` (one process: identity + the Swift proxy + one in-process storage node,
  its replicator/auditor/updater/expirer running), requests carry a Keystone token.
- Swift: PyPI ``swift`` (bench/requirements-swift.txt, in bench/.venv-swift), a SAIO-like
  layout: proxy, account, container and object servers (one process each, ``workers = 0``),
  rings of one device, no auth middleware (the proxy admits every request, so Swift does
  not pay for token validation here; kumo does).

Figures: 4 KiB PUT and GET with 20 concurrent clients (ops/s, p50/p99); one large object
(256 MiB by default) PUT and GET (MB/s) next to the raw bandwidth of the same disk measured in
the same run the same way (a file in the same directory written in 1 MiB blocks and fsync'd
once at the end, as an object write is; then read back in 1 MiB blocks right after, as the GET
is) and next to one core's MD5 rate (the ETag); a container listing filled through the API
(N empty PUTs: fill rate, first page); a container of 1,000,000 rows filled IN BULK, BYPASSING
THE API (each side's own container-DB broker merges the rows in batches on the node's disk),
then listed through the API (first page at the default limit 10,000 and at limit=1000, a page
after a marker in the middle, a prefix query; p50/p99 of 50 requests each); the RSS of each side.

    python3 bench/object_store.py [--small 2000] [--concurrency 20] [--large-mib 256] [--listing 2000]
                                  [--bulk-rows 1000000] [--kumo-only] [--skip SCENARIO ...]

Writes bench/results/object-store-latest.md.  Never asserts timings; exit 1 only when a
side could not run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import shutil
import statistics
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


def evict(path: Path) -> None:
    """Drop one (fsync'd, clean) file's pages from the page cache: its next read comes from the disk.
    posix_fadvise on that file only; nothing host-wide."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _stored_files(side: Side, size: int) -> list[Path]:
    """The side's on-disk data files of exactly ``size`` bytes (the large object's replicas)."""
    return [p for p in side.data.rglob("*.data") if p.is_file() and p.stat().st_size == size]


def _get_mbs(side: Side, conn: http.client.HTTPConnection, size: int) -> float:
    t0 = time.perf_counter()
    conn.request("GET", side.prefix + "/large/big", headers=side.headers)
    resp = conn.getresponse()
    got = 0
    while data := resp.read(CHUNK):
        got += len(data)
    secs = time.perf_counter() - t0
    assert resp.status == 200 and got == size, (resp.status, got)
    return size / secs / 1e6


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs if k in r) for k in runs[0]} if runs else {}


def large_object(side: Side, mib: int) -> dict[str, float]:
    """PUT then GET one object; the GET twice: right after the PUT (warm: as far as the page cache
    holds it) and after evicting the stored file's pages (cold: from the disk)."""
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
    size = mib * CHUNK
    out = {"put_mbs": size / put_s / 1e6, "get_mbs": _get_mbs(side, conn, size)}
    files = _stored_files(side, size)
    if files:
        for path in files:
            evict(path)
        out["get_cold_mbs"] = _get_mbs(side, conn, size)
    conn.close()
    return out


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


def raw_disk(work: Path, mib: int) -> dict[str, float]:
    """MB/s of writing ``mib`` MiB to a file in the same directory (1 MiB writes, one fsync at the
    end, as an object write), and of reading it back in 1 MiB reads: right after (warm, as the GET
    after the PUT) and after evicting its pages (cold, from the disk, as the cold GET); one run (the
    caller repeats it between the sides' runs).  Also one core's MD5 rate, the ETag every object
    byte goes through."""
    chunk = os.urandom(CHUNK)
    path = work / "raw.bin"

    def read_all() -> float:
        t0 = time.perf_counter()
        with open(path, "rb", buffering=0) as fh:
            while fh.read(CHUNK):
                pass
        return mib * CHUNK / (time.perf_counter() - t0) / 1e6

    t0 = time.perf_counter()
    with open(path, "wb") as fh:
        for _ in range(mib):
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    write = mib * CHUNK / (time.perf_counter() - t0) / 1e6
    read = read_all()
    evict(path)
    cold = read_all()
    path.unlink()
    md5 = hashlib.md5()
    t0 = time.perf_counter()
    for _ in range(min(mib, 256)):
        md5.update(chunk)
    md5_mbs = min(mib, 256) * CHUNK / (time.perf_counter() - t0) / 1e6
    return {"write_mbs": write, "read_mbs": read, "read_cold_mbs": cold, "md5_mbs": md5_mbs}


BULK_QUERIES = (  # (label, query) of the bulk-filled container's listing
    ("first page, default limit (10,000 rows)", "format=json"),
    ("first page, limit=1000", "format=json&limit=1000"),
    ("marker in the middle, limit=1000", "format=json&limit=1000&marker=obj-{mid:08d}"),
    ("prefix query (1,000 matches)", "format=json&prefix=obj-{mid_k:05d}"),
)


def bulk_fill(side: Side, rows: int) -> dict[str, Any]:
    """Fill a container's DB with ``rows`` rows IN BULK, bypassing the API."""
    assert _call(side, "PUT", "/bulk")[0] in (201, 202)
    batch = "20000"
    if isinstance(side, Kumo):
        account = side.prefix.rsplit("/", 1)[1]
        cmd = [str(ROOT / ".venv" / "bin" / "python"), str(BENCH / "kumo_fill.py"), str(side.data), account,
               "bulk", str(rows), batch]  # fmt: skip
    else:
        python = BENCH / ".venv-swift" / "bin" / "python"
        cmd = [
            str(python),
            str(BENCH / "upstream" / "swift_fill.py"),
            str(side.data),
            "bulk",
            str(rows),
            batch,
        ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"{side.name} bulk fill failed: {res.stderr[-2000:]}")
    fill = json.loads(res.stdout.strip().splitlines()[-1])
    return {"filled": fill["rows"], "fill_s": fill["seconds"], "queries": {}}


def bulk_query(side: Side, rows: int, label: str, query: str) -> dict[str, Any]:
    """p50/p99 of 50 GETs (one client) of one listing query of the bulk-filled container, and rows returned."""
    path = f"{side.prefix}/bulk?{query.format(mid=rows // 2, mid_k=rows // 2000)}"
    first = run_in_subprocess({"port": side.port, "requests": [{"method": "GET", "path": path,
                               "headers": side.headers}], "count": 50, "concurrency": 1, "warmup": 3,
                               "max_seconds": 600})  # fmt: skip
    status, body = _call(side, "GET", path[len(side.prefix) :])
    returned = len(json.loads(body)) if status == 200 and body else 0
    return {"p50": first["latency_ms"]["p50"], "p99": first["latency_ms"]["p99"], "errors": first["errors"],
            "rows": returned}  # fmt: skip


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
    ap.add_argument(
        "--listing", type=int, default=2000, help="objects PUT through the API in the listed container"
    )
    ap.add_argument("--large-rounds", type=int, default=3, help="large-object rounds (medians reported)")
    ap.add_argument("--bulk-rows", type=int, default=1_000_000, help="rows of the bulk-filled container")
    ap.add_argument("--kumo-only", action="store_true", help="skip upstream Swift")
    ap.add_argument("--skip", nargs="*", default=[], choices=["small", "large", "listing", "bulk"],
                    help="scenarios to leave out")  # fmt: skip
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kumo-bench-object-"))
    sides: list[Side] = []
    results: dict[str, dict[str, Any]] = {}
    raw: dict[str, float] = {}
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
            if "small" in args.skip:
                break
            log(f"{side.name}: {args.small} x 4 KiB PUT/GET, {args.concurrency} clients")
            results[side.name]["small"] = small_objects(side, args.small, args.concurrency)
        # raw disk and each side's large object in turn, ``--large-rounds`` times: medians, so that
        # the figures share the machine's (varying) load
        raws: list[dict[str, float]] = []
        larges: dict[str, list[dict[str, float]]] = {side.name: [] for side in sides}
        for rnd in range(args.large_rounds):
            raws.append(raw_disk(work, args.large_mib))
            log(f"round {rnd + 1}: raw disk: {json.dumps(raws[-1])}")
            for side in sides:
                if "large" in args.skip:
                    break
                larges[side.name].append(large_object(side, args.large_mib))
                log(f"round {rnd + 1}: {side.name} {args.large_mib} MiB: {json.dumps(larges[side.name][-1])}")
        raw = _medians(raws)
        for side in sides:
            if larges[side.name]:
                results[side.name]["large"] = _medians(larges[side.name])
        for side in sides:
            if "listing" in args.skip:
                break
            log(f"{side.name}: listing of {args.listing} objects")
            results[side.name]["listing"] = listing(side, args.listing, args.concurrency)
        filled = []
        for side in sides:
            if "bulk" in args.skip:
                break
            log(f"{side.name}: container of {args.bulk_rows} rows filled in bulk (bypassing the API)")
            try:
                results[side.name]["bulk"] = bulk_fill(side, args.bulk_rows)
                filled.append(side)
            except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as exc:
                log(f"{side.name}: bulk listing not measured: {exc}")
                results[side.name]["bulk_error"] = str(exc)[:300]
        for label, query in BULK_QUERIES:  # each query on both sides in turn: the same machine load
            for side in filled:
                results[side.name]["bulk"]["queries"][label] = bulk_query(side, args.bulk_rows, label, query)
                log(f"{side.name}: {label}: {json.dumps(results[side.name]['bulk']['queries'][label])}")
        for side in sides:
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


def render(results: dict[str, dict[str, Any]], raw: dict[str, float], args: argparse.Namespace) -> str:
    k, s = results.get("kumo", {}), results.get("swift", {})

    def g(side: dict[str, Any], *path: str) -> float:
        cur: Any = side
        for p in path:
            if not isinstance(cur, dict) or p not in cur:
                return 0.0
            cur = cur[p]
        return float(cur)

    rows: list[tuple[str, float, float, bool]] = []
    for op in ("put", "get"):
        name = op.upper()
        rows += [
            (f"4 KiB {name} ops/s", g(k, "small", op, "rps"), g(s, "small", op, "rps"), True),
            (f"4 KiB {name} p50 ms", g(k, "small", op, "latency_ms", "p50"), g(s, "small", op, "latency_ms", "p50"), False),
            (f"4 KiB {name} p99 ms", g(k, "small", op, "latency_ms", "p99"), g(s, "small", op, "latency_ms", "p99"), False),
        ]  # fmt: skip
    rows += [
        (f"{args.large_mib} MiB PUT MB/s", g(k, "large", "put_mbs"), g(s, "large", "put_mbs"), True),
        (f"{args.large_mib} MiB GET MB/s (warm: right after the PUT)", g(k, "large", "get_mbs"),
         g(s, "large", "get_mbs"), True),
        (f"{args.large_mib} MiB GET MB/s (cold: the stored file evicted from the page cache)",
         g(k, "large", "get_cold_mbs"), g(s, "large", "get_cold_mbs"), True),
        (f"listing fill ({args.listing} empty PUTs via the API) ops/s", g(k, "listing", "fill_rps"),
         g(s, "listing", "fill_rps"), True),
        (f"listing of {args.listing}: first page (1,000 rows), p50 ms", g(k, "listing", "page_p50_ms"),
         g(s, "listing", "page_p50_ms"), False),
        (f"listing of {args.listing}: first page (1,000 rows), p99 ms", g(k, "listing", "page_p99_ms"),
         g(s, "listing", "page_p99_ms"), False),
    ]  # fmt: skip
    bulk_rows = int(g(k, "bulk", "filled") or g(s, "bulk", "filled") or args.bulk_rows)
    if k.get("bulk") or s.get("bulk"):
        rows.append((f"bulk fill of {bulk_rows:,} rows (broker, no API), s", g(k, "bulk", "fill_s"),
                     g(s, "bulk", "fill_s"), False))  # fmt: skip
        for label, _q in BULK_QUERIES:
            for pct in ("p50", "p99"):
                rows.append((f"{bulk_rows:,}-row container: {label}, {pct} ms", g(k, "bulk", "queries", label, pct),
                             g(s, "bulk", "queries", label, pct), False))  # fmt: skip
    rows += [
        ("RSS idle MiB", g(k, "rss_idle_mb"), g(s, "rss_idle_mb"), False),
        ("RSS after the run MiB", g(k, "rss_loaded_mb"), g(s, "rss_loaded_mb"), False),
    ]
    errors = {
        n: {sc: r.get("small", {}).get(sc, {}).get("errors") for sc in ("put", "get")}
        | {"bulk listing": {q: v.get("errors") for q, v in r.get("bulk", {}).get("queries", {}).items()}}
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
            else "not measured: kumo alone."
        ),  # fmt: skip
        f"{args.concurrency} concurrent clients (bench/load.py) for the 4 KiB figures.",
        f"Large object and raw disk: medians of {args.large_rounds} rounds, interleaved. "
        f"Raw disk in the same run, same file system: {raw.get('write_mbs', 0):.0f} MB/s write "
        f"(1 MiB writes, one fsync at the end, as an object PUT); read in 1 MiB reads: "
        f"{raw.get('read_mbs', 0):.0f} MB/s right after (warm, page cache), {raw.get('read_cold_mbs', 0):.0f} MB/s "
        f"after evicting the file's pages (cold, posix_fadvise DONTNEED on that file); one core's MD5 "
        f"(the ETag both sides compute on PUT and verify on a whole-object GET): {raw.get('md5_mbs', 0):.0f} MB/s.",
        f"The {bulk_rows:,}-row container is filled BYPASSING THE API: each side's own container broker "
        "(kumo: ContainerBroker.merge_items via bench/kumo_fill.py; Swift: swift.container.backend."
        "ContainerBroker.merge_items via bench/upstream/swift_fill.py) merges rows in batches of 20,000 "
        "into the container DB on the node's disk; the listing is then timed through the API "
        "(50 requests each, one client).",
        "",
        "| figure | kumo | swift | kumo vs swift |",
        "|---|---:|---:|---:|",
    ]
    for name, kv, sv, higher in rows:
        lines.append(f"| {name} | {kv:.1f} | {sv:.1f} | {ratio(kv, sv, higher)} |")
    if raw.get("write_mbs"):
        w, r = raw["write_mbs"], raw.get("read_mbs") or 0.0
        lines.append(f"| large PUT as % of raw disk write | {g(k, 'large', 'put_mbs') / w * 100:.0f}% | "
                     f"{g(s, 'large', 'put_mbs') / w * 100:.0f}% | goal 80% |")  # fmt: skip
        if r:
            lines.append(f"| large GET (warm) as % of raw warm read | {g(k, 'large', 'get_mbs') / r * 100:.0f}% | "
                         f"{g(s, 'large', 'get_mbs') / r * 100:.0f}% | |")  # fmt: skip
        cold = raw.get("read_cold_mbs") or 0.0
        if cold:
            lines.append(f"| large GET (cold) as % of raw cold read | {g(k, 'large', 'get_cold_mbs') / cold * 100:.0f}% | "
                         f"{g(s, 'large', 'get_cold_mbs') / cold * 100:.0f}% | |")  # fmt: skip
        md5 = raw.get("md5_mbs") or 0.0
        if md5:
            lines.append(f"| large PUT as % of one core's MD5 rate (the ceiling of one stream) | "
                         f"{g(k, 'large', 'put_mbs') / md5 * 100:.0f}% | {g(s, 'large', 'put_mbs') / md5 * 100:.0f}% | |")  # fmt: skip
    first = g(k, "bulk", "queries", BULK_QUERIES[0][0], "p50")
    if first:
        small = g(k, "bulk", "queries", BULK_QUERIES[1][0], "p50")
        lines += ["", f"Goal \"container listing of 1M objects, first page under 50 ms\": kumo first page p50 "
                  f"{first:.1f} ms at the default limit (10,000 rows), {small:.1f} ms at limit=1000."]  # fmt: skip
    for n, r in results.items():
        if r.get("bulk_error"):
            lines += ["", f"{n}: the bulk-filled listing was not measured: {r['bulk_error']}"]
    lines += ["", f"Request errors: {json.dumps(errors)}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
