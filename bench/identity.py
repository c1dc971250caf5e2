#!/usr/bin/env python3
"""Identity benchmark: kumo vs upstream OpenStack Keystone, side by side, in one run.

Both servers run on this machine at the same time, on loopback, with the same
worker count and the same bcrypt cost, and are driven by the same load client
(bench/load.py, in its own process).  Scenarios alternate between the two sides
so both see the same machine noise.

    python3 bench/identity.py [--workers 1] [--rounds 4] [--quick] [--extra-rounds 12]

Prints a table (figure, kumo, keystone, ratio kumo/keystone, goal, met?) and
writes bench/results/identity-YYYY-MM-DD.md plus identity-latest.md (and .json).
Exit status: 0 when both sides ran without request errors, 1 if any run had
errors, 2 if a side could not be set up.  Goals not being met does not change
the exit status (use --strict for that).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from kumo_side import DEFAULT_KUMO, Kumo  # noqa: E402
from load import run_in_subprocess, summarize  # noqa: E402
from procs import http_json  # noqa: E402
from upstream.keystone import HTTP_MODES, Keystone  # noqa: E402

SUBJECT_POOL = 8  # distinct tokens validated round-robin


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- what both sides are asked ----------------------------------------------------


def auth_body(side) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": side.username,
                        "domain": {"id": side.domain_id},
                        "password": side.password,
                    }
                },
            },
            "scope": {"project": {"name": side.project, "domain": {"id": side.domain_id}}},
        }
    }


def issue_token(side) -> str:
    status, headers, body = http_json(side.port, "POST", f"{side.identity_path}/auth/tokens", auth_body(side))
    if status != 201 or "x-subject-token" not in headers:
        raise RuntimeError(f"{side.name}: token issue answered {status}: {body[:300]!r}")
    return headers["x-subject-token"]


def check_validate(side, admin: str, subject: str) -> None:
    status, _, body = http_json(
        side.port,
        "GET",
        f"{side.identity_path}/auth/tokens",
        headers={"X-Auth-Token": admin, "X-Subject-Token": subject},
    )
    if status != 200:
        raise RuntimeError(f"{side.name}: token validation answered {status}: {body[:300]!r}")
    token = json.loads(body)["token"]
    if not token.get("roles") or not token.get("project"):
        raise RuntimeError(f"{side.name}: validated token lacks roles/project: {body[:300]!r}")


class Prepared:
    """The request specs for one side (tokens issued beforehand)."""

    def __init__(self, side):
        self.side = side
        self.admin = issue_token(side)
        self.subjects = [issue_token(side) for _ in range(SUBJECT_POOL)]
        check_validate(side, self.admin, self.subjects[0])

    def spec(self, scenario: str, count: int, concurrency: int, warmup: int, max_seconds: float) -> dict:
        path = f"{self.side.identity_path}/auth/tokens"
        if scenario == "issue":
            reqs = [{"method": "POST", "path": path, "body": auth_body(self.side)}]
        else:
            reqs = [
                {"method": "GET", "path": path, "headers": {"X-Auth-Token": self.admin, "X-Subject-Token": s}}
                for s in self.subjects
            ]
        return {
            "host": "127.0.0.1",
            "port": self.side.port,
            "requests": reqs,
            "count": count,
            "concurrency": concurrency,
            "warmup": warmup,
            "max_seconds": max_seconds,
            "timeout": 60,
        }


# --- running -------------------------------------------------------------------------


def merge(parts: list[dict]) -> dict:
    """One result from the chunks of a scenario: pooled latencies, summed requests and time."""
    ms = sorted(x for p in parts for x in p["latencies_ms"])
    done = sum(p["count"] for p in parts)
    errors = sum(p["errors"] for p in parts)
    merged = summarize(ms, done=done, errors=errors, elapsed=sum(p["elapsed_s"] for p in parts))
    statuses: dict[str, int] = {}
    for p in parts:
        for k, v in p["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    merged.update(
        requested=sum(p["requested"] for p in parts),
        concurrency=parts[0]["concurrency"],
        statuses=statuses,
        error_samples=[x for p in parts for x in p["error_samples"]][:5],
        truncated=any(p["truncated"] for p in parts),
        chunks=len(parts),
        connects=sum(p["connects"] for p in parts),
        stale_retries=sum(p["stale_retries"] for p in parts),
        chunk_rps=[round(p["rps"], 1) for p in parts],
    )
    return merged


def run_scenarios(
    sides: dict[str, Prepared], plan: list[tuple[str, str, int, int, int]], max_seconds: float, chunks: int
) -> dict[str, dict[str, dict]]:
    """plan: (key, scenario, count, concurrency, warmup).

    Each scenario is cut into `chunks` parts run alternately on the two sides
    (A B B A A B ...) so that both see the same machine noise; the parts are then
    pooled.  The time bound applies to a scenario as a whole.
    """
    out: dict[str, dict[str, dict]] = {name: {} for name in sides}
    names = list(sides)
    for i, (key, scenario, count, conc, warmup) in enumerate(plan):
        n = max(1, min(chunks, count // max(conc, 1)))
        sizes = [count // n + (1 if j < count % n else 0) for j in range(n)]
        parts: dict[str, list[dict]] = {name: [] for name in names}
        for j, size in enumerate(sizes):
            order = names if (i + j) % 2 == 0 else names[::-1]
            for name in order:
                spent = sum(p["elapsed_s"] for p in parts[name])
                if spent >= max_seconds:
                    parts[name][-1]["truncated"] = True
                    continue
                spec = sides[name].spec(scenario, size, conc, warmup, max_seconds - spent)
                spec["raw"] = True
                parts[name].append(run_in_subprocess(spec))
        for name in names:
            res = out[name][key] = merge(parts[name])
            res["requested"] = count
            lat = res["latency_ms"]
            flag = f"  ERRORS {res['errors']}: {res['error_samples'][:1]}" if res["errors"] else ""
            flag += "  TRUNCATED (time bound)" if res["truncated"] else ""
            log(
                f"{key:<14} {name:<8} {res['rps']:8.1f} req/s  p50 {lat['p50']:8.2f} ms  "
                f"p99 {lat['p99']:8.2f} ms  n={res['count']} c={conc} chunks={res['chunk_rps']}{flag}"
            )
    return out


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass

    def git(*args: str) -> str:
        p = subprocess.run(
            ["git", "-C", str(BENCH.parent), *args], capture_output=True, text=True, check=False
        )
        return p.stdout.strip() if p.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "no commit yet"
    if git("status", "--porcelain", "--", "kumo", "pyproject.toml"):
        commit += " (+ uncommitted changes in kumo/)"
    kumo_py = subprocess.run(
        [str(DEFAULT_KUMO.parent / "python"), "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_gb, 1),
        "os": platform.platform(),
        "python_client": platform.python_version(),
        "python_kumo": kumo_py or "?",
        "kumo_commit": commit,
        "loadavg_at_start": os.getloadavg(),
    }


# --- report --------------------------------------------------------------------------


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit == "ms":
        return f"{v:.2f} ms"
    if unit == "req/s":
        return f"{v:,.0f} req/s" if v >= 100 else f"{v:.1f} req/s"
    if unit == "s":
        return f"{v:.2f} s"
    if unit == "MB":
        return f"{v:.0f} MB"
    return f"{v}"


def build_rows(r: dict[str, Any], conc: int) -> list[dict[str, Any]]:
    k, u = r["runs"].get("kumo", {}), r["runs"].get("keystone", {})
    rows: list[dict[str, Any]] = []

    def lat(key: str, label: str, pct: str) -> None:
        a, b = k.get(key), u.get(key)
        rows.append(
            {
                "figure": f"{label} {pct}",
                "unit": "ms",
                "better": "lower",
                "kumo": a["latency_ms"][pct] if a else None,
                "keystone": b["latency_ms"][pct] if b else None,
                "errors": bool((a and a["errors"]) or (b and b["errors"])),
            }
        )

    def rps(key: str, label: str, goal: float | None) -> None:
        a, b = k.get(key), u.get(key)
        rows.append(
            {
                "figure": label,
                "unit": "req/s",
                "better": "higher",
                "kumo": a["rps"] if a else None,
                "keystone": b["rps"] if b else None,
                "goal_ratio": goal,
                "errors": bool((a and a["errors"]) or (b and b["errors"])),
            }
        )

    lat("issue_seq", "token issue latency, sequential", "p50")
    lat("issue_seq", "token issue latency, sequential", "p99")
    lat("validate_seq", "token validate latency, sequential", "p50")
    lat("validate_seq", "token validate latency, sequential", "p99")
    rps("issue_conc", f"token issue throughput, {conc} concurrent", 2.0)
    rps("validate_conc", f"token validate throughput, {conc} concurrent", 10.0)
    lat("issue_conc", f"token issue latency, {conc} concurrent", "p99")
    lat("validate_conc", f"token validate latency, {conc} concurrent", "p99")
    for extra in r.get("extra", []):
        n = extra["rounds"]
        ek, eu = extra["runs"].get("kumo", {}), extra["runs"].get("keystone", {})
        for key, label in (("issue_seq", f"token issue latency p50, bcrypt {n}"),):
            rows.append(
                {
                    "figure": label,
                    "unit": "ms",
                    "better": "lower",
                    "kumo": ek[key]["latency_ms"]["p50"] if key in ek else None,
                    "keystone": eu[key]["latency_ms"]["p50"] if key in eu else None,
                    "errors": any(x.get(key, {}).get("errors") for x in (ek, eu)),
                }
            )
        a, b = ek.get("issue_conc"), eu.get("issue_conc")
        rows.append(
            {
                "figure": f"token issue throughput, bcrypt {n}, {extra['concurrency']} concurrent",
                "unit": "req/s",
                "better": "higher",
                "kumo": a["rps"] if a else None,
                "keystone": b["rps"] if b else None,
                "errors": bool((a and a["errors"]) or (b and b["errors"])),
            }
        )
    s = r["startup"]
    ks_setup, ks_ready = s["keystone"].get("setup_s"), s["keystone"].get("ready_s")
    rows.append(
        {
            "figure": "time to ready from an empty data dir (kumo up / keystone-manage + uWSGI)",
            "unit": "s",
            "better": "lower",
            "kumo": s["kumo"].get("ready_s"),
            "keystone": ks_setup + ks_ready if ks_setup is not None and ks_ready is not None else None,
            "goal_abs": ("<", 3.0),
        }
    )
    rows.append(
        {
            "figure": "time to ready on existing state (kumo restart / uWSGI start)",
            "unit": "s",
            "better": "lower",
            "kumo": s["kumo"].get("restart_ready_s"),
            "keystone": ks_ready,
        }
    )
    rows.append(
        {
            "figure": "idle RSS after start, process tree",
            "unit": "MB",
            "better": "lower",
            "kumo": s["kumo"].get("idle_rss_mb"),
            "keystone": s["keystone"].get("idle_rss_mb"),
            "goal_abs": ("<", 200.0),
        }
    )
    rows.append(
        {
            "figure": "RSS after the load runs, process tree",
            "unit": "MB",
            "better": "lower",
            "kumo": s["kumo"].get("rss_after_mb"),
            "keystone": s["keystone"].get("rss_after_mb"),
        }
    )

    for row in rows:
        a, b = row.get("kumo"), row.get("keystone")
        row["ratio"] = a / b if a is not None and b else None
        met = None
        if row.get("goal_ratio") is not None and row["ratio"] is not None:
            row["goal"] = f"≥{row['goal_ratio']:g}× keystone"
            met = row["ratio"] >= row["goal_ratio"]
        elif row.get("goal_abs") and a is not None:
            op, lim = row["goal_abs"]
            row["goal"] = f"{op} {lim:g} {row['unit']}"
            met = a < lim
        row["met"] = met
        if row.get("errors"):
            row["met"] = False if met is not None else None
    return rows


def table_lines(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["figure", "kumo", "keystone", "kumo/keystone", "goal", "met?"]
    body = []
    for row in rows:
        ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}×"
        met = {True: "yes", False: "NO", None: ""}[row["met"]]
        fig = row["figure"] + (" (ERRORS)" if row.get("errors") else "")
        body.append(
            [
                fig,
                fmt(row.get("kumo"), row["unit"]),
                fmt(row.get("keystone"), row["unit"]),
                ratio,
                row.get("goal", ""),
                met,
            ]
        )
    return head, body


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    head, body = table_lines(rows)
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title)
        for i, h in enumerate(head):
            t.add_column(h, justify="left" if i == 0 else "right")
        for line in body:
            t.add_row(*line)
        Console().print(t)
    except ImportError:
        widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
        print(title)
        print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
        print("  ".join("-" * w for w in widths))
        for line in body:
            print(
                "  ".join(
                    (c.ljust(w) if i == 0 else c.rjust(w))
                    for i, (c, w) in enumerate(zip(line, widths, strict=True))
                )
            )


def markdown(r: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    m, c = r["machine"], r["config"]
    head, body = table_lines(rows)
    out = [f"# Identity benchmark: kumo vs upstream Keystone — {r['date']}", ""]
    if m["loadavg_at_start"][0] > (m["cores"] or 1) * 0.5:
        out += [
            f"> Machine busy during this run (load average {m['loadavg_at_start'][0]:.1f} on {m['cores']} "
            "cores at start): absolute figures are noisy; ratios less so, as the sides alternate.",
            "",
        ]
    if r.get("problems"):
        out += ["**Problems in this run:**", ""] + [f"- {p}" for p in r["problems"]] + [""]
    out += ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    out += ["| " + " | ".join(x.replace("|", "\\|") for x in line) + " |" for line in body]
    out += [
        "",
        "Ratio is kumo/keystone: above 1 is better for throughput, below 1 is better for latency, "
        "time and memory.",
        "",
        "## Setup",
        "",
        f"- kumo: {c['kumo']}",
        f"- upstream: {c['keystone']}",
        f"- workers: {c['workers']} on each side; both servers up at the same time on 127.0.0.1",
        f"- password hash: bcrypt, {c['rounds']} rounds on both sides (lowered from the default 12 so "
        "that bcrypt does not dominate the issue figures)"
        + (
            f"; extra issue runs at {', '.join(str(x) for x in c['extra_rounds'])} rounds"
            if c["extra_rounds"]
            else ""
        ),
        f"- load: bench/load.py (asyncio, raw HTTP/1.1 keep-alive, own process); sequential runs "
        f"{c['seq']} requests, concurrent runs {c['conc_n']} requests over {c['concurrency']} connections; "
        f"warm-up requests before each run are not counted; non-2xx answers count as errors; each scenario is "
        f"cut into {c['chunks']} parts run alternately on the two sides (A B B A ...) and pooled, so both share "
        "the machine's noise",
        "- token issue: POST /v3/auth/tokens, password method, project-scoped (admin/admin, Default domain)",
        f"- token validation: GET /v3/auth/tokens, X-Auth-Token an admin token, X-Subject-Token one of "
        f"{SUBJECT_POOL} project-scoped tokens round-robin",
        "- time to ready: from starting the process to the first 200 from GET /identity/v3 (kumo) or GET /v3 "
        "(keystone). From an empty data dir: `kumo up` (migrations and bootstrap included, after one untimed "
        "priming start so bytecode and page cache are warm) against keystone-manage db_sync, fernet_setup, "
        "credential_setup (those three in parallel) and bootstrap plus the uWSGI start. On existing state: kumo "
        "restarted on its data dir against the uWSGI start alone",
        "- RSS: sum of VmRSS over the server's process tree once it is idle",
        "- keystone runs as its install guide sets it up, without a cache; `--keystone-cache memory` turns on "
        "oslo.cache with the in-process dogpile memory backend (an upper bound for what memcached would give)",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_gb']} GB; {m['os']}",
        f"- Python: client {m['python_client']}, kumo {m['python_kumo']}, keystone venv {c.get('keystone_python', '?')}",
        f"- kumo commit: {m['kumo_commit']}",
        f"- load average (1, 5, 15 min) at start: {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}; at end: "
        f"{', '.join(f'{x:.2f}' for x in m.get('loadavg_at_end', ()))} (shared machine: anything well above 0 "
        "means other work competed with both sides)",
        f"- wall time of the run: {r.get('wall_s', 0):.0f} s",
        "",
        "## Command",
        "",
        f"    {r['command']}",
        "",
    ]
    spread = []
    for key in ("issue_seq", "validate_seq", "issue_conc", "validate_conc"):
        cells = [
            f"{side}: {', '.join(f'{x:g}' for x in runs[key]['chunk_rps'])}"
            for side, runs in r["runs"].items()
            if key in runs
        ]
        if cells:
            spread.append(f"- {key}: " + "; ".join(cells))
    if spread:
        out += ["## Throughput of each part (req/s), in run order", "", *spread, ""]
    errs = []
    for side, runs in r["runs"].items():
        for key, res in runs.items():
            if res.get("errors"):
                errs.append(
                    f"- {side} {key}: {res['errors']} errors of {res['count']}; statuses {res['statuses']}; "
                    f"samples: {res['error_samples']}"
                )
    if errs:
        out += ["## Request errors", ""] + errs + [""]
    return "\n".join(out) + "\n"


# --- main ----------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description="kumo vs upstream Keystone, side by side.")
    ap.add_argument("--workers", type=int, default=1, help="worker processes on each side (default 1)")
    ap.add_argument("--rounds", type=int, default=4, help="bcrypt rounds on both sides (default 4)")
    ap.add_argument(
        "--extra-rounds",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also run the issue scenarios at N bcrypt rounds (e.g. 12); repeatable",
    )
    ap.add_argument("--quick", action="store_true", help="fewer requests (whole run well under a minute)")
    ap.add_argument("--seq", type=int, help="requests per sequential run (default 200, quick 50)")
    ap.add_argument("--requests", type=int, help="requests per concurrent run (default 1000, quick 100)")
    ap.add_argument("--concurrency", type=int, default=20, help="connections in concurrent runs (default 20)")
    ap.add_argument(
        "--max-seconds", type=float, default=75, help="time bound for one scenario on one side (default 75)"
    )
    ap.add_argument(
        "--chunks", type=int, help="parts each scenario is cut into, alternating sides (default 4, quick 2)"
    )
    ap.add_argument("--only", choices=["kumo", "keystone"], help="run one side only (no ratios)")
    ap.add_argument(
        "--kumo", type=Path, default=DEFAULT_KUMO, help=f"kumo executable (default {DEFAULT_KUMO})"
    )
    ap.add_argument(
        "--keystone-http",
        choices=HTTP_MODES,
        default="socket",
        help="uWSGI front end for keystone (default socket: --http-socket, a connection per request)",
    )
    ap.add_argument(
        "--keystone-cache", choices=["memory"], help="turn on keystone's oslo.cache in-process backend"
    )
    ap.add_argument("--results", type=Path, default=BENCH / "results", help="where to write the report")
    ap.add_argument("--no-write", action="store_true", help="print only, write no report")
    ap.add_argument("--strict", action="store_true", help="exit 3 when a goal is not met")
    args = ap.parse_args()

    seq = args.seq or (50 if args.quick else 200)
    conc_n = args.requests or (100 if args.quick else 1000)
    conc = args.concurrency
    chunks = args.chunks or (2 if args.quick else 4)
    t_run = time.perf_counter()
    want = [args.only] if args.only else ["kumo", "keystone"]
    load1 = os.getloadavg()[0]
    if load1 > (os.cpu_count() or 1) * 0.5:
        log(
            f"warning: load average {load1:.1f} on {os.cpu_count()} cores: other work is running, "
            "figures will be noisy (ratios less so, as both sides share it)"
        )
    report: dict[str, Any] = {
        "date": dt.date.today().isoformat(),
        "command": " ".join(["python3", "bench/identity.py", *sys.argv[1:]]),
        "machine": machine(),
        "runs": {},
        "extra": [],
        "problems": [],
        "startup": {"kumo": {}, "keystone": {}},
    }
    sides: dict[str, Any] = {}
    status = 0
    try:
        # -- start both sides ------------------------------------------------------
        if "keystone" in want:
            log("keystone: venv, config, db_sync, fernet keys, bootstrap ...")
            ks = sides["keystone"] = Keystone(
                workers=args.workers,
                rounds=args.rounds,
                cache=args.keystone_cache,
                http_mode=args.keystone_http,
                log=log,
            )
            ks.setup()
            ks.start()
            rss, nproc = ks.idle_rss_mb()
            report["startup"]["keystone"] = {
                "setup_s": ks.setup_s,
                "ready_s": ks.ready_s,
                "idle_rss_mb": rss,
                "processes": nproc,
            }
            log(
                f"keystone: setup {ks.setup_s:.1f} s, ready {ks.ready_s:.2f} s, idle RSS {rss:.0f} MB "
                f"({nproc} processes) on :{ks.port}"
            )
        if "kumo" in want:
            km = sides["kumo"] = Kumo(workers=args.workers, rounds=args.rounds, kumo_bin=args.kumo, log=log)
            prime = km.start()  # untimed priming start: bytecode and page cache warm
            km.cleanup()
            km.start(fresh=True)
            rss, nproc = km.idle_rss_mb()
            report["startup"]["kumo"] = {
                "prime_ready_s": prime,
                "ready_s": km.ready_s,
                "idle_rss_mb": rss,
                "processes": nproc,
            }
            log(
                f"kumo: ready {km.ready_s:.2f} s (priming start {prime:.2f} s), idle RSS {rss:.0f} MB "
                f"({nproc} processes) on :{km.port}"
            )

        prepared = {name: Prepared(sides[name]) for name in want}
        log("both sides issue and validate tokens; running scenarios ...")
        plan = [
            ("issue_seq", "issue", seq, 1, 5),
            ("validate_seq", "validate", seq, 1, 10),
            ("issue_conc", "issue", conc_n, conc, conc),
            ("validate_conc", "validate", conc_n, conc, conc),
        ]
        report["runs"] = run_scenarios(prepared, plan, args.max_seconds, chunks)

        for name in want:
            rss, _ = sides[name].idle_rss_mb()
            report["startup"][name]["rss_after_mb"] = rss
        if "kumo" in want:
            km = sides["kumo"]
            km.stop()
            km.start(fresh=False)
            report["startup"]["kumo"]["restart_ready_s"] = km.ready_s
            log(f"kumo: restart on existing data dir ready in {km.ready_s:.2f} s")

        # -- optional runs at another bcrypt cost (fresh state on both sides) --------
        for n in args.extra_rounds:
            for s in sides.values():
                s.cleanup()
            log(f"restarting both sides with bcrypt {n} rounds ...")
            if "keystone" in want:
                sides["keystone"] = Keystone(
                    workers=args.workers,
                    rounds=n,
                    cache=args.keystone_cache,
                    http_mode=args.keystone_http,
                    log=log,
                )
                sides["keystone"].setup()
                sides["keystone"].start()
            if "kumo" in want:
                sides["kumo"] = Kumo(workers=args.workers, rounds=n, kumo_bin=args.kumo, log=log)
                sides["kumo"].start()
            prepared = {name: Prepared(sides[name]) for name in want}
            c = min(conc, 4)
            runs = run_scenarios(
                prepared,
                [
                    ("issue_seq", "issue", max(10, seq // 10), 1, 2),
                    ("issue_conc", "issue", max(20, conc_n // 25), c, c),
                ],
                args.max_seconds,
                chunks,
            )
            report["extra"].append({"rounds": n, "concurrency": c, "runs": runs})
    except Exception as exc:  # noqa: BLE001 - report what broke, still write what we have
        traceback.print_exc()
        report["problems"].append(f"run aborted: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        status = 2
    finally:
        for s in sides.values():
            try:
                s.cleanup()
            except Exception:  # noqa: BLE001
                traceback.print_exc()

    ks = sides.get("keystone")
    km = sides.get("kumo")
    report["config"] = {
        "workers": args.workers,
        "rounds": args.rounds,
        "extra_rounds": args.extra_rounds,
        "seq": seq,
        "conc_n": conc_n,
        "concurrency": conc,
        "chunks": chunks,
        "kumo": km.describe() if km else "not run",
        "keystone": ks.describe() if ks else "not run",
        "keystone_python": subprocess.run(
            [str(ks.bin / "python"), "-c", "import platform;print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if ks
        else "?",
    }
    report["wall_s"] = time.perf_counter() - t_run
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    for side, runs in report["runs"].items():
        for key, res in runs.items():
            if res.get("errors"):
                report["problems"].append(f"{side} {key}: {res['errors']} request errors of {res['count']}")
                status = max(status, 1)
            if res.get("truncated"):
                report["problems"].append(
                    f"{side} {key}: stopped by the {args.max_seconds:g} s time bound after "
                    f"{res['count']} of {res['requested']} requests"
                )

    rows = build_rows(report, conc) if report["runs"] else []
    title = (
        f"identity: kumo vs keystone — {args.workers} worker(s) each, bcrypt {args.rounds} rounds, "
        f"{conc} concurrent"
    )
    if rows:
        print_table(rows, title)
    for p in report["problems"]:
        print(f"problem: {p}")
    if not args.no_write and rows:
        args.results.mkdir(parents=True, exist_ok=True)
        md = markdown(report, rows)
        dated = args.results / f"identity-{report['date']}.md"
        dated.write_text(md)
        (args.results / "identity-latest.md").write_text(md)
        (args.results / "identity-latest.json").write_text(
            json.dumps({**report, "rows": rows}, indent=1) + "\n"
        )
        print(
            f"wrote {dated.relative_to(BENCH.parent) if dated.is_relative_to(BENCH.parent) else dated} "
            f"and identity-latest.md"
        )
    if args.strict and any(r["met"] is False for r in rows):
        status = max(status, 3)
    return status


if __name__ == "__main__":
    sys.exit(main())
