"""Microversion negotiation (OpenStack-API-Version)."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from kumo.common.errors import BadRequest, NotAcceptable
from kumo.common.microversion import APIVersion, negotiate, response_headers


def h(**headers: str) -> Headers:
    return Headers({k.replace("_", "-"): v for k, v in headers.items()})


def test_parse_and_order():
    assert APIVersion.parse("2.10") > APIVersion.parse("2.9")
    assert APIVersion.parse(" 3.0 ") == APIVersion(3, 0)
    assert str(APIVersion.parse("2.53")) == "2.53"
    assert sorted(APIVersion.parse(v) for v in ["2.10", "2.1", "2.9"]) == [
        APIVersion(2, 1), APIVersion(2, 9), APIVersion(2, 10)
    ]  # fmt: skip


@pytest.mark.parametrize("bad", ["", "2", "2.", ".1", "2.1.1", "02.1", "2.01", "a.b", "0.1", "-1.0", "2,1"])
def test_parse_rejects_bad_strings(bad):
    with pytest.raises(BadRequest):
        APIVersion.parse(bad)


def test_matches():
    v = APIVersion(2, 50)
    assert v.matches("2.1", "2.90")
    assert v.matches("2.50", "2.50")
    assert v.matches(None, "2.50") and v.matches("2.50")
    assert not v.matches("2.51")
    assert not v.matches(high="2.49")


def test_no_header_gives_minimum():
    assert negotiate(h(), "compute", "2.1", "2.90") == APIVersion(2, 1)


def test_requested_version():
    assert negotiate(h(openstack_api_version="compute 2.53"), "compute", "2.1", "2.90") == APIVersion(2, 53)


def test_header_name_and_service_case_insensitive():
    headers = Headers({"OpenStack-API-Version": "Compute 2.5"})
    assert negotiate(headers, "compute", "2.1", "2.90") == APIVersion(2, 5)


def test_latest_gives_maximum():
    assert negotiate(h(openstack_api_version="compute latest"), "compute", "2.1", "2.90") == APIVersion(2, 90)
    assert negotiate(h(openstack_api_version="compute LATEST"), "compute", "2.1", "2.90") == APIVersion(2, 90)


def test_other_services_in_header_ignored():
    headers = h(openstack_api_version="volume 3.60, compute 2.20")
    assert negotiate(headers, "compute", "2.1", "2.90") == APIVersion(2, 20)
    assert negotiate(headers, "volume", "3.0", "3.70") == APIVersion(3, 60)
    assert negotiate(h(openstack_api_version="volume 3.60"), "compute", "2.1", "2.90") == APIVersion(2, 1)


def test_legacy_header():
    headers = h(x_openstack_nova_api_version="2.12")
    assert negotiate(
        headers, "compute", "2.1", "2.90", legacy_header="X-OpenStack-Nova-API-Version"
    ) == APIVersion(2, 12)
    # the new header wins over the legacy one
    both = h(x_openstack_nova_api_version="2.12", openstack_api_version="compute 2.30")
    assert negotiate(
        both, "compute", "2.1", "2.90", legacy_header="X-OpenStack-Nova-API-Version"
    ) == APIVersion(2, 30)


@pytest.mark.parametrize("version", ["2.0", "2.91", "3.0", "1.99"])
def test_out_of_range_is_not_acceptable(version):
    with pytest.raises(NotAcceptable) as exc:
        negotiate(h(openstack_api_version=f"compute {version}"), "compute", "2.1", "2.90")
    assert exc.value.status == 406


def test_malformed_version_is_bad_request():
    with pytest.raises(BadRequest) as exc:
        negotiate(h(openstack_api_version="compute two"), "compute", "2.1", "2.90")
    assert exc.value.status == 400


def test_response_headers():
    out = response_headers("compute", APIVersion(2, 7))
    assert out["OpenStack-API-Version"] == "compute 2.7"
    assert "OpenStack-API-Version" in out["Vary"]
    legacy = response_headers("compute", APIVersion(2, 7), "X-OpenStack-Nova-API-Version")
    assert legacy["X-OpenStack-Nova-API-Version"] == "2.7"
    assert "X-OpenStack-Nova-API-Version" in legacy["Vary"]
