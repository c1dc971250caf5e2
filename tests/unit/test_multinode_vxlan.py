"""Multi-node data plane pieces: VXLAN peers from the state document, compute-only network agents."""

from __future__ import annotations

import asyncio

from kumo.agents.network import translate
from kumo.agents.network.agent import NetworkAgent
from kumo.agents.network.config import AgentSettings
from kumo.agents.network.fake import FakeDriver

DOC = {
    "revision": 3,
    "networks": [
        {"id": "n-vx", "mtu": 1450, "segments": [{"network_type": "vxlan", "segmentation_id": 1001}],
         "subnet_ids": ["s1"]},
        {"id": "n-pub", "mtu": 1500, "router_external": True,
         "segments": [{"network_type": "flat", "physical_network": "public"}], "subnet_ids": []},
    ],
    "subnets": [{"id": "s1", "network_id": "n-vx", "cidr": "10.9.0.0/24", "gateway_ip": "10.9.0.1",
                 "enable_dhcp": True}],
    "ports": [{"id": "dhcp1", "network_id": "n-vx", "mac_address": "fa:16:3e:00:00:01", "device_owner": "network:dhcp",
               "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.9.0.2"}]}],
    "routers": [{"id": "r1", "interfaces": [{"port_id": "rp1", "network_id": "n-vx", "subnet_id": "s1",
                                             "ip_address": "10.9.0.1", "cidr": "10.9.0.0/24"}]}],
    "tunnel_endpoints": [{"host": "c1", "ip": "10.250.1.11"}, {"host": "c2", "ip": "10.250.1.12"},
                         {"host": "net1", "ip": "10.250.1.21"}],
}


def test_vxlan_peers_are_the_other_hosts_endpoints():
    d = translate.desired(DOC, "c1")
    assert d.networks["n-vx"].vxlan_peers == ("10.250.1.12", "10.250.1.21")
    assert d.networks["n-pub"].vxlan_peers == ()  # flat: no tunnel
    assert translate.desired({**DOC, "tunnel_endpoints": []}, "c1").networks["n-vx"].vxlan_peers == ()


def test_compute_only_agent_hosts_no_dhcp_and_no_routers(tmp_path):
    async def run(**flags: bool) -> tuple[set[str], set[str]]:
        config = AgentSettings(host="c1", state_dir=tmp_path, **flags)
        agent = NetworkAgent(FakeDriver(), api=None, config=config)  # type: ignore[arg-type]
        await agent.apply(DOC)
        try:
            return set(agent.desired.dhcp), set(agent.desired.routers)
        finally:
            for r in agent.reconcilers:
                await r.close()

    assert asyncio.run(run()) == ({"n-vx"}, {"r1"})
    assert asyncio.run(run(dhcp=False, l3=False)) == (set(), set())
