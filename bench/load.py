#!/usr/bin/env python3
"""The one load generator used for every side of a kumo-vs-upstream benchmark.

Standard library only: asyncio streams speaking plain HTTP/1.1 with keep-alive,
one connection per concurrent worker.  It adds far less per-request overhead
than a general-purpose client (no URL parsing, header objects or cookie jars on
the hot path), which matters when the server under test answers in well under a
millisecond.  Run ``python3 bench/load.py --ceiling`` to see what it can push
against a trivial server on this machine.

It always runs in its own process.  Give it a JSON spec on stdin, it prints one
JSON result on stdout::

    {"host": "127.0.0.1", "port": 5000,
     "requests": [{"method": "GET", "path": "/v3", "headers": {...}, "body": null}],
     "count": 1000, "concurrency": 20, "warmup": 20, "max_seconds": 120}

``requests`` are used round-robin (e.g. a pool of tokens to validate).  Every
loop is bounded by ``count`` and ``max_seconds``; only loopback hosts are
accepted.  Non-2xx answers and transport errors count as errors and a few
samples of each are returned.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import subprocess
import sys
import time
from typing import Any

ERROR_SAMPLES = 5


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"load.py only targets loopback addresses, not {host!r}")


def _encode(req: dict[str, Any], host: str, port: int) -> bytes:
    body = req.get("body")
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    headers = {"Host": f"{host}:{port}", "Accept": "application/json", "User-Agent": "kumo-bench/1"}
    headers.update(req.get("headers") or {})
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
        headers["Content-Length"] = str(len(body))
    head = f"{req.get('method', 'GET')} {req['path']} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + (body or b"")


class _Conn:
    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.connects = 0
        self.reconnects_stale = 0

    async def ensure(self) -> None:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
            self.connects += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def roundtrip(self, raw: bytes) -> tuple[int, bytes]:
        """Send one request and read one response; returns (status, body).

        A kept-alive connection the server has meanwhile closed (it may close
        without saying ``Connection: close``) is reopened and the request sent
        once more, as any HTTP client does; a fresh connection is never retried.
        """
        if self.reader is not None and self.reader.at_eof():
            self.close()
        reused = self.writer is not None
        await self.ensure()
        assert self.reader is not None and self.writer is not None
        try:
            self.writer.write(raw)
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            self.close()
            self.reconnects_stale += 1
            await self.ensure()
            assert self.reader is not None and self.writer is not None
            self.writer.write(raw)
            head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = None
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if lines[0].startswith(b"HTTP/1.0"):
            close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size + 2))
            body = b"".join(p[:-2] for p in parts)
        elif length is not None:
            body = await self.reader.readexactly(length) if length else b""
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body = await self.reader.read()
            close = True
        if close:
            self.close()
        return status, body


def _percentile(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return float("nan")
    # nearest-rank
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


async def _run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec.get("host", "127.0.0.1"), int(spec["port"])
    _check_loopback(host)
    raws = [_encode(r, host, port) for r in spec["requests"]]
    count = int(spec["count"])
    conc = max(1, min(int(spec.get("concurrency", 1)), count))
    warmup = int(spec.get("warmup", conc))
    max_seconds = float(spec.get("max_seconds", 120))
    timeout = float(spec.get("timeout", 30))

    conns = [_Conn(host, port) for _ in range(conc)]
    lat_ns: list[int] = []
    statuses: dict[str, int] = {}
    samples: list[str] = []
    errors = 0
    next_i = 0
    deadline = 0.0
    truncated = False

    async def one(conn: _Conn, i: int, record: bool) -> None:
        nonlocal errors
        t0 = time.perf_counter_ns()
        try:
            status, body = await asyncio.wait_for(conn.roundtrip(raws[i % len(raws)]), timeout)
        except Exception as exc:  # noqa: BLE001 - any transport failure is an error sample
            conn.close()
            if record:
                errors += 1
                statuses["exc"] = statuses.get("exc", 0) + 1
                if len(samples) < ERROR_SAMPLES:
                    samples.append(f"{type(exc).__name__}: {exc}")
            return
        dt = time.perf_counter_ns() - t0
        if not record:
            return
        lat_ns.append(dt)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if not 200 <= status < 300:
            errors += 1
            if len(samples) < ERROR_SAMPLES:
                samples.append(f"{status}: {body[:200].decode('utf-8', 'replace')}")

    async def warm(conn: _Conn, n: int) -> None:
        for j in range(n):
            await one(conn, j, record=False)

    # Warm-up: open every connection and let both sides settle (not timed).
    per_conn = max(1, -(-warmup // conc)) if warmup else 0
    if per_conn:
        await asyncio.gather(*(warm(c, per_conn) for c in conns))

    async def worker(conn: _Conn) -> None:
        nonlocal next_i, truncated
        while next_i < count:
            if time.monotonic() > deadline:
                truncated = True
                return
            i = next_i
            next_i += 1
            await one(conn, i, record=True)

    deadline = time.monotonic() + max_seconds
    t_start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t_start
    for c in conns:
        c.close()

    ms = sorted(x / 1e6 for x in lat_ns)
    done = len(lat_ns) + statuses.get("exc", 0)
    return summarize(ms, done=done, errors=errors, elapsed=elapsed) | {
        "requested": count,
        "concurrency": conc,
        "error_samples": samples,
        "statuses": statuses,
        "truncated": truncated,
        "connects": sum(c.connects for c in conns),
        "stale_retries": sum(c.reconnects_stale for c in conns),
        "latencies_ms": ms if spec.get("raw") else None,
    }


def summarize(ms: list[float], *, done: int, errors: int, elapsed: float) -> dict[str, Any]:
    """Figures from sorted latencies (ms), request and error counts and wall time."""
    return {
        "count": done,
        "ok": done - errors,
        "errors": errors,
        "elapsed_s": elapsed,
        "rps": done / elapsed if elapsed > 0 else 0.0,
        "latency_ms": {
            "min": ms[0] if ms else float("nan"),
            "p50": _percentile(ms, 50),
            "p90": _percentile(ms, 90),
            "p99": _percentile(ms, 99),
            "max": ms[-1] if ms else float("nan"),
            "mean": sum(ms) / len(ms) if ms else float("nan"),
        },
    }


def run_in_subprocess(spec: dict[str, Any], python: str | None = None) -> dict[str, Any]:
    """Run one load spec in a fresh client process and return its result."""
    budget = float(spec.get("max_seconds", 120)) + float(spec.get("timeout", 30)) + 60
    proc = subprocess.run(
        [python or sys.executable, os.path.abspath(__file__)],
        input=json.dumps(spec).encode(),
        capture_output=True,
        timeout=budget,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load client failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return json.loads(proc.stdout)


# --- client ceiling: a trivial keep-alive server to load instead of a real one ---

_TRIVIAL = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


async def _trivial_server(port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
                writer.write(_TRIVIAL)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await asyncio.sleep(60)  # bounded: the ceiling run kills it long before


def _ceiling(count: int, concurrency: int) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-trivial", str(port)])
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        for c in (1, concurrency):
            res = run_in_subprocess(
                {"port": port, "requests": [{"path": "/"}], "count": count, "concurrency": c, "warmup": 50}
            )
            lat = res["latency_ms"]
            print(
                f"concurrency {c:3d}: {res['rps']:9.0f} req/s  p50 {lat['p50']:.3f} ms  "
                f"p99 {lat['p99']:.3f} ms  errors {res['errors']}"
            )
    finally:
        srv.kill()
        srv.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ceiling", action="store_true", help="measure this client against a trivial server")
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--serve-trivial", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_trivial:
        asyncio.run(_trivial_server(args.serve_trivial))
        return
    if args.ceiling:
        _ceiling(args.count, args.concurrency)
        return
    spec = json.load(sys.stdin)
    print(json.dumps(asyncio.run(_run(spec))))


if __name__ == "__main__":
    main()
