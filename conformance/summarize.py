#!/usr/bin/env python3
"""Summarize a Tempest subunit v2 stream into per-service results.

Runs with the conformance venv's python (it needs the ``subunit`` and
``testtools`` packages that Tempest installs).  A run is judged from the
stream, never from ``tempest run``'s exit code.

    python summarize.py STREAM.subunit [--out summary.json]

Output (JSON)::

    {"services": {"identity": {"passed": N, "failed": N, "skipped": N, "total": N}},
     "tests": [{"id", "name", "service", "status", "error"|"reason", "fixture"}],
     "class_fixtures": [{"class", "fixture", "service", "error", "affected"}],
     "totals": {...}}

Rules:
* only ids under ``tempest.api.<group>.`` count; ``<group>`` is mapped to a
  service name with GROUP_TO_SERVICE;
* a ``setUpClass (tempest.api.X.Class)`` failure (or skip) is applied to each
  test of that class that has no result of its own: those tests count as
  failed (or skipped), with the class fixture named in the record.  When the
  stream lists no test of that class, the fixture counts as one failed test;
* a ``tearDownClass`` failure is listed, and counts as one extra failure,
  because its tests already reported their own results.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

# tempest.api.<group> -> service name used by the harness and the baseline.
GROUP_TO_SERVICE = {
    "identity": "identity",
    "compute": "compute",
    "image": "image",
    "network": "network",
    "volume": "volume",
    "object_storage": "object_storage",
}

_FIXTURE_RE = re.compile(
    r"^(?P<fixture>setUpClass|tearDownClass|setUpModule|tearDownModule)\s+\((?P<target>[^)]+)\)\s*$"
)
_ATTRS_RE = re.compile(r"\[[^\]]*\]$")
# An exception line at column 0: "pkg.mod.SomeError: message" or "SomeError" alone.
_EXC_LINE_RE = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")
_NOT_EXC_PREFIXES = (
    "Traceback",
    "During handling",
    "The above exception",
    "File ",
    "Details",
    "Body",
    "Response",
)

SUCCESS = "success"
FAIL = "fail"
SKIP = "skip"


def strip_attrs(test_id: str) -> str:
    """Drop tempest's ``[id-...,smoke]`` suffix."""
    return _ATTRS_RE.sub("", test_id)


def service_of(test_id: str) -> str | None:
    """Map a (possibly fixture-less) test or class id to its service, or None."""
    parts = test_id.split(".")
    if len(parts) < 3 or parts[0] != "tempest" or parts[1] != "api":
        return None
    return GROUP_TO_SERVICE.get(parts[2])


def class_of(test_id: str) -> str:
    """``tempest.api.x.mod.Class.test_y[...]`` -> ``tempest.api.x.mod.Class``."""
    return strip_attrs(test_id).rsplit(".", 1)[0]


def _looks_like_exception(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return (
        last.endswith(("Error", "Exception", "Failure", "Exit", "Interrupt", "Timeout"))
        or last
        in {
            "NotFound",
            "Forbidden",
            "Unauthorized",
            "BadRequest",
            "Conflict",
            "OverLimit",
            "ServerFault",
            "UnexpectedResponseCode",
            "InvalidContentType",
            "TimeoutException",
            "StopIteration",
            "Skip",
            "SkipTest",
            "TimedOut",
            "IdentityError",
        }
        or "." in name
    )


def first_error_line(traceback_text: str, limit: int = 400) -> str:
    """Pick the most useful single line of a traceback.

    The last exception line wins (with chained exceptions, the last is the one
    that reached the test runner).  Tempest's own exceptions put the useful
    part on following lines ("Details: ..."), so those are appended.
    """
    if not traceback_text:
        return ""
    lines = traceback_text.replace("\r\n", "\n").split("\n")
    best = None
    for i, line in enumerate(lines):
        if not line or line[0].isspace() or line.startswith(_NOT_EXC_PREFIXES):
            continue
        head = line.split(":", 1)[0].strip()
        m = _EXC_LINE_RE.match(head)
        if m and _looks_like_exception(m.group("name")):
            best = i
    if best is None:
        # No recognisable exception line: use the last non-empty line.
        tail = [ln.strip() for ln in lines if ln.strip()]
        return tail[-1][:limit] if tail else ""
    text = lines[best].strip()
    # Append continuation lines of the exception message (e.g. "Details: ...").
    for follow in lines[best + 1 : best + 6]:
        s = follow.strip()
        if not s:
            continue
        if s.startswith("Traceback") or s.startswith("During handling") or s.startswith("File "):
            break
        text += " | " + s
    text = re.sub(r"\s+", " ", text)
    return text[:limit] + ("..." if len(text) > limit else "")


def _detail_text(details: dict, *names: str) -> str:
    for name in names:
        content = details.get(name)
        if content is None:
            continue
        try:
            return content.as_text()
        except Exception:  # noqa: BLE001 - undecodable detail: fall through
            try:
                return b"".join(content.iter_bytes()).decode("utf-8", "replace")
            except Exception:  # noqa: BLE001
                continue
    return ""


def read_stream(path: str) -> list[dict]:
    """Return one dict per test id seen in the stream (id, status, details, tags)."""
    import subunit  # noqa: PLC0415 - only available inside the venv
    import testtools  # noqa: PLC0415

    records: list[dict] = []

    def on_test(test: dict) -> None:
        records.append(test)

    with open(path, "rb") as stream:
        case = subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout")
        result = testtools.StreamToDict(on_test)
        result.startTestRun()
        try:
            case.run(result)
        finally:
            result.stopTestRun()
    return records


def _normalize_status(status: str | None) -> str:
    if status in ("success", "xfail"):
        return SUCCESS
    if status == "skip":
        return SKIP
    if status in ("fail", "uxsuccess"):
        return FAIL
    # "exists" (listed, never run), "inprogress" (started, no end: worker died), None
    return "notrun"


def summarize_records(records: list[dict]) -> dict:
    tests: dict[str, dict] = {}
    fixtures: list[dict] = []

    for rec in records:
        test_id = rec.get("id") or ""
        details = rec.get("details") or {}
        status = _normalize_status(rec.get("status"))
        fm = _FIXTURE_RE.match(test_id)
        if fm:
            target = fm.group("target").strip()
            service = service_of(target)
            if service is None:
                continue
            if status == SUCCESS:
                continue
            fixtures.append(
                {
                    "class": target,
                    "fixture": fm.group("fixture"),
                    "service": service,
                    "status": status,
                    "error": first_error_line(_detail_text(details, "traceback")) if status == FAIL else "",
                    "reason": _detail_text(details, "reason").strip() if status == SKIP else "",
                }
            )
            continue
        service = service_of(test_id)
        if service is None:
            continue
        entry = {
            "id": test_id,
            "name": strip_attrs(test_id),
            "service": service,
            "status": status,
        }
        if status == FAIL:
            entry["error"] = first_error_line(_detail_text(details, "traceback"))
        elif status == SKIP:
            entry["reason"] = _detail_text(details, "reason").strip() or "(no reason given)"
        prev = tests.get(test_id)
        # A later real result beats an earlier "exists" listing.
        if prev is None or prev["status"] == "notrun":
            tests[test_id] = entry

    # Apply class fixtures.
    extra_failures: list[dict] = []
    for fx in fixtures:
        if fx["fixture"] in ("setUpClass", "setUpModule"):
            prefix = fx["class"] + "."
            affected = [t for t in tests.values() if t["name"].startswith(prefix) and t["status"] == "notrun"]
            fx["affected"] = len(affected)
            for t in affected:
                t["fixture"] = fx["fixture"]
                if fx["status"] == SKIP:
                    t["status"] = SKIP
                    t["reason"] = f"{fx['fixture']} skipped: {fx['reason'] or '(no reason given)'}"
                else:
                    t["status"] = FAIL
                    t["error"] = f"{fx['fixture']} failed: {fx['error']}"
            if not affected and fx["status"] == FAIL:
                extra_failures.append(
                    {
                        "id": f"{fx['class']} ({fx['fixture']})",
                        "name": f"{fx['class']} ({fx['fixture']})",
                        "service": fx["service"],
                        "status": FAIL,
                        "fixture": fx["fixture"],
                        "error": f"{fx['fixture']} failed: {fx['error']}",
                    }
                )
        else:  # tearDownClass / tearDownModule: tests already have results.
            fx["affected"] = 0
            if fx["status"] == FAIL:
                extra_failures.append(
                    {
                        "id": f"{fx['class']} ({fx['fixture']})",
                        "name": f"{fx['class']} ({fx['fixture']})",
                        "service": fx["service"],
                        "status": FAIL,
                        "fixture": fx["fixture"],
                        "error": f"{fx['fixture']} failed: {fx['error']}",
                    }
                )

    # Tests listed but never reported (worker crash, timeout of the whole run).
    for t in tests.values():
        if t["status"] == "notrun":
            t["status"] = FAIL
            t["error"] = "no result in the subunit stream (test never ran or its worker died)"

    all_tests = sorted(tests.values(), key=lambda t: t["name"]) + extra_failures
    services: dict[str, dict] = {}
    for t in all_tests:
        s = services.setdefault(t["service"], {"passed": 0, "failed": 0, "skipped": 0, "total": 0})
        s["total"] += 1
        if t["status"] == SUCCESS:
            s["passed"] += 1
        elif t["status"] == SKIP:
            s["skipped"] += 1
        else:
            s["failed"] += 1
    totals = {"passed": 0, "failed": 0, "skipped": 0, "total": 0}
    for s in services.values():
        for k in totals:
            totals[k] += s[k]
    return {
        "services": dict(sorted(services.items())),
        "totals": totals,
        "tests": all_tests,
        "class_fixtures": fixtures,
    }


def summarize(path: str) -> dict:
    return summarize_records(read_stream(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stream", help="subunit v2 file written by `tempest run --subunit`")
    parser.add_argument("--out", help="write the JSON summary here (default: stdout)")
    args = parser.parse_args(argv)
    summary = summarize(args.stream)
    text = json.dumps(summary, indent=2, sort_keys=False)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
