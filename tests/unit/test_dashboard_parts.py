"""Dashboard pieces without a cloud: error parsing, field mapping, the topology graph, gauges, files."""

from __future__ import annotations

import httpx
import yaml

from kumo.dashboard.client import ApiError, error_message
from kumo.dashboard.views.identity import clouds_yaml, openrc
from kumo.dashboard.views.overview import Gauge
from kumo.dashboard.views.topology import build_graph
from kumo.dashboard.web import Form, field_errors, filesize


def _resp(status: int, body: bytes, ctype: str = "application/json") -> httpx.Response:
    return httpx.Response(status, content=body, headers={"content-type": ctype})


def test_error_message_reads_every_service_format() -> None:
    assert error_message(_resp(400, b'{"error": {"code": 400, "title": "Bad Request", "message": "Bad name"}}')) == "Bad name"
    assert error_message(_resp(404, b'{"itemNotFound": {"code": 404, "message": "Flavor 9 could not be found."}}')) \
        == "Flavor 9 could not be found."
    assert error_message(_resp(400, b'{"NeutronError": {"type": "X", "message": "Invalid CIDR", "detail": ""}}')) \
        == "Invalid CIDR"
    assert error_message(_resp(409, b"<html><h1>Conflict</h1><p>There was a conflict.</p></html>", "text/html")) \
        == "Conflict There was a conflict."
    assert error_message(_resp(500, b"", "text/plain")) == "HTTP 500 Internal Server Error"


def test_field_errors_put_the_message_next_to_the_named_field() -> None:
    err = ApiError(400, "Invalid input for field/attribute cidr. Value: x.", "network")
    assert field_errors(err, ["name", "cidr"]) == {"cidr": err.message}
    err = ApiError(400, "Quota exceeded for instances.", "compute")
    assert field_errors(err, ["name", "flavor"]) == {"": err.message}
    err = ApiError(400, "Invalid gateway ip", "network")
    assert field_errors(err, ["gateway_ip"]) == {"gateway_ip": err.message}


def test_topology_links_routers_networks_and_instances() -> None:
    nets = [{"id": "n1", "name": "private"}, {"id": "x1", "name": "public", "router:external": True}]
    routers = [{"id": "r1", "name": "r", "external_gateway_info": {"network_id": "x1"}}]
    servers = [{"id": "s1", "name": "vm", "status": "ACTIVE"}]
    ports = [
        {"id": "p1", "device_id": "r1", "network_id": "n1", "device_owner": "network:router_interface",
         "fixed_ips": [{"ip_address": "10.0.0.1"}]},
        {"id": "p2", "device_id": "s1", "network_id": "n1", "device_owner": "compute:nova", "fixed_ips": []},
        {"id": "p3", "device_id": "r1", "network_id": "x1", "device_owner": "network:router_gateway"},
        {"id": "p4", "device_id": "gone", "network_id": "n1"},  # a device we do not know: no dangling edge
    ]
    g = build_graph(nets, routers, ports, servers)
    kinds = {n["data"]["id"]: n["data"]["kind"] for n in g["nodes"]}
    assert kinds == {"n1": "network", "x1": "external", "r1": "router", "s1": "instance"}
    edges = {(e["data"]["source"], e["data"]["target"]) for e in g["edges"]}
    assert edges == {("r1", "x1"), ("r1", "n1"), ("s1", "n1")}


def test_gauges() -> None:
    assert Gauge("x", 5, 10).fraction == 0.5
    assert Gauge("x", 5, -1).text == "5 of ∞"
    assert Gauge("x", 1, 0).fraction == 1.0
    assert Gauge("RAM", 1.5, 50, " GiB").text == "1.5 GiB of 50 GiB"


def test_app_credential_files() -> None:
    doc = yaml.safe_load(clouds_yaml("kumo-ci", "http://h/identity/v3", "RegionOne", "abc", "s3cr'et"))
    auth = doc["clouds"]["kumo-ci"]["auth"]
    assert auth == {"auth_url": "http://h/identity/v3", "application_credential_id": "abc",
                    "application_credential_secret": "s3cr'et"}
    rc = openrc("http://h/identity/v3", "RegionOne", "abc", "s3cr'et")
    assert "export OS_APPLICATION_CREDENTIAL_SECRET='s3cr'\"'\"'et'\n" in rc


def test_form_and_filesize() -> None:
    f = Form({"a": [" x "], "n": ["1", "", "2"]})
    assert f["a"] == "x" and f["missing"] == "" and f.all("n") == ["1", "2"]
    assert filesize(512) == "512 B" and filesize(16384) == "16.0 KiB" and filesize(None) == "-"
