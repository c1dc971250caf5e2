"""A new server waits for its network like Nova: network-vif-plugged through os-server-external-events.

A private kumo whose fake compute driver waits for the events (compute.fake_vif_plugging) and
whose compute host has an L2 agent that "wires ports" (reported here through the agent API, as
the linux network agent would). The port status the agent reports travels the real path: the
network service's notifier → compute's os-server-external-events → the compute agent lets the
guest run → the server goes ACTIVE. Without the event the build fails at the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import KumoCloud, unique

TIMEOUT = 15  # compute.vif_plugging_timeout of this cloud (seconds)
MV = {"OpenStack-API-Version": "compute 2.79"}


@pytest.fixture(scope="module")
def vcloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KumoCloud]:
    cloud = KumoCloud(tmp_path_factory.mktemp("vif") / "data", env={
        "KUMO_COMPUTE__FAKE_VIF_PLUGGING": "true",
        "KUMO_COMPUTE__VIF_PLUGGING_TIMEOUT": str(TIMEOUT),
        "KUMO_NETWORK_AGENT__DRIVER": "none",  # this test plays the L2 agent itself
    })
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture(scope="module")
def admin_net(vcloud: KumoCloud) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=vcloud.url + "/network/v2.0", headers={"X-Auth-Token": vcloud.admin_token},
                      timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def admin_nova(vcloud: KumoCloud) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=vcloud.url + "/compute/v2.1", headers={"X-Auth-Token": vcloud.admin_token, **MV},
                      timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def nova(vcloud: KumoCloud) -> Iterator[httpx.Client]:
    """The demo user's compute client (its ports are bound with compute's service credentials)."""
    token, _ = vcloud.issue("demo")
    with httpx.Client(base_url=vcloud.url + "/compute/v2.1", headers={"X-Auth-Token": token, **MV},
                      timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def setup(vcloud: KumoCloud, admin_net: httpx.Client, admin_nova: httpx.Client, tmp_path_factory) -> dict:
    host = ""
    for _ in range(100):
        hyps = admin_nova.get("/os-hypervisors/detail").json()["hypervisors"]
        if hyps:
            host = hyps[0]["service"]["host"]
            break
        time.sleep(0.2)
    assert host, "the compute agent did not register"
    report_l2_agent(admin_net, host)
    path = tmp_path_factory.mktemp("img") / "tiny.raw"
    path.write_bytes(b"\0" * 1048576)
    image = vcloud.cli_json("image", "create", "--public", "--disk-format", "raw", "--container-format", "bare",
                            "--file", str(path), unique("tiny"))
    net = admin_net.get("/networks", params={"name": "private"}).json()["networks"][0]
    return {"host": host, "image": image["id"], "net": net["id"]}


def report_l2_agent(admin_net: httpx.Client, host: str) -> None:
    r = admin_net.post("/kumo-agent/agents/report", json={"agent": {
        "agent_type": "Linux bridge agent", "binary": "kumo-linuxbridge-agent", "host": host,
        "configurations": {"driver": "linux"}}})
    assert r.status_code == 200, r.text


def create(nova: httpx.Client, setup: dict) -> str:
    r = nova.post("/servers", json={"server": {"name": unique("vif"), "imageRef": setup["image"], "flavorRef": "42",
                                               "networks": [{"uuid": setup["net"]}]}})
    assert r.status_code == 202, r.text
    return r.json()["server"]["id"]


def server(nova: httpx.Client, sid: str) -> dict:
    return nova.get(f"/servers/{sid}").json()["server"]


def wait_status(nova: httpx.Client, sid: str, *wanted: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = server(nova, sid)
        if body["status"] in wanted or time.monotonic() > deadline:
            assert body["status"] in wanted, f"server {sid} is {body['status']}: {body.get('fault')}"
            return body
        time.sleep(0.2)


def the_port(admin_net: httpx.Client, sid: str) -> dict:
    ports = admin_net.get("/ports", params={"device_id": sid}).json()["ports"]
    assert len(ports) == 1, ports
    return ports[0]


def test_the_guest_waits_paused_until_the_port_is_reported_active(
        vcloud: KumoCloud, nova: httpx.Client, admin_nova: httpx.Client, admin_net: httpx.Client, setup: dict):
    report_l2_agent(admin_net, setup["host"])  # alive (its heartbeat)
    sid = create(nova, setup)
    port = the_port(admin_net, sid)
    assert port["binding:host_id"] == setup["host"] and port["binding:vif_type"] == "bridge"
    assert port["status"] == "DOWN"
    # the server stays in BUILD (its guest created paused) while the network is not ready
    time.sleep(2.0)
    body = server(nova, sid)
    assert body["status"] == "BUILD" and body["OS-EXT-STS:task_state"] == "spawning", body.get("fault")
    # the L2 agent reports the port ACTIVE: the network service tells compute, the guest runs
    r = admin_net.put(f"/kumo-agent/ports/{port['id']}/status", json={"status": "ACTIVE"})
    assert r.status_code == 200, r.text
    body = wait_status(nova, sid, "ACTIVE", "ERROR", timeout=TIMEOUT - 2)
    assert body["status"] == "ACTIVE" and body["OS-EXT-STS:power_state"] == 1
    out = admin_nova.post(f"/servers/{sid}/action", json={"os-getConsoleOutput": {}}).json()["output"]
    assert out.index("created paused") < out.index("kernel booted")
    # the event is recorded on the create action, as Nova records the external event
    req = admin_nova.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"][-1]["request_id"]
    events = admin_nova.get(f"/servers/{sid}/os-instance-actions/{req}").json()["instanceAction"]["events"]
    assert any(e["event"] == "compute_external_instance_event" and e["result"] == "Success" for e in events), events
    # deleting the server deletes its port: compute hears network-vif-deleted (the delete is not held up)
    assert nova.delete(f"/servers/{sid}").status_code == 204
    wait_deleted(nova, sid)


def wait_deleted(nova: httpx.Client, sid: str) -> None:
    deadline = time.monotonic() + 30
    while nova.get(f"/servers/{sid}").status_code != 404:
        assert time.monotonic() < deadline, f"server {sid} was not deleted"
        time.sleep(0.2)


def test_no_event_within_the_timeout_fails_the_build_with_a_fault(
        nova: httpx.Client, admin_net: httpx.Client, setup: dict):
    report_l2_agent(admin_net, setup["host"])
    started = time.monotonic()
    sid = create(nova, setup)
    body = wait_status(nova, sid, "ERROR", "ACTIVE", timeout=TIMEOUT + 30)
    assert body["status"] == "ERROR"
    assert time.monotonic() - started >= TIMEOUT - 1
    assert "Virtual Interface creation failed" in body["fault"]["message"]
    assert nova.delete(f"/servers/{sid}").status_code == 204
    wait_deleted(nova, sid)


def test_servers_whose_ports_no_agent_wires_do_not_wait(
        nova: httpx.Client, admin_net: httpx.Client, setup: dict):
    # no ports at all
    r = nova.post("/servers", json={"server": {"name": unique("vif"), "imageRef": setup["image"], "flavorRef": "42",
                                               "networks": "none"}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    assert wait_status(nova, sid, "ACTIVE", "ERROR", timeout=TIMEOUT - 5)["status"] == "ACTIVE"
    assert nova.delete(f"/servers/{sid}").status_code == 204
    # a port bound to a host where no L2 agent runs: the binding fails, as ML2's does, and no event will come
    port = admin_net.post("/ports", json={"port": {"network_id": setup["net"], "binding:host_id": unique("nohost")}})
    assert port.status_code == 201, port.text
    assert port.json()["port"]["binding:vif_type"] == "binding_failed"
    admin_net.delete(f"/ports/{port.json()['port']['id']}")
    wait_deleted(nova, sid)


def test_external_events_reject_bad_input_and_unknown_servers(admin_nova: httpx.Client):
    r = admin_nova.post("/os-server-external-events", json={"events": [
        {"name": "network-vif-plugged", "server_uuid": "00000000-0000-0000-0000-000000000000", "tag": "x"}]})
    assert r.status_code == 404
    r = admin_nova.post("/os-server-external-events", json={"events": [{"name": "network-vif-plugged"}]})
    assert r.status_code == 400
