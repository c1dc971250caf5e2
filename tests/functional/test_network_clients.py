"""The network service driven by the real openstack CLI, openstacksdk and raw HTTP."""

from __future__ import annotations

import concurrent.futures as cf
import time

import httpx
import pytest

from tests.support import KumoCloud, unique

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def net_http(cloud: KumoCloud):
    with httpx.Client(base_url=cloud.url + "/network", headers={"X-Auth-Token": cloud.admin_token},
                      timeout=60) as client:  # fmt: skip
        yield client


def test_versions_and_extensions(cloud: KumoCloud, net_http: httpx.Client):
    r = httpx.get(cloud.url + "/network/", timeout=10)
    assert r.status_code == 200 and r.json()["versions"][0]["id"] == "v2.0"
    names = [x["name"] for x in net_http.get("/v2.0/").json()["resources"]]
    assert {"network", "subnet", "port"} <= set(names)
    aliases = {e["alias"] for e in net_http.get("/v2.0/extensions").json()["extensions"]}
    assert {"router", "security-group", "external-net", "quotas", "agent"} <= aliases
    assert net_http.get("/v2.0/extensions/router").json()["extension"]["alias"] == "router"
    err = net_http.get("/v2.0/extensions/nope")
    assert err.status_code == 404 and "NeutronError" in err.json()


def test_default_topology(cloud: KumoCloud):
    nets = {n["Name"]: n for n in cloud.cli_json("network", "list", "--long")}
    assert {"public", "private"} <= set(nets)
    assert nets["public"]["Router Type"] in (True, "External")
    routers = cloud.cli_json("router", "list", cloud="kumo")
    assert [r["Name"] for r in routers] == ["router1"]
    subnets = {s["Name"]: s["Subnet"] for s in cloud.cli_json("subnet", "list", cloud="kumo")}
    assert subnets["private-subnet"] == "10.0.0.0/26"


def test_cli_network_subnet_port_lifecycle(cloud: KumoCloud, ensure_cli):
    name = unique("net")
    net = cloud.cli_json("network", "create", name, cloud="kumo")
    assert net["status"] == "ACTIVE" and net["mtu"] == 1450
    sub = cloud.cli_json("subnet", "create", "--network", name, "--subnet-range", "192.0.2.0/24",
                         "--dns-nameserver", "192.0.2.53", unique("sub"), cloud="kumo")
    assert sub["gateway_ip"] == "192.0.2.1"
    assert sub["allocation_pools"] == [{"start": "192.0.2.2", "end": "192.0.2.254"}]
    port = cloud.cli_json("port", "create", "--network", name, unique("port"), cloud="kumo")
    assert port["mac_address"].startswith("fa:16:3e:") and port["status"] == "DOWN"
    assert port["fixed_ips"][0]["ip_address"] == "192.0.2.3"  # .1 gateway, .2 DHCP port
    assert len(port["security_group_ids"]) == 1
    res = cloud.cli("port", "set", "--name", "renamed", port["id"], cloud="kumo")
    assert res.returncode == 0, res.stderr
    assert cloud.cli_json("port", "show", port["id"], cloud="kumo")["name"] == "renamed"
    # a subnet with a port in use cannot go; nor can the network
    res = cloud.cli("subnet", "delete", sub["id"], cloud="kumo")
    assert res.returncode != 0 and "409" in res.stderr
    res = cloud.cli("network", "delete", name, cloud="kumo")
    assert res.returncode != 0
    assert cloud.cli("port", "delete", port["id"], cloud="kumo").returncode == 0
    assert cloud.cli("subnet", "delete", sub["id"], cloud="kumo").returncode == 0  # the DHCP port goes with it
    assert cloud.cli("network", "delete", name, cloud="kumo").returncode == 0


def test_cli_router_floating_ip_security_group(cloud: KumoCloud, ensure_cli):
    net = cloud.cli_json("network", "create", unique("rnet"), cloud="kumo")
    sub = cloud.cli_json("subnet", "create", "--network", net["id"], "--subnet-range", "198.51.100.0/24",
                         unique("rsub"), cloud="kumo")
    router = cloud.cli_json("router", "create", unique("r"), cloud="kumo")
    assert cloud.cli("router", "set", "--external-gateway", "public", router["id"], cloud="kumo").returncode == 0
    assert cloud.cli("router", "add", "subnet", router["id"], sub["id"], cloud="kumo").returncode == 0
    port = cloud.cli_json("port", "create", "--network", net["id"], unique("vm"), cloud="kumo")
    fip = cloud.cli_json("floating", "ip", "create", "public", cloud="kumo")
    assert fip["floating_ip_address"].startswith("172.24.4.")
    res = cloud.cli("floating", "ip", "set", "--port", port["id"], fip["id"], cloud="kumo")
    assert res.returncode == 0, res.stderr
    shown = cloud.cli_json("floating", "ip", "show", fip["id"], cloud="kumo")
    assert shown["router_id"] == router["id"] and shown["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    assert cloud.cli("floating", "ip", "unset", "--port", fip["id"], cloud="kumo").returncode == 0
    assert cloud.cli_json("floating", "ip", "show", fip["id"], cloud="kumo")["port_id"] is None

    sg = cloud.cli_json("security", "group", "create", unique("sg"), cloud="kumo")
    rule = cloud.cli_json("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
                          "--remote-ip", "0.0.0.0/0", sg["id"], cloud="kumo")
    assert rule["port_range_min"] == 22 and rule["direction"] == "ingress"
    dup = cloud.cli("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22",
                    "--remote-ip", "0.0.0.0/0", sg["id"], cloud="kumo")
    assert dup.returncode != 0 and "409" in dup.stderr
    rules = cloud.cli_json("security", "group", "rule", "list", sg["id"], cloud="kumo")
    assert len(rules) == 3  # two default egress rules + ours
    assert cloud.cli("security", "group", "delete", sg["id"], cloud="kumo").returncode == 0

    for args in (("floating", "ip", "delete", fip["id"]), ("port", "delete", port["id"]),
                 ("router", "remove", "subnet", router["id"], sub["id"]), ("router", "delete", router["id"]),
                 ("network", "delete", net["id"])):
        res = cloud.cli(*args, cloud="kumo")
        assert res.returncode == 0, (args, res.stderr)


def test_sdk_paths_and_policies(cloud: KumoCloud):
    admin = cloud.sdk("kumo-admin")
    demo = cloud.sdk("kumo")
    net = demo.network.create_network(name=unique("sdk"))
    demo.network.create_subnet(network_id=net.id, ip_version=6, cidr="2001:db8:1::/64",
                               ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = demo.network.create_port(network_id=net.id)
    assert ":f816:3eff:fe" in port.fixed_ips[0]["ip_address"]
    # paging through a list follows networks_links
    names = [n.name for n in demo.network.networks(limit=1)]
    assert len(names) >= 2
    # a member may not create provider or external networks
    with pytest.raises(Exception) as exc:
        demo.network.create_network(name="x", is_router_external=True)
    assert "403" in str(exc.value) or "disallowed" in str(exc.value)
    # the admin sees bindings; If-Match guards updates
    p = admin.network.get_port(port.id)
    assert p.binding_vif_type == "unbound"
    with httpx.Client(base_url=cloud.url + "/network", headers={"X-Auth-Token": cloud.admin_token}) as c:
        r = c.put(f"/v2.0/ports/{port.id}", json={"port": {"name": "x"}},
                  headers={"If-Match": "revision_number=999"})
        assert r.status_code == 412
        r = c.put(f"/v2.0/ports/{port.id}/tags/blue")
        assert r.status_code == 201
        assert c.get("/v2.0/ports", params={"tags": "blue"}).json()["ports"][0]["id"] == port.id
    demo.network.delete_port(port)
    demo.network.delete_network(net)


def test_concurrent_port_creates_get_distinct_ips(cloud: KumoCloud):
    demo = cloud.sdk("kumo")
    token = demo.session.get_token()
    net = demo.network.create_network(name=unique("conc"))
    demo.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.77.0.0/26")
    with httpx.Client(base_url=cloud.url + "/network", headers={"X-Auth-Token": token}, timeout=60) as c:
        def create(_: int) -> httpx.Response:
            return c.post("/v2.0/ports", json={"port": {"network_id": net.id}})

        with cf.ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(create, range(50)))
        assert [a.status_code for a in answers] == [201] * 50
        ips = [a.json()["port"]["fixed_ips"][0]["ip_address"] for a in answers]
        assert len(set(ips)) == 50
        # 62 usable addresses: gateway + DHCP port + 50 ports leave 10
        for _ in range(10):
            assert create(0).status_code == 201
        last = create(0)
        assert last.status_code == 409 and last.json()["NeutronError"]["type"] == "IpAddressGenerationFailure"
    for p in demo.network.ports(network_id=net.id):
        if p.device_owner != "network:dhcp":
            demo.network.delete_port(p)
    demo.network.delete_network(net)


def test_agent_contract(cloud: KumoCloud, net_http: httpx.Client):
    body = {"agent": {"agent_type": "DHCP agent", "binary": "kumo-dhcp-agent", "host": unique("node"),
                      "configurations": {"networks": 0}}}
    agent = net_http.post("/v2.0/kumo-agent/agents/report", json=body).json()["agent"]
    assert agent["alive"] is True
    listed = net_http.get("/v2.0/agents", params={"agent_type": "DHCP agent"}).json()["agents"]
    assert agent["id"] in [a["id"] for a in listed]
    state = net_http.get("/v2.0/kumo-agent/state").json()
    assert {"revision", "networks", "subnets", "ports", "routers", "security_groups"} <= set(state)
    rev = state["revision"]
    dhcp = next(p for p in state["ports"] if p["device_owner"] == "network:dhcp")
    started = time.monotonic()
    with cf.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(net_http.get, "/v2.0/kumo-agent/state",
                              params={"since_revision": rev, "wait": 20})
        time.sleep(0.3)
        # (an all-in-one agent may have set it ACTIVE already: report something else)
        target = "ERROR" if dhcp["status"] != "ERROR" else "DOWN"
        r = net_http.put(f"/v2.0/kumo-agent/ports/{dhcp['id']}/status", json={"status": target})
        assert r.status_code == 200 and r.json()["port"]["status"] == target
        newer = waiting.result(timeout=30).json()
    assert newer["revision"] > rev and time.monotonic() - started < 5, (newer["revision"], rev, time.monotonic() - started, r.json())
    # a member may not use the agent API
    demo_token = cloud.sdk("kumo").session.get_token()
    r = httpx.get(cloud.url + "/network/v2.0/kumo-agent/state", headers={"X-Auth-Token": demo_token})
    assert r.status_code == 403
    assert net_http.delete(f"/v2.0/agents/{agent['id']}").status_code == 204
