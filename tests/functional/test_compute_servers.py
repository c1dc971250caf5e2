"""Compute (fake driver) driven by the real openstack CLI, openstacksdk and raw HTTP."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from tests.support import KumoCloud, unique

pytestmark = pytest.mark.cli

MV = {"OpenStack-API-Version": "compute 2.60"}


@pytest.fixture(scope="module")
def nova(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token, **MV},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def image_id(cloud: KumoCloud, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("img") / "tiny.raw"
    path.write_bytes(b"\0" * 1048576)
    img = cloud.cli_json("image", "create", "--public", "--disk-format", "raw", "--container-format", "bare", "--file", str(path),
                         unique("tiny"))  # fmt: skip
    return img["id"]


def wait_status(nova: httpx.Client, sid: str, *wanted: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = nova.get(f"/servers/{sid}")
        if r.status_code == 404 and "DELETED" in wanted:
            return {"status": "DELETED"}
        body = r.json()["server"]
        if body["status"] in wanted and body["OS-EXT-STS:task_state"] is None:
            return body
        assert time.monotonic() < deadline, (
            f"server {sid} stuck in {body['status']}/{body['OS-EXT-STS:task_state']}"
        )
        time.sleep(0.1)


def test_versions_and_errors(cloud: KumoCloud, nova: httpx.Client):
    root = httpx.get(cloud.url + "/compute/", timeout=10).json()
    assert root["versions"][0]["id"] == "v2.0" and root["versions"][1]["status"] == "CURRENT"
    for v in root["versions"]:
        doc = httpx.get(v["links"][0]["href"], timeout=10).json()
        assert list(doc) == ["version"]
    r = httpx.get(
        cloud.url + "/compute/v2.1/servers/" + "0" * 36,
        timeout=10,
        headers={"X-Auth-Token": cloud.admin_token, "X-OpenStack-Nova-API-Version": "2.10"},
    )
    assert r.status_code == 404 and "itemNotFound" in r.json()
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.10" and "x-compute-request-id" in r.headers
    assert nova.post("/servers", json={"server": {"name": "x"}}).json()["badRequest"]["code"] == 400
    assert nova.get("/servers", headers={"OpenStack-API-Version": "compute 9.99"}).status_code == 406


def test_flavors_and_keypairs_sdk(cloud: KumoCloud):
    conn = cloud.sdk()
    names = {f.name for f in conn.compute.flavors()}
    assert {"m1.tiny", "m1.small", "m1.nano", "m1.micro"} <= names
    f = conn.compute.create_flavor(name=unique("flv"), ram=64, vcpus=1, disk=0, is_public=False)
    try:
        conn.compute.flavor_add_tenant_access(f, conn.current_project_id)
        assert conn.compute.get_flavor_access(f)[0]["tenant_id"] == conn.current_project_id
        conn.compute.create_flavor_extra_specs(f, {"hw:cpu_policy": "shared"})
        assert conn.compute.fetch_flavor_extra_specs(f).extra_specs == {"hw:cpu_policy": "shared"}
    finally:
        conn.compute.delete_flavor(f)
    kp = conn.compute.create_keypair(name=unique("kp"))
    try:
        assert kp.private_key and conn.compute.get_keypair(kp.name).fingerprint == kp.fingerprint
    finally:
        conn.compute.delete_keypair(kp)


def test_server_lifecycle_cli(cloud: KumoCloud, ensure_cli, image_id: str):
    name = unique("vm")
    server = cloud.cli_json("server", "create", "--image", image_id, "--flavor", "m1.nano", "--nic", "none",
                            "--wait", name)  # other tests' networks in this project must not matter
    assert server["status"] == "ACTIVE"
    for args in (("server", "reboot", "--wait", name), ("server", "stop", name)):
        assert cloud.cli(*args).returncode == 0
    conn = cloud.sdk()
    conn.compute.wait_for_server(conn.compute.get_server(server["id"]), status="SHUTOFF", wait=20)
    conn.compute.start_server(server["id"])
    conn.compute.wait_for_server(conn.compute.get_server(server["id"]), status="ACTIVE", wait=20)
    assert cloud.cli("server", "resize", "--flavor", "m1.micro", "--wait", name).returncode == 0
    assert conn.compute.get_server(server["id"]).status == "VERIFY_RESIZE"
    conn.compute.confirm_server_resize(server["id"])
    s = conn.compute.wait_for_server(conn.compute.get_server(server["id"]), status="ACTIVE", wait=20)
    assert s.flavor["original_name"] == "m1.micro"
    snap = cloud.cli_json("server", "image", "create", "--wait", "--name", unique("snap"), name)
    assert snap["status"] == "active"
    conn.image.delete_image(snap["id"])
    assert cloud.cli("server", "delete", "--wait", name).returncode == 0


def test_actions_state_machine(nova: httpx.Client, image_id: str):
    r = nova.post("/servers", json={"server": {"name": unique("sm"), "imageRef": image_id, "flavorRef": "42", "networks": "none",
                                               "metadata": {"a": "b"}, "tags": ["t1"]}})  # fmt: skip
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    wait_status(nova, sid, "ACTIVE")
    assert nova.post(f"/servers/{sid}/action", json={"os-start": None}).status_code == 409
    assert nova.post(f"/servers/{sid}/action", json={"pause": None}).status_code == 202
    assert wait_status(nova, sid, "PAUSED")["OS-EXT-STS:power_state"] == 3
    assert nova.post(f"/servers/{sid}/action", json={"suspend": None}).status_code == 409
    nova.post(f"/servers/{sid}/action", json={"unpause": None})
    wait_status(nova, sid, "ACTIVE")
    nova.post(f"/servers/{sid}/action", json={"lock": None})
    assert nova.get(f"/servers/{sid}").json()["server"]["locked"] is True
    nova.post(f"/servers/{sid}/action", json={"unlock": None})
    r = nova.post(f"/servers/{sid}/action", json={"rebuild": {"imageRef": image_id, "name": "rebuilt"}})
    assert r.status_code == 202 and r.json()["server"]["name"] == "rebuilt"
    wait_status(nova, sid, "ACTIVE")
    out = nova.post(f"/servers/{sid}/action", json={"os-getConsoleOutput": {"length": 3}}).json()["output"]
    assert len(out.split("\n")) == 3
    acts = nova.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    assert {"create", "pause", "unpause", "lock", "unlock", "rebuild"} <= {a["action"] for a in acts}
    assert nova.get(f"/servers/{sid}/metadata").json() == {"metadata": {"a": "b"}}
    assert nova.get("/servers/detail", params={"tags": "t1"}).json()["servers"][0]["id"] == sid
    assert nova.delete(f"/servers/{sid}").status_code == 204
    wait_status(nova, sid, "DELETED")
    assert sid not in [s["id"] for s in nova.get("/servers").json()["servers"]]


def test_server_groups_and_quota(nova: httpx.Client, cloud: KumoCloud, image_id: str):
    g = nova.post("/os-server-groups", json={"server_group": {"name": "g", "policies": ["anti-affinity"]}},
                  headers={"OpenStack-API-Version": "compute 2.1"}).json()["server_group"]  # fmt: skip
    ids = []
    for _ in range(2):
        r = nova.post("/servers", json={"server": {"name": unique("ga"), "imageRef": image_id, "flavorRef": "42",
                                                   "networks": "none"},
                                        "os:scheduler_hints": {"group": g["id"]}})  # fmt: skip
        ids.append(r.json()["server"]["id"])
    states = [wait_status(nova, i, "ACTIVE", "ERROR") for i in ids]
    # one host: the second member cannot go anywhere
    assert sorted(s["status"] for s in states) == ["ACTIVE", "ERROR"]
    assert "No valid host" in [s for s in states if s["status"] == "ERROR"][0]["fault"]["message"]
    for i in ids:
        nova.delete(f"/servers/{i}")
    nova.delete(f"/os-server-groups/{g['id']}")
    # quota: a project limited to 0 instances gets 403
    project = cloud.new_project()
    user = cloud.new_user()
    with cloud.admin() as c:
        c.put(f"/projects/{project['id']}/users/{user['id']}/roles/{cloud.role_id('member')}")
    assert (
        nova.put(f"/os-quota-sets/{project['id']}", json={"quota_set": {"instances": 0}}).status_code == 200
    )
    conn = cloud.sdk_as(user_id=user["id"], password="secret-pw-1", project_id=project["id"])
    with pytest.raises(Exception) as exc:
        conn.compute.create_server(name="q", image_id=image_id, flavor_id="42", networks="none")
    assert "Quota exceeded" in str(exc.value)


def test_concurrent_creates_never_overcommit(nova: httpx.Client, cloud: KumoCloud, image_id: str):
    stats = nova.get("/os-hypervisors/statistics").json()["hypervisor_statistics"]
    free = stats["memory_mb"] * 1.5 - stats["memory_mb_used"]
    ram = int(free // 8) + 1  # at most 7 fit
    admin_project = cloud.sdk().current_project_id
    nova.put(f"/os-quota-sets/{admin_project}", json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}})
    flv = nova.post(
        "/flavors", json={"flavor": {"name": unique("big"), "ram": ram, "vcpus": 1, "disk": 0}}
    ).json()["flavor"]
    try:

        def create(i: int) -> str:
            r = nova.post(
                "/servers", json={"server": {"name": f"c{i}", "imageRef": image_id, "flavorRef": flv["id"],
                                            "networks": "none"}}
            )
            assert r.status_code == 202, r.text
            return r.json()["server"]["id"]

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            ids = list(pool.map(create, range(20)))
        final = [wait_status(nova, i, "ACTIVE", "ERROR") for i in ids]
        active = [s for s in final if s["status"] == "ACTIVE"]
        errors = [s for s in final if s["status"] == "ERROR"]
        assert len(active) <= 7 and len(errors) >= 13
        assert all("No valid host was found" in s["fault"]["message"] for s in errors)
        after = nova.get("/os-hypervisors/statistics").json()["hypervisor_statistics"]
        assert after["memory_mb_used"] <= after["memory_mb"] * 1.5
        for i in ids:
            nova.delete(f"/servers/{i}")
        for i in ids:
            wait_status(nova, i, "DELETED")
    finally:
        nova.delete(f"/flavors/{flv['id']}")
        nova.delete(f"/os-quota-sets/{admin_project}")


def test_server_ports_come_from_the_network_api(cloud: KumoCloud, nova: httpx.Client, image_id: str):
    conn = cloud.sdk()
    net = conn.network.create_network(name=unique("cnet"))
    conn.network.create_subnet(network_id=net.id, cidr="198.51.100.0/24", ip_version=4, name=unique("csub"))
    try:
        r = nova.post("/servers", json={"server": {"name": unique("netvm"), "imageRef": image_id, "flavorRef": "42",
                                                   "networks": [{"uuid": net.id}]}})  # fmt: skip
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
        server = wait_status(nova, sid, "ACTIVE")
        ports = list(conn.network.ports(device_id=sid))
        assert len(ports) == 1 and ports[0].device_owner == "compute:nova"
        ip = ports[0].fixed_ips[0]["ip_address"]
        assert server["addresses"][net.name][0]["addr"] == ip
        assert nova.get("/servers", params={"ip": ip.replace(".", r"\.")}).json()["servers"][0]["id"] == sid
        ifaces = nova.get(f"/servers/{sid}/os-interface").json()["interfaceAttachments"]
        assert [i["port_id"] for i in ifaces] == [ports[0].id]
        nova.delete(f"/servers/{sid}")
        wait_status(nova, sid, "DELETED")
        assert list(conn.network.ports(device_id=sid)) == []
    finally:
        for p in conn.network.ports(network_id=net.id):
            if p.device_owner.startswith("compute:"):
                conn.network.delete_port(p)
        for sub in conn.network.subnets(network_id=net.id):
            conn.network.delete_subnet(sub)
        conn.network.delete_network(net)
