"""Microversions that need two compute hosts: 2.81 image pre-caching, 2.91 unshelve to a host.

A second compute agent (fake driver, in the test process, over real HTTP) joins a private
cloud. 2.81: the test puts it in an aggregate, asks through the openstack CLI for an image to
be cached there, and watches the agent's driver receive it and the control plane record it.
2.91: a shelved server is unshelved onto a chosen host, into a zone, and out of its zone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kumo.agents.compute.fake import FakeDriver
from kumo.agents.compute.snapshot import host_credentials
from tests.functional.test_compute_evacuate import AgentThread, _until
from tests.support import KumoCloud, unique

HOST_B = "evac-host-b"  # AgentThread's host name


def _mv(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KumoCloud, FakeDriver]]:
    from tests.conftest import _Launcher

    launcher = _Launcher(tmp_path_factory)
    agent_b = None
    try:
        cloud = launcher()
        driver_b = FakeDriver(tmp_path_factory.mktemp("host-b"))
        agent_b = AgentThread(cloud, driver_b)
        agent_b.start()
        assert agent_b.agent is not None
        agent_b.agent.credentials = host_credentials(cloud.data_dir)  # host B uploads shelve snapshots
        with _nova(cloud) as nova:
            _until("host B registered", lambda: any(
                s["host"] == HOST_B and s["state"] == "up"
                for s in nova.get("/os-services", params={"binary": "nova-compute"}).json()["services"]))  # fmt: skip
        yield cloud, driver_b
    finally:
        if agent_b is not None:
            agent_b.stop()
        launcher.close()


def _nova(cloud: KumoCloud, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": token or cloud.admin_token},
                        timeout=60)  # fmt: skip


def _image(cloud: KumoCloud, tmp_path: Path) -> dict:
    img_file = tmp_path / "tiny.raw"
    img_file.write_bytes(b"\3" * 1048576)
    return cloud.cli_json("image", "create", "--public", "--disk-format", "raw", "--container-format", "bare",
                          "--file", str(img_file), unique("mvhosts"))  # fmt: skip


def test_281_aggregate_image_precache(two_hosts: tuple[KumoCloud, FakeDriver], tmp_path: Path):
    cloud, driver_b = two_hosts
    img = _image(cloud, tmp_path)
    nova = _nova(cloud)
    secret = (cloud.data_dir / "compute-agent.secret").read_text().strip()

    def entries() -> list[dict]:
        r = httpx.get(cloud.url + "/compute/v2.1/kumo-agent/image-cache", params={"host": HOST_B},
                      headers={"X-Kumo-Agent-Secret": secret}, timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        return r.json()["image_cache"]

    try:
        agg = cloud.cli_json("aggregate", "create", unique("cache"))
        assert cloud.cli("aggregate", "add", "host", str(agg["id"]), HOST_B).returncode == 0

        # the openstack CLI at 2.81 (it refuses older versions itself); the API answers 202
        res = cloud.cli("--os-compute-api-version", "2.81", "aggregate", "cache", "image", str(agg["id"]), img["id"])
        assert res.returncode == 0, res.stderr
        _until("the image cached on host B", lambda: img["id"] in driver_b.cached_images)
        _until("the cache recorded", lambda: [e["status"] for e in entries()] == ["cached"])
        assert entries()[0]["aggregate_id"] == agg["id"]
        assert driver_b.cached_images == [img["id"]]  # only host B is in the aggregate, only once

        path = f"/os-aggregates/{agg['id']}/images"
        ok = {"cache": [{"id": img["id"]}]}
        assert nova.post(path, json=ok, headers=_mv("2.80")).status_code == 404  # not before 2.81
        r = nova.post(path, json=ok, headers=_mv("2.81"))
        assert r.status_code == 202 and r.content == b""
        for bad in ({"cache": []}, {"cache": [{"id": "nope"}]}, {"cache": [{"id": img["id"], "x": 1}]},
                    {"cache": [{"id": img["id"]}, {"id": img["id"]}]}, {"images": [{"id": img["id"]}]}):  # fmt: skip
            r = nova.post(path, json=bad, headers=_mv("2.81"))
            assert r.status_code == 400 and "badRequest" in r.json(), (bad, r.text)
        r = nova.post(path, json={"cache": [{"id": str(uuid.uuid4())}]}, headers=_mv("2.81"))
        assert r.status_code == 400 and "could not be found" in r.text
        assert nova.post("/os-aggregates/99999/images", json=ok, headers=_mv("2.81")).status_code == 404
        token, _ = cloud.issue("demo")
        r = httpx.post(cloud.url + "/compute/v2.1" + path, json=ok, timeout=30,
                       headers={"X-Auth-Token": token, **_mv("2.81")})  # fmt: skip
        assert r.status_code == 403, r.text
    finally:
        nova.close()


def test_291_unshelve_to_a_host_and_out_of_a_zone(two_hosts: tuple[KumoCloud, FakeDriver], tmp_path: Path):
    cloud, driver_b = two_hosts
    img = _image(cloud, tmp_path)
    nova = _nova(cloud)
    token, _ = cloud.issue("demo")
    demo = _nova(cloud, token)
    agg = cloud.cli_json("aggregate", "create", "--zone", "mv-az2", unique("az2"))
    assert cloud.cli("aggregate", "add", "host", str(agg["id"]), HOST_B).returncode == 0

    def state(sid: str) -> dict:
        return nova.get(f"/servers/{sid}", headers=_mv("2.91")).json()["server"]

    def settle(sid: str, status: str) -> dict:
        def check() -> dict | None:
            s = state(sid)
            assert s["status"] != "ERROR", s.get("fault")
            return s if s["status"] == status and s["OS-EXT-STS:task_state"] is None else None

        return _until(f"{sid} {status}", check)

    def shelve(sid: str) -> None:
        assert demo.post(f"/servers/{sid}/action", json={"shelve": None}).status_code == 202
        settle(sid, "SHELVED_OFFLOADED")

    def unshelve(sid: str, body: dict | None, version: str = "2.91", client: httpx.Client = nova) -> httpx.Response:
        return client.post(f"/servers/{sid}/action", json={"unshelve": body}, headers=_mv(version))

    r = demo.post("/servers", json={"server": {"name": unique("shelf"), "imageRef": img["id"], "flavorRef": "1",
                                               "networks": "none", "availability_zone": "nova"}},
                  headers=_mv("2.37"))  # fmt: skip
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    try:
        assert settle(sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] != HOST_B  # pinned to zone nova
        shelve(sid)
        # the host key is new in 2.91, and an admin's
        assert unshelve(sid, {"host": HOST_B}, "2.90").status_code == 400
        assert unshelve(sid, {"host": HOST_B}, client=demo).status_code == 403
        assert unshelve(sid, {"host": "no-such-host"}).status_code == 400
        assert unshelve(sid, {"availability_zone": "no-such-zone"}).status_code == 400
        assert unshelve(sid, {"availability_zone": None}, "2.90").status_code == 400
        r = unshelve(sid, {"host": HOST_B})  # the server is pinned to "nova"; host B is in mv-az2
        assert r.status_code == 400 and "availability zone" in r.text
        r = unshelve(sid, {"availability_zone": "nova", "host": HOST_B})
        assert r.status_code == 400, r.text
        assert state(sid)["status"] == "SHELVED_OFFLOADED"  # refusals changed nothing

        # availability_zone null unpins it; with a host it lands there
        r = unshelve(sid, {"availability_zone": None, "host": HOST_B})
        assert r.status_code == 202, r.text
        s = settle(sid, "ACTIVE")
        assert s["OS-EXT-SRV-ATTR:host"] == HOST_B and s["OS-EXT-AZ:availability_zone"] == "mv-az2"
        assert sid in driver_b.list_vms()

        # a zone alone (2.77) pins it to that zone again: back to the first host
        shelve(sid)
        assert unshelve(sid, {"availability_zone": "nova"}).status_code == 202
        assert settle(sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] != HOST_B

        # the openstack CLI at 2.91: --no-availability-zone --host
        shelve(sid)
        res = cloud.cli("--os-compute-api-version", "2.91", "server", "unshelve", "--no-availability-zone",
                        "--host", HOST_B, sid)  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert settle(sid, "ACTIVE")["OS-EXT-SRV-ATTR:host"] == HOST_B
    finally:
        nova.delete(f"/servers/{sid}")
        _until("server deleted", lambda: nova.get(f"/servers/{sid}").status_code == 404)
        assert cloud.cli("aggregate", "remove", "host", str(agg["id"]), HOST_B).returncode == 0
        nova.close()
        demo.close()
