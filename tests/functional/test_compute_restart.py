"""Compute across a restart: settled servers stay as they were, the agent re-adopts them."""

from __future__ import annotations

import time

import httpx

from tests.support import KumoCloud


def _wait(nova: httpx.Client, sid: str, status: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = nova.get(f"/servers/{sid}").json()["server"]
        if body["status"] == status and body["OS-EXT-STS:task_state"] is None:
            return body
        assert time.monotonic() < deadline, f"{sid} stuck in {body['status']}"
        time.sleep(0.1)


def test_servers_survive_a_restart(kumo_cloud):
    cloud: KumoCloud = kumo_cloud()
    conn = cloud.sdk()
    image = conn.image.create_image(name="tiny", data=b"\0" * 4096, disk_format="raw", container_format="bare",
                                    visibility="public")  # fmt: skip

    def client() -> httpx.Client:
        return httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token},
                            timeout=30)  # fmt: skip

    with client() as nova:
        ids = [nova.post("/servers", json={"server": {"name": f"r{i}", "imageRef": image.id, "flavorRef": "42"}})
               .json()["server"]["id"] for i in range(2)]  # fmt: skip
        for sid in ids:
            _wait(nova, sid, "ACTIVE")
        nova.post(f"/servers/{ids[1]}/action", json={"os-stop": None})
        _wait(nova, ids[1], "SHUTOFF")
    cloud.restart()
    with client() as nova:
        assert _wait(nova, ids[0], "ACTIVE")["OS-EXT-STS:power_state"] == 1
        assert _wait(nova, ids[1], "SHUTOFF")["OS-EXT-STS:power_state"] == 4
        # the (in-memory) fake driver lost its VMs: the agent's resync boots the running one again
        deadline = time.monotonic() + 20
        while "login:" not in nova.post(f"/servers/{ids[0]}/action", json={"os-getConsoleOutput": {}}).json()["output"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        hyp = nova.get("/os-hypervisors/detail").json()["hypervisors"][0]
        assert hyp["hypervisor_type"] == "fake" and hyp["state"] == "up" and hyp["running_vms"] == 2
