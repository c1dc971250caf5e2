"""Evacuate with two fake compute hosts: a second agent runs in the test process over real HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx

from kumo.agents.compute.driver import PowerState
from kumo.agents.compute.fake import FakeDriver
from tests import compute_helpers as helpers
from tests.support import KumoCloud, unique

HOST_B = "evac-host-b"


class AgentThread(helpers.AgentThread):
    """The second host of these tests (and of the microversion tests that import it)."""

    def __init__(self, cloud: KumoCloud, driver: FakeDriver) -> None:
        super().__init__(cloud, driver, HOST_B)


_hdr, _until, _server, _settled = helpers.hdr, helpers.until, helpers.server, helpers.settled


def _evacuations(nova: httpx.Client, sid: str) -> list[dict]:
    r = nova.get("/os-migrations", params={"instance_uuid": sid, "migration_type": "evacuation"},
                 headers=_hdr("2.80"))  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["migrations"]


def test_evacuate_dead_host(kumo_cloud, tmp_path: Path):
    cloud: KumoCloud = kumo_cloud()
    driver_b = FakeDriver(tmp_path / "host-b")
    agent_b = AgentThread(cloud, driver_b)
    img_file = tmp_path / "tiny.raw"
    img_file.write_bytes(b"\0" * 1048576)
    img = cloud.cli_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                         "--file", str(img_file), unique("evac"))  # fmt: skip
    nova = httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token},
                        timeout=60)  # fmt: skip
    agent_b.start()
    try:
        services = _until("host B registered", lambda: [
            s for s in nova.get("/os-services", params={"binary": "nova-compute"}, headers=_hdr("2.53"))
            .json()["services"] if s["host"] == HOST_B and s["state"] == "up"])  # fmt: skip
        hosts = {s["host"] for s in nova.get("/os-services", params={"binary": "nova-compute"}).json()["services"]}
        (host_a,) = hosts - {HOST_B}
        sids = []
        for stopped in (False, True):
            r = nova.post("/servers", headers=_hdr("2.37"), json={"server": {
                "name": unique("evac"), "imageRef": img["id"], "flavorRef": "1", "networks": "none",
                "availability_zone": f"nova:{HOST_B}"}})  # fmt: skip
            assert r.status_code == 202, r.text
            sid = r.json()["server"]["id"]
            sids.append(sid)
            _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
            if stopped:
                assert nova.post(f"/servers/{sid}/action", json={"os-stop": None}).status_code == 202
                _until("SHUTOFF", _settled(nova, sid, "SHUTOFF"))
        active_sid, stopped_sid = sids
        assert _server(nova, active_sid)["OS-EXT-SRV-ATTR:host"] == HOST_B
        assert driver_b.observe(active_sid) == PowerState.RUNNING

        # the source host is alive: evacuation is refused
        r = nova.post(f"/servers/{active_sid}/action", json={"evacuate": {}}, headers=_hdr("2.80"))
        assert r.status_code == 400 and "still in use" in r.json()["badRequest"]["message"]
        # bodies per microversion
        r = nova.post(f"/servers/{active_sid}/action", json={"evacuate": {}}, headers=_hdr("2.13"))
        assert r.status_code == 400 and "onSharedStorage" in r.text
        r = nova.post(f"/servers/{active_sid}/action", json={"evacuate": {"force": True, "host": host_a}},
                      headers=_hdr("2.68"))  # fmt: skip
        assert r.status_code == 400
        r = nova.post(f"/servers/{active_sid}/action", json={"evacuate": {"host": "no-such-host"}},
                      headers=_hdr("2.29"))  # fmt: skip
        assert r.status_code == 404
        demo = httpx.post(f"{cloud.url}/compute/v2.1/servers/{active_sid}/action", json={"evacuate": {}},
                          headers={"X-Auth-Token": cloud.sdk("kumo").auth_token}, timeout=30)  # fmt: skip
        assert demo.status_code in (403, 404)

        # host B dies: its agent stops and an operator marks the service forced down
        agent_b.stop()
        service_b = services[0]["id"]
        r = nova.put(f"/os-services/{service_b}", json={"forced_down": True}, headers=_hdr("2.53"))
        assert r.status_code == 200, r.text

        # since 2.14 nothing in the body, 200; an ACTIVE server is rebuilt ACTIVE
        r = nova.post(f"/servers/{active_sid}/action", json={"evacuate": {}}, headers=_hdr("2.80"))
        assert r.status_code == 200 and r.content == b"", r.text
        moved = _until("evacuated server ACTIVE", _settled(nova, active_sid, "ACTIVE"))
        assert moved["OS-EXT-SRV-ATTR:host"] == host_a
        (mig,) = _evacuations(nova, active_sid)
        assert (mig["source_compute"], mig["dest_compute"], mig["status"]) == (HOST_B, host_a, "done")
        actions = nova.get(f"/servers/{active_sid}/os-instance-actions").json()["instanceActions"]
        assert actions[0]["action"] == "evacuate"

        # the openstack CLI (2.29: a target host; a stopped server stays stopped)
        res = cloud.cli("--os-compute-api-version", "2.29", "server", "evacuate", "--host", host_a, stopped_sid)
        assert res.returncode == 0, res.stderr
        back = _until("CLI-evacuated server settled", _settled(nova, stopped_sid, "SHUTOFF"))
        assert back["OS-EXT-SRV-ATTR:host"] == host_a
        assert [m["status"] for m in _evacuations(nova, stopped_sid)] == ["done"]

        # host B returns: its stale copies are destroyed, not restarted, and the migrations complete
        assert driver_b.observe(active_sid) == PowerState.RUNNING  # the dead host's leftover
        r = nova.put(f"/os-services/{service_b}", json={"forced_down": False}, headers=_hdr("2.53"))
        assert r.status_code == 200
        agent_b.start()
        _until("stale copies destroyed", lambda: all(
            driver_b.observe(s) == PowerState.NOSTATE for s in sids))  # fmt: skip
        _until("migrations completed", lambda: all(
            [m["status"] for m in _evacuations(nova, s)] == ["completed"] for s in sids))  # fmt: skip
        assert _server(nova, active_sid)["status"] == "ACTIVE"
        # a server evacuated to another host cannot be evacuated from a live one
        r = nova.post(f"/servers/{active_sid}/action", json={"evacuate": {}}, headers=_hdr("2.80"))
        assert r.status_code == 400
    finally:
        agent_b.stop()
        nova.close()
