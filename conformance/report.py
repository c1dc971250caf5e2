"""The conformance report: failures grouped with the requests that caused them, the interop
guideline status, the markdown page, and the gate against the baseline.

Standard library only (run.py imports it; conformance/test_summarize.py tests it)."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def log(msg: str) -> None:
    print(f"[conformance] {msg}", flush=True)


def _md_escape(text: str) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


_ID_RE = re.compile(
    r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|[0-9a-f]{16,}|0x[0-9a-f]+|tempest-[\w-]+",
    re.IGNORECASE,
)
_REQUEST_RE = re.compile(r"Request \((?P<who>[^)]*)\): (?P<status>\d{3}) (?P<method>[A-Z]+) (?P<url>\S+)")


def normalize_ids(text: str) -> str:
    """Replace uuids, hex ids and tempest's random resource names by placeholders."""
    return _ID_RE.sub("<id>", text or "")


def _iter_requests(tempest_log: Path):
    try:
        with open(tempest_log, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                m = _REQUEST_RE.search(line)
                if m:
                    yield m
    except OSError:
        return


def _request_key(m: re.Match) -> str:
    parts = urllib.parse.urlsplit(m.group("url"))
    path = normalize_ids(parts.path) + ("?" + normalize_ids(parts.query) if parts.query else "")
    return f"{m.group('status')} {m.group('method')} {path}"


def attach_failed_requests(tests: list[dict], tempest_log: Path) -> None:
    """Give each failed test the last 4xx/5xx answer its own requests got (from tempest's log).

    Tempest logs requests as "Request (Class:test_method): 404 GET url"; class fixtures log
    as "Class:setUpClass".  Negative tests expect some 4xx, so this is a hint, not a verdict.
    """
    last: dict[str, str] = {}
    for m in _iter_requests(tempest_log):
        if int(m.group("status")) >= 400:
            last[m.group("who")] = _request_key(m)
    for t in tests:
        if t["status"] != "fail":
            continue
        name = t["name"]
        if " (" in name:  # "tempest.api...Class (setUpClass)": the fixture itself
            who = f"{name.split(' (')[0].rsplit('.', 1)[-1]}:{t['fixture']}"
        elif t.get("fixture"):  # a test failed by its class fixture
            who = f"{name.rsplit('.', 2)[-2]}:{t['fixture']}"
        else:
            who = ":".join(name.rsplit(".", 2)[-2:])
        if who in last:
            t["failed_request"] = last[who]


def group_failures(tests: list[dict]) -> list[dict]:
    """Failures grouped by (id-normalized) error line and failed request, biggest group first."""
    groups: dict[str, dict] = {}
    for t in tests:
        if t["status"] != "fail":
            continue
        error = normalize_ids(t.get("error", ""))
        request = t.get("failed_request", "")
        key = error + "\0" + request
        g = groups.setdefault(key, {"error": error, "request": request, "count": 0, "examples": []})
        g["count"] += 1
        if len(g["examples"]) < 3:
            g["examples"].append(t["name"])
    return sorted(groups.values(), key=lambda g: (-g["count"], g["error"]))


def server_errors(tempest_log: Path) -> list[dict]:
    """5xx answers seen by tempest (from its request log), grouped by method and path."""
    groups: dict[str, dict] = {}
    for m in _iter_requests(tempest_log):
        if not m.group("status").startswith("5"):
            continue
        key = _request_key(m)
        g = groups.setdefault(key, {"request": key, "count": 0, "first_seen_in": m.group("who")})
        g["count"] += 1
    return sorted(groups.values(), key=lambda g: (-g["count"], g["request"]))


INTEROP_CANDIDATES = (
    REPO.parent / "shared" / "interop-2020.06-required-tests.json",
    HERE / "interop-2020.06-required-tests.json",
)


def interop_status(tests: list[dict], services: list[str], path: Path | None) -> dict | None:
    """How the interop guideline's required tests of the requested services fared."""
    if path is None:
        path = next((p for p in INTEROP_CANDIDATES if p.exists()), None)
    if path is None or not path.exists():
        return None
    doc = json.loads(path.read_text())
    by_name = {t["name"]: t for t in tests}
    out: dict = {
        "guideline": f"{doc.get('guideline', '?')} {doc.get('platform', '')}".strip(),
        "services": {},
        "not_passed": [],
    }
    for name, meta in sorted(doc.get("tests", {}).items()):
        service = name.split(".")[2] if name.count(".") >= 3 else ""
        if service not in services:
            continue
        t = by_name.get(name)
        status = t["status"] if t else "notrun"
        counts = out["services"].setdefault(
            service, {"required": 0, "passed": 0, "failed": 0, "skipped": 0, "notrun": 0}
        )
        counts["required"] += 1
        counts[{"success": "passed", "fail": "failed", "skip": "skipped"}.get(status, "notrun")] += 1
        if status != "success":
            out["not_passed"].append(
                {
                    "name": name,
                    "status": status,
                    "capability": meta.get("capability", ""),
                    "flagged": bool(meta.get("flagged")),
                    "detail": (t or {}).get("error") or (t or {}).get("reason") or "",
                }
            )
    return out


def _short(test_name: str) -> str:
    """``tempest.api.x.mod.Class.test_y`` -> ``Class.test_y``."""
    if " (" in test_name:
        return test_name.rsplit(".", 1)[-1]
    return ".".join(test_name.rsplit(".", 2)[-2:])


def render_markdown(report: dict) -> str:
    lines = [
        "# kumo Tempest conformance results",
        "",
        f"- date: {report['date']}",
        f"- kumo commit: {report['kumo_commit']}",
        f"- tempest: {report['tempest_version']}",
        f"- duration: {report['duration_s']:.0f} s",
        f"- services: {', '.join(report['services_requested'])}",
        f"- regex: `{report['regex']}`",
        "",
        "| service | passed | failed | skipped | total |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in report["services"].items():
        lines.append(f"| {name} | {s['passed']} | {s['failed']} | {s['skipped']} | {s['total']} |")
    t = report["totals"]
    lines.append(
        f"| **total** | **{t['passed']}** | **{t['failed']}** | **{t['skipped']}** | **{t['total']}** |"
    )
    if report.get("gate"):
        lines += ["", f"Gate: **{report['gate']['verdict']}**"]
        for line in report["gate"]["lines"]:
            lines.append(f"- {line}")
    interop = report.get("interop")
    if interop and interop["services"]:
        lines += [
            "",
            f"## Interop guideline {interop['guideline']}: required tests",
            "",
            "| service | required | passed | failed | skipped | not run |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, c in interop["services"].items():
            lines.append(
                f"| {name} | {c['required']} | {c['passed']} | {c['failed']} | {c['skipped']} | {c['notrun']} |"
            )
        if interop["not_passed"]:
            lines += ["", "| required test not passed | status | capability | detail |", "|---|---|---|---|"]
            for t in interop["not_passed"]:
                flag = " (flagged)" if t["flagged"] else ""
                lines.append(
                    f"| `{_short(t['name'])}` | {t['status']} | {t['capability']}{flag} | "
                    f"{_md_escape(t['detail'])} |"
                )
    causes = report.get("failure_causes") or []
    if causes:
        lines += [
            "",
            "## Failure causes",
            "",
            "Failures grouped by error line and by the last 4xx/5xx answer the test's own requests got",
            "(from tempest's log; ids replaced by `<id>`).",
            "",
            "| count | error | last failed request | example tests |",
            "|---:|---|---|---|",
        ]
        for g in causes:
            examples = "<br>".join(f"`{_short(e)}`" for e in g["examples"])
            req = f"`{_md_escape(g['request'])}`" if g.get("request") else ""
            lines.append(f"| {g['count']} | {_md_escape(g['error'])} | {req} | {examples} |")
    errors_5xx = report.get("server_errors") or []
    if errors_5xx:
        lines += [
            "",
            "## Server errors (5xx) seen by tempest",
            "",
            "| count | answer and request | first seen in |",
            "|---:|---|---|",
        ]
        for g in errors_5xx:
            lines.append(
                f"| {g['count']} | `{_md_escape(g['request'])}` | {_md_escape(g['first_seen_in'])} |"
            )
    setup_failures = [f for f in report.get("class_fixtures", []) if f["status"] == "fail"]
    if setup_failures:
        lines += [
            "",
            "## Class fixture failures",
            "",
            "A failed `setUpClass` fails every test of its class (counted above as failures).",
            "",
            "| class | fixture | tests affected | error |",
            "|---|---|---:|---|",
        ]
        for f in setup_failures:
            lines.append(f"| `{f['class']}` | {f['fixture']} | {f['affected']} | {_md_escape(f['error'])} |")
    for service in report["services"]:
        fails = [x for x in report["tests"] if x["service"] == service and x["status"] == "fail"]
        skips = [x for x in report["tests"] if x["service"] == service and x["status"] == "skip"]
        if fails:
            lines += [
                "",
                f"## {service}: failures ({len(fails)})",
                "",
                "| test | error | last failed request |",
                "|---|---|---|",
            ]
            for x in fails:
                req = f"`{_md_escape(x['failed_request'])}`" if x.get("failed_request") else ""
                lines.append(f"| `{x['name']}` | {_md_escape(x.get('error', ''))} | {req} |")
        if skips:
            lines += ["", f"## {service}: skips ({len(skips)})", "", "| test | reason |", "|---|---|"]
            for x in skips:
                lines.append(f"| `{x['name']}` | {_md_escape(x.get('reason', ''))} |")
    return "\n".join(lines) + "\n"


def gate(
    summary_services: dict, services: list[str], baseline_path: Path, total: int
) -> tuple[bool, list[str]]:
    lines: list[str] = []
    ok = True
    if total == 0:
        return False, ["the run produced no test results"]
    try:
        baseline = json.loads(baseline_path.read_text())
    except FileNotFoundError:
        return False, [f"baseline {baseline_path} not found (create it with --update-baseline)"]
    for service in services:
        passed = summary_services.get(service, {}).get("passed", 0)
        want = (baseline.get(service) or {}).get("passed")
        if want is None:
            lines.append(f"{service}: {passed} passed (no baseline)")
            continue
        if passed < want:
            ok = False
            lines.append(f"{service}: {passed} passed < baseline {want}  REGRESSION")
        elif passed > want:
            lines.append(f"{service}: {passed} passed > baseline {want}  (improved: run --update-baseline)")
        else:
            lines.append(f"{service}: {passed} passed = baseline {want}")
    return ok, lines


def update_baseline(path: Path, summary_services: dict, services: list[str]) -> None:
    try:
        baseline = json.loads(path.read_text())
    except FileNotFoundError:
        baseline = {}
    for service in services:
        baseline[service] = {"passed": summary_services.get(service, {}).get("passed", 0)}
    path.write_text(json.dumps(dict(sorted(baseline.items())), indent=2) + "\n")
    log(f"baseline updated: {path}")
