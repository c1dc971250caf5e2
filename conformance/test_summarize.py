"""Tests of the subunit summarizer and the report/gate helpers of run.py.

Run with the conformance venv's python:  conformance/.venv/bin/python -m pytest conformance
The stream tests skip when ``subunit`` is not importable (outside that venv).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report as rep  # noqa: E402
import run  # noqa: E402
import summarize  # noqa: E402

try:
    import subunit  # noqa: F401
    import testtools  # noqa: F401

    HAVE_SUBUNIT = True
except ImportError:  # pragma: no cover - depends on the interpreter
    HAVE_SUBUNIT = False

needs_subunit = pytest.mark.skipif(
    not HAVE_SUBUNIT, reason="python-subunit not importable: run with conformance/.venv/bin/python"
)

API = "tempest.api.identity.admin.v3"
TB_MIME = 'text/x-traceback; charset="utf8"; language="python"'
TEXT_MIME = 'text/plain; charset="utf8"'

TEMPEST_TRACEBACK = """Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/tempest/api/identity/admin/v3/test_users.py", line 42, in test_x
    self.users_client.update_user(user['id'], name='x')
  File "/venv/lib/python3.11/site-packages/tempest/lib/common/rest_client.py", line 930, in _error_checker
    raise exceptions.UnexpectedResponseCode(str(resp.status),
tempest.lib.exceptions.UnexpectedResponseCode: Unexpected response code received
Details: 501
"""

CHAINED_TRACEBACK = """Traceback (most recent call last):
  File "x.py", line 1, in f
    raise KeyError('token')
KeyError: 'token'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "y.py", line 2, in g
    self.assertEqual(201, resp.status)
testtools.matchers._impl.MismatchError: 201 != 200
"""

SETUP_TRACEBACK = """Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/tempest/test.py", line 185, in setUpClass
    raise value.with_traceback(trace)
  File "/venv/lib/python3.11/site-packages/tempest/lib/common/rest_client.py", line 917, in _error_checker
    raise exceptions.NotFound(resp_body, resp=resp)
tempest.lib.exceptions.NotFound: Object not found
Details: {'code': 404, 'message': 'Could not find role: reader.'}
"""


def _stream_bytes() -> bytes:
    from subunit import StreamResultToBytes

    buf = io.BytesIO()
    out = StreamResultToBytes(buf)

    def test(test_id, status, file_name=None, text=None, mime=TEXT_MIME):
        out.status(test_id=test_id, test_status="inprogress")
        if file_name:
            out.status(
                test_id=test_id, file_name=file_name, file_bytes=text.encode(), mime_type=mime, eof=True
            )
        out.status(test_id=test_id, test_status=status)

    test(f"{API}.test_tokens.TokensV3TestJSON.test_ok[id-1,smoke]", "success")
    test(f"{API}.test_users.UsersV3TestJSON.test_x[id-2]", "fail", "traceback", TEMPEST_TRACEBACK, TB_MIME)
    test(
        f"{API}.test_users.UsersV3TestJSON.test_chain[id-3]", "fail", "traceback", CHAINED_TRACEBACK, TB_MIME
    )
    test(f"{API}.test_trusts.TrustsV3TestJSON.test_trust[id-4]", "skip", "reason", "Trusts aren't enabled")
    # A class whose setUpClass fails: its tests are only listed ("exists").
    for name in ("test_a[id-5]", "test_b[id-6,negative]"):
        out.status(test_id=f"{API}.test_roles.RolesV3TestJSON.{name}", test_status="exists")
    out.status(
        test_id=f"setUpClass ({API}.test_roles.RolesV3TestJSON)",
        file_name="traceback",
        file_bytes=SETUP_TRACEBACK.encode(),
        mime_type=TB_MIME,
        eof=True,
    )
    out.status(test_id=f"setUpClass ({API}.test_roles.RolesV3TestJSON)", test_status="fail")
    # A class skipped as a whole.
    out.status(
        test_id="tempest.api.compute.flavors.test_flavors.FlavorsV2TestJSON.test_get[id-7]",
        test_status="exists",
    )
    out.status(
        test_id="setUpClass (tempest.api.compute.flavors.test_flavors.FlavorsV2TestJSON)",
        file_name="reason",
        file_bytes=b"Nova is not available",
        mime_type=TEXT_MIME,
        eof=True,
    )
    out.status(
        test_id="setUpClass (tempest.api.compute.flavors.test_flavors.FlavorsV2TestJSON)", test_status="skip"
    )
    # setUpClass failure with no listed tests: counts as one failure.
    out.status(
        test_id=f"setUpClass ({API}.test_groups.GroupsV3TestJSON)",
        file_name="traceback",
        file_bytes=SETUP_TRACEBACK.encode(),
        mime_type=TB_MIME,
        eof=True,
    )
    out.status(test_id=f"setUpClass ({API}.test_groups.GroupsV3TestJSON)", test_status="fail")
    # tearDownClass failure after a passing test.
    test(f"{API}.test_domains.DomainsTestJSON.test_list[id-8]", "success")
    out.status(
        test_id=f"tearDownClass ({API}.test_domains.DomainsTestJSON)",
        file_name="traceback",
        file_bytes=CHAINED_TRACEBACK.encode(),
        mime_type=TB_MIME,
        eof=True,
    )
    out.status(test_id=f"tearDownClass ({API}.test_domains.DomainsTestJSON)", test_status="fail")
    # Not under tempest.api: ignored.
    test(
        "tempest.scenario.test_minimum_basic.TestMinimumBasicScenario.test_basic[id-9]",
        "fail",
        "traceback",
        CHAINED_TRACEBACK,
        TB_MIME,
    )
    return buf.getvalue()


@pytest.fixture
def summary(tmp_path):
    path = tmp_path / "run.subunit"
    path.write_bytes(_stream_bytes())
    return summarize.summarize(str(path))


def _by_name(summary):
    return {t["name"]: t for t in summary["tests"]}


@needs_subunit
def test_counts_per_service(summary):
    assert summary["services"]["identity"] == {"passed": 2, "failed": 6, "skipped": 1, "total": 9}
    assert summary["services"]["compute"] == {"passed": 0, "failed": 0, "skipped": 1, "total": 1}
    assert summary["totals"]["total"] == 10
    assert not any(t["name"].startswith("tempest.scenario") for t in summary["tests"])


@needs_subunit
def test_failure_lines(summary):
    tests = _by_name(summary)
    err = tests[f"{API}.test_users.UsersV3TestJSON.test_x"]["error"]
    assert err.startswith("tempest.lib.exceptions.UnexpectedResponseCode: Unexpected response code")
    assert "Details: 501" in err
    chained = tests[f"{API}.test_users.UsersV3TestJSON.test_chain"]["error"]
    assert chained == "testtools.matchers._impl.MismatchError: 201 != 200"


@needs_subunit
def test_skip_reason(summary):
    tests = _by_name(summary)
    assert tests[f"{API}.test_trusts.TrustsV3TestJSON.test_trust"]["reason"] == "Trusts aren't enabled"
    flav = tests["tempest.api.compute.flavors.test_flavors.FlavorsV2TestJSON.test_get"]
    assert flav["status"] == "skip" and "Nova is not available" in flav["reason"]


@needs_subunit
def test_setupclass_failure_fails_its_tests(summary):
    tests = _by_name(summary)
    for name in ("test_a", "test_b"):
        t = tests[f"{API}.test_roles.RolesV3TestJSON.{name}"]
        assert t["status"] == "fail"
        assert t["fixture"] == "setUpClass"
        assert t["error"].startswith("setUpClass failed: tempest.lib.exceptions.NotFound: Object not found")
        assert "Could not find role: reader." in t["error"]
    fx = {f["class"].rsplit(".", 1)[-1]: f for f in summary["class_fixtures"]}
    assert fx["RolesV3TestJSON"]["affected"] == 2
    # no listed tests: the fixture itself is one failure
    assert tests[f"{API}.test_groups.GroupsV3TestJSON (setUpClass)"]["status"] == "fail"
    # tearDownClass: one extra failure, the passing test stays passed
    assert tests[f"{API}.test_domains.DomainsTestJSON (tearDownClass)"]["status"] == "fail"
    assert tests[f"{API}.test_domains.DomainsTestJSON.test_list"]["status"] == "success"


def test_first_error_line_plain():
    assert (
        summarize.first_error_line("Traceback...\n  File x\nAssertionError: boom\n") == "AssertionError: boom"
    )
    assert summarize.first_error_line("") == ""
    assert summarize.first_error_line("just text") == "just text"


def test_service_mapping():
    assert summarize.service_of("tempest.api.object_storage.test_x.C.test_y") == "object_storage"
    assert summarize.service_of("tempest.scenario.test_x.C.test_y") is None
    assert summarize.strip_attrs("a.b.C.test_x[id-1,smoke]") == "a.b.C.test_x"


def test_build_regex():
    assert run.build_regex(["identity"], None) == r"^tempest\.api\.(identity)\."
    rx = run.build_regex(["identity", "image"], "test_tokens")
    import re

    assert re.search(rx, "tempest.api.identity.v3.test_tokens.TokensV3Test.test_x")
    assert not re.search(rx, "tempest.api.identity.v3.test_users.UsersV3Test.test_x")
    assert not re.search(rx, "tempest.api.compute.test_tokens.X.test_y")


def test_parse_services_aliases():
    assert run.parse_services("identity, glance,block-storage,object-store") == [
        "identity",
        "image",
        "volume",
        "object_storage",
    ]
    with pytest.raises(SystemExit):
        run.parse_services("dashboard")


def test_gate(tmp_path):
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps({"identity": {"passed": 10}, "image": {"passed": 3}}))
    ok, lines = rep.gate({"identity": {"passed": 10}}, ["identity"], base, total=12)
    assert ok and "= baseline 10" in lines[0]
    ok, lines = rep.gate({"identity": {"passed": 9}}, ["identity"], base, total=12)
    assert not ok and "REGRESSION" in lines[0]
    ok, _ = rep.gate({"identity": {"passed": 50}}, ["identity"], base, total=0)
    assert not ok
    ok, lines = rep.gate({"network": {"passed": 1}}, ["network"], base, total=1)
    assert ok and "no baseline" in lines[0]
    rep.update_baseline(base, {"identity": {"passed": 11}}, ["identity"])
    assert json.loads(base.read_text()) == {"identity": {"passed": 11}, "image": {"passed": 3}}


def test_render_markdown():
    report = {
        "date": "2026-01-01T00:00:00Z",
        "kumo_commit": "abc",
        "tempest_version": "47.0.0",
        "duration_s": 12.0,
        "services_requested": ["identity"],
        "regex": "x",
        "services": {"identity": {"passed": 1, "failed": 1, "skipped": 1, "total": 3}},
        "totals": {"passed": 1, "failed": 1, "skipped": 1, "total": 3},
        "class_fixtures": [
            {
                "class": "tempest.api.identity.C",
                "fixture": "setUpClass",
                "status": "fail",
                "affected": 1,
                "error": "E: x|y",
            }
        ],
        "tests": [
            {"name": "tempest.api.identity.C.t1", "service": "identity", "status": "success"},
            {"name": "tempest.api.identity.C.t2", "service": "identity", "status": "fail", "error": "E: a|b"},
            {"name": "tempest.api.identity.C.t3", "service": "identity", "status": "skip", "reason": "r"},
        ],
    }
    md = rep.render_markdown(report)
    assert "| identity | 1 | 1 | 1 | 3 |" in md
    assert "`tempest.api.identity.C.t2` | E: a\\|b" in md
    assert "## identity: skips (1)" in md
    assert "setUpClass" in md


def test_group_failures_and_server_errors(tmp_path):
    tests = [
        {"name": "a.b.C.t1", "status": "fail", "error": "NotFound: project 8b545c245fcb454fae685932e5597653"},
        {"name": "a.b.C.t2", "status": "fail", "error": "NotFound: project 0b545c245fcb454fae685932e5597653"},
        {"name": "a.b.C.t3", "status": "fail", "error": "ServerFault: boom"},
        {"name": "a.b.C.t4", "status": "success"},
    ]
    groups = rep.group_failures(tests)
    assert groups[0] == {
        "error": "NotFound: project <id>",
        "request": "",
        "count": 2,
        "examples": ["a.b.C.t1", "a.b.C.t2"],
    }
    assert groups[1]["count"] == 1
    log = tmp_path / "tempest.log"
    log.write_text(
        "x INFO tempest.lib.common.rest_client [req-1 ] Request (C:setUpClass): 500 GET "
        "http://127.0.0.1:1/identity/v3/domains?name=Default 0.1s\n"
        "x INFO tempest.lib.common.rest_client [req-2 ] Request (C:test_x): 201 POST "
        "http://127.0.0.1:1/identity/v3/auth/tokens 0.1s\n"
        "x INFO tempest.lib.common.rest_client [req-3 ] Request (C:test_y): 503 DELETE "
        "http://127.0.0.1:1/identity/v3/projects/8b545c245fcb454fae685932e5597653 0.1s\n"
    )
    errs = rep.server_errors(log)
    assert [e["request"] for e in errs] == [
        "500 GET /identity/v3/domains?name=Default",
        "503 DELETE /identity/v3/projects/<id>",
    ]
    assert errs[0]["first_seen_in"] == "C:setUpClass"


def test_attach_failed_requests(tmp_path):
    log = tmp_path / "tempest.log"
    log.write_text(
        "x Request (PoliciesTestJSON:test_list_policies): 200 GET http://h/identity/v3/x 0.1s\n"
        "x Request (PoliciesTestJSON:test_list_policies): 404 POST http://h/identity/v3/policies 0.1s\n"
        "x Request (EndPointGroupsTest:setUpClass): 404 POST http://h/identity/v3/OS-EP-FILTER/endpoint_groups 0.1s\n"
        "x Request (GroupsTest:setUpClass): 500 GET http://h/identity/v3/groups 0.1s\n"
    )
    tests = [
        {
            "name": "tempest.api.identity.admin.v3.test_policies.PoliciesTestJSON.test_list_policies",
            "status": "fail",
            "error": "NotFound",
        },
        {
            "name": "tempest.api.identity.admin.v3.test_eg.EndPointGroupsTest.test_update",
            "status": "fail",
            "fixture": "setUpClass",
            "error": "setUpClass failed: NotFound",
        },
        {
            "name": "tempest.api.identity.admin.v3.test_g.GroupsTest (setUpClass)",
            "status": "fail",
            "fixture": "setUpClass",
            "error": "setUpClass failed: ServerFault",
        },
        {"name": "tempest.api.identity.admin.v3.test_ok.OkTest.test_ok", "status": "success"},
    ]
    rep.attach_failed_requests(tests, log)
    assert tests[0]["failed_request"] == "404 POST /identity/v3/policies"
    assert tests[1]["failed_request"] == "404 POST /identity/v3/OS-EP-FILTER/endpoint_groups"
    assert tests[2]["failed_request"] == "500 GET /identity/v3/groups"
    assert "failed_request" not in tests[3]
    groups = rep.group_failures(tests)
    assert {g["request"] for g in groups} == {
        "404 POST /identity/v3/policies",
        "404 POST /identity/v3/OS-EP-FILTER/endpoint_groups",
        "500 GET /identity/v3/groups",
    }


def test_interop_status(tmp_path):
    path = tmp_path / "interop.json"
    path.write_text(
        json.dumps(
            {
                "guideline": "2020.06",
                "platform": "P",
                "tests": {
                    "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token": {
                        "capability": "tok"
                    },
                    "tempest.api.identity.v3.test_users.UsersTest.test_x": {
                        "capability": "users",
                        "flagged": True,
                    },
                    "tempest.api.image.v2.test_images.ImagesTest.test_y": {"capability": "img"},
                },
            }
        )
    )
    tests = [
        {"name": "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token", "status": "success"}
    ]
    out = rep.interop_status(tests, ["identity"], path)
    assert out["services"] == {
        "identity": {"required": 2, "passed": 1, "failed": 0, "skipped": 0, "notrun": 1}
    }
    assert out["not_passed"][0]["flagged"] is True and out["not_passed"][0]["status"] == "notrun"
    assert rep.interop_status(tests, ["identity"], tmp_path / "missing.json") is None
