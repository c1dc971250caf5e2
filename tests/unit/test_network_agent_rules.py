"""Pure parts of the network data plane: iptables rules, NAT, dnsmasq files, API-state translation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kumo.agents.network import dhcp, translate
from kumo.agents.network.agent import NetworkAgent
from kumo.agents.network.config import AgentSettings
from kumo.agents.network.fake import FakeDriver
from kumo.agents.network.firewall import build_chains
from kumo.agents.network.nat import nat_table
from kumo.agents.network.specs import (
    DhcpHost,
    DhcpSpec,
    FilterRule,
    FirewallSpec,
    FloatingIPSpec,
    PortFilter,
    RouterLeg,
    RouterSpec,
    SubnetSpec,
)
from kumo.privileged import PrivilegedError, check_name

PORT = PortFilter("aaaaaaaaaa-1", "ktap-aaaaaaaaaa", "fa:16:3e:00:00:01", ("10.0.0.5",),
                  allowed_address_pairs=(("10.0.0.50", ""),),
                  rules=(FilterRule("ingress", "IPv4", "tcp", 22, 22, "0.0.0.0/0"),
                         FilterRule("ingress", "IPv4", "icmp", 8, None, "10.1.0.0/16"),
                         FilterRule("ingress", "IPv6", "tcp", 80, 81),
                         FilterRule("egress", "IPv4")))


def test_forward_chain_checks_both_ends_then_accepts_kumo_ports() -> None:
    chains = build_chains(FirewallSpec(ports=(PORT,)), 4)
    fwd = chains["KUMO-FORWARD"]
    assert fwd[0] == "-m physdev --physdev-out ktap-aaaaaaaaaa --physdev-is-bridged -j KUMO-Iaaaaaaaaaa"
    assert fwd[1] == "-m physdev --physdev-in ktap-aaaaaaaaaa --physdev-is-bridged -j KUMO-Oaaaaaaaaaa"
    assert fwd[-1] == "-m physdev --physdev-in kv+ --physdev-is-bridged -j ACCEPT"
    assert set(chains) == {"KUMO-FORWARD", "KUMO-Iaaaaaaaaaa", "KUMO-Oaaaaaaaaaa", "KUMO-Saaaaaaaaaa"}


def test_ingress_rules_default_deny_and_stateful() -> None:
    ingress = build_chains(FirewallSpec(ports=(PORT,)), 4)["KUMO-Iaaaaaaaaaa"]
    assert ingress[0] == "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    assert "-p tcp -m tcp --dport 22 -j RETURN" in ingress  # 0.0.0.0/0: no source match
    assert "-s 10.1.0.0/16 -p icmp --icmp-type 8 -j RETURN" in ingress
    assert not any("80" in r for r in ingress)  # the IPv6 rule is not in the IPv4 chain
    assert ingress[-1] == "-j DROP"
    v6 = build_chains(FirewallSpec(ports=(PORT,)), 6)["KUMO-Iaaaaaaaaaa"]
    assert "-p tcp -m tcp --dport 80:81 -j RETURN" in v6


def test_egress_anti_spoofing_and_dhcp() -> None:
    chains = build_chains(FirewallSpec(ports=(PORT,)), 4)
    egress, spoof = chains["KUMO-Oaaaaaaaaaa"], chains["KUMO-Saaaaaaaaaa"]
    assert egress.index("-j KUMO-Saaaaaaaaaa") == 1  # only DHCP discovery comes before the spoof check
    assert "-p udp -m udp --sport 67 --dport 68 -j DROP" in egress  # no rogue DHCP server
    assert spoof == ["-s 10.0.0.5/32 -m mac --mac-source fa:16:3e:00:00:01 -j RETURN",
                     "-s 10.0.0.50/32 -m mac --mac-source fa:16:3e:00:00:01 -j RETURN", "-j DROP"]
    assert egress[-2:] == ["-j RETURN", "-j DROP"]  # allow-all egress rule, then the default


def test_chain_prefix_for_isolated_tests() -> None:
    chains = build_chains(FirewallSpec(ports=(PORT,)), 4, prefix="KUMO-Tab12-", accept=("ktap-ab12+",))
    assert all(name.startswith("KUMO-Tab12-") for name in chains)
    assert "--physdev-in ktap-ab12+" in chains["KUMO-Tab12-FORWARD"][-1]


def test_router_nat() -> None:
    spec = RouterSpec("r1", gateway=RouterLeg("p", "n", "fa:16:3e:00:00:09", ("172.24.4.10/24",)),
                      floating_ips=(FloatingIPSpec("172.24.4.50", "10.0.0.5"),))
    text = nat_table(spec, "kvhp")
    assert "-A PREROUTING -d 172.24.4.50/32 -j DNAT --to-destination 10.0.0.5" in text
    assert "-A POSTROUTING -s 10.0.0.5/32 -o kvhp -j SNAT --to-source 172.24.4.50" in text
    assert text.index("--to-source 172.24.4.50") < text.index("--to-source 172.24.4.10")
    no_snat = nat_table(RouterSpec("r1", gateway=spec.gateway, enable_snat=False), "kvhp")
    assert "SNAT" not in no_snat and "DNAT" not in no_snat


def test_dnsmasq_files(tmp_path: Path) -> None:
    subnet = SubnetSpec("s1", "10.0.0.0/24", gateway_ip="10.0.0.1", dns_nameservers=("192.0.2.53",),
                        host_routes=(("192.168.0.0/24", "10.0.0.9"),))
    spec = DhcpSpec("n1", "fa:16:3e:00:00:02", ("10.0.0.2/24",), (subnet,),
                    hosts=(DhcpHost("FA:16:3E:00:00:05", "10.0.0.5", "host-10-0-0-5"),))
    argv = dhcp.dnsmasq_argv(spec, "kvnX", tmp_path)
    assert "--port=0" in argv and "--no-ping" in argv and "--bind-interfaces" in argv
    assert "--dhcp-range=set:subnet0,10.0.0.0,static,255.255.255.0,86400s" in argv
    assert dhcp.hosts_file(spec) == "fa:16:3e:00:00:05,10.0.0.5,host-10-0-0-5\n"
    opts = dhcp.opts_file(spec)
    assert ("tag:subnet0,option:classless-static-route,169.254.169.254/32,10.0.0.2,"
            "192.168.0.0/24,10.0.0.9,0.0.0.0/0,10.0.0.1") in opts
    assert "tag:subnet0,option:dns-server,192.0.2.53" in opts


def test_prefix_guard() -> None:
    for bad in ("eth0", "lo", "docker0", "kbr-" + "x" * 20, "kv;rm"):
        with pytest.raises(PrivilegedError):
            check_name(bad)
    with pytest.raises(PrivilegedError):
        check_name("FORWARD", "chain")
    assert check_name("ktap-0123456789") == "ktap-0123456789"


STATE = {
    "revision": 7,
    "networks": [
        {"id": "net-a", "mtu": 1450, "router_external": False, "subnet_ids": ["sub-a"],
         "segments": [{"network_type": "vxlan", "physical_network": None, "segmentation_id": 1001}]},
        {"id": "net-pub", "mtu": 1500, "router_external": True, "subnet_ids": ["sub-pub"],
         "segments": [{"network_type": "flat", "physical_network": "public", "segmentation_id": None}]},
    ],
    "subnets": [
        {"id": "sub-a", "network_id": "net-a", "ip_version": 4, "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1",
         "enable_dhcp": True, "dns_nameservers": [], "host_routes": []},
        {"id": "sub-pub", "network_id": "net-pub", "ip_version": 4, "cidr": "172.24.4.0/24",
         "gateway_ip": "172.24.4.1", "enable_dhcp": False},
    ],
    "ports": [
        {"id": "dhcp-port", "network_id": "net-a", "mac_address": "fa:16:3e:00:00:02", "device_owner": "network:dhcp",
         "fixed_ips": [{"subnet_id": "sub-a", "ip_address": "10.0.0.2"}], "status": "DOWN"},
        {"id": "vm-port-1", "network_id": "net-a", "mac_address": "fa:16:3e:00:00:05", "device_owner": "compute:nova",
         "device_id": "server-1", "project_id": "p1", "binding_host_id": "node1", "status": "DOWN",
         "fixed_ips": [{"subnet_id": "sub-a", "ip_address": "10.0.0.5"}], "port_security_enabled": True,
         "security_group_ids": ["sg-1"], "allowed_address_pairs": []},
        {"id": "vm-port-2", "network_id": "net-a", "mac_address": "fa:16:3e:00:00:06", "device_owner": "compute:nova",
         "device_id": "server-2", "project_id": "p1", "binding_host_id": "node2", "status": "DOWN",
         "fixed_ips": [{"subnet_id": "sub-a", "ip_address": "10.0.0.6"}], "port_security_enabled": True,
         "security_group_ids": ["sg-1"], "allowed_address_pairs": [{"ip_address": "10.0.0.60"}]},
        {"id": "rtr-if", "network_id": "net-a", "mac_address": "fa:16:3e:00:00:01",
         "device_owner": "network:router_interface", "device_id": "r1", "status": "DOWN",
         "fixed_ips": [{"subnet_id": "sub-a", "ip_address": "10.0.0.1"}]},
    ],
    "routers": [{
        "id": "r1", "admin_state_up": True,
        "external_gateway": {"network_id": "net-pub", "port_id": "rtr-gw", "enable_snat": True,
                             "mac_address": "fa:16:3e:00:00:0a",
                             "external_fixed_ips": [{"subnet_id": "sub-pub", "ip_address": "172.24.4.10"}]},
        "interfaces": [{"port_id": "rtr-if", "network_id": "net-a", "subnet_id": "sub-a", "ip_address": "10.0.0.1",
                        "cidr": "10.0.0.0/24", "mac_address": "fa:16:3e:00:00:01"}],
        "routes": [],
        "floating_ips": [{"id": "fip-1", "floating_ip_address": "172.24.4.50", "port_id": "vm-port-1",
                          "fixed_ip_address": "10.0.0.5", "status": "DOWN"}],
    }],
    "floating_ips": [{"id": "fip-1", "floating_ip_address": "172.24.4.50", "port_id": "vm-port-1",
                      "fixed_ip_address": "10.0.0.5", "router_id": "r1", "status": "DOWN"}],
    "security_groups": [{"id": "sg-1", "rules": [
        {"direction": "ingress", "ethertype": "IPv4", "protocol": None, "remote_group_id": "sg-1",
         "remote_ip_prefix": None, "port_range_min": None, "port_range_max": None},
        {"direction": "egress", "ethertype": "IPv4", "protocol": None, "remote_group_id": None,
         "remote_ip_prefix": None, "port_range_min": None, "port_range_max": None},
    ]}],
}


def test_translate_state_document() -> None:
    d = translate.desired(STATE, "node1", set(), lambda pid: "ktap-" + pid[:10])
    assert d.networks["net-a"].network_type == "vxlan" and d.networks["net-a"].mtu == 1450
    assert d.networks["net-pub"].external and d.networks["net-pub"].physical_network == "public"
    dh = d.dhcp["net-a"]
    assert dh.addresses == ("10.0.0.2/24",)
    assert {h.ip_address for h in dh.hosts} == {"10.0.0.1", "10.0.0.5", "10.0.0.6"}
    assert {(m.ip_address, m.device_id) for m in dh.metadata} == {("10.0.0.5", "server-1"), ("10.0.0.6", "server-2")}
    r = d.routers["r1"]
    assert r.interfaces[0].addresses == ("10.0.0.1/24",)
    assert r.gateway is not None and r.gateway.addresses == ("172.24.4.10/24",) and r.gateway.physical_network == "public"
    assert r.gateway_nexthop == "172.24.4.1" and r.floating_ips == (FloatingIPSpec("172.24.4.50", "10.0.0.5"),)
    # only this host's VM port is filtered; the remote group expands to every member address
    (f,) = d.firewall.ports
    assert f.port_id == "vm-port-1" and f.device == "ktap-vm-port-1"
    assert {x.remote_ip_prefix for x in f.rules if x.direction == "ingress"} == {
        "10.0.0.5/32", "10.0.0.6/32", "10.0.0.60/32"}


class _Api:
    def __init__(self) -> None:
        self.statuses: dict[str, str] = {}

    async def port_status(self, pid: str, status: str, host: str) -> bool:
        self.statuses[pid] = status
        return True

    async def floatingip_status(self, fid: str, status: str) -> bool:
        self.statuses[fid] = status
        return True


def test_agent_with_fake_driver_converges_and_reports(tmp_path: Path) -> None:
    async def go() -> None:
        driver, api = FakeDriver(), _Api()
        agent = NetworkAgent(driver, api, AgentSettings(host="node1", state_dir=tmp_path))  # type: ignore[arg-type]
        from kumo.agents.network.specs import PortSpec

        driver.plug_port(PortSpec("vm-port-1", "net-a", "fa:16:3e:00:00:05"))
        await agent.apply(STATE)
        await agent.wait_converged(5)
        assert set(driver.networks) == {"kbr-net-a", "kbr-net-pub"}
        assert set(driver.dhcp) == {"kdhcp-net-a"} and set(driver.routers) == {"krouter-r1"}
        wanted = agent.wanted_statuses(driver.observe_ports())
        assert wanted[("port", "vm-port-1")] == "ACTIVE"
        assert wanted[("port", "dhcp-port")] == "ACTIVE" and wanted[("port", "rtr-gw")] == "ACTIVE"
        assert wanted[("floatingip", "fip-1")] == "ACTIVE"
        # the router goes away in the API: the agent removes it, nothing else
        await agent.apply({**STATE, "revision": 8, "routers": [], "floating_ips": []})
        await agent.wait_converged(5)
        assert driver.routers == {} and set(driver.dhcp) == {"kdhcp-net-a"}
        await agent.stop()

    asyncio.run(go())


def test_vm_port_active_only_once_its_dhcp_host_is_live(tmp_path: Path) -> None:
    """Like Neutron's DHCP provisioning block: wired and filtered is not enough while dnsmasq lacks the MAC."""

    async def go() -> None:
        from kumo.agents.network.specs import PortSpec

        driver, api = FakeDriver(), _Api()
        gate = asyncio.Event()
        real_ensure = driver.ensure_dhcp

        def slow_ensure(spec):  # type: ignore[no-untyped-def]
            if any(h.ip_address == "10.0.0.5" for h in spec.hosts) and not gate.is_set():
                raise RuntimeError("dnsmasq not reloaded yet")
            real_ensure(spec)

        agent = NetworkAgent(driver, api, AgentSettings(host="node1", state_dir=tmp_path))  # type: ignore[arg-type]
        agent.dhcp._ensure = slow_ensure  # type: ignore[attr-defined]
        driver.plug_port(PortSpec("vm-port-1", "net-a", "fa:16:3e:00:00:05"))
        await agent.apply(STATE)
        for _ in range(50):
            if agent.firewall.applied().get("firewall") is not None:
                break
            await asyncio.sleep(0.05)
        present = driver.observe_ports()
        assert agent.wanted_statuses(present)[("port", "vm-port-1")] == "DOWN"
        gate.set()  # the reconciler retries the DHCP spec; the port follows
        for _ in range(200):
            if agent.wanted_statuses(present)[("port", "vm-port-1")] == "ACTIVE":
                break
            await asyncio.sleep(0.05)
        assert agent.wanted_statuses(present)[("port", "vm-port-1")] == "ACTIVE"
        # a compute-only node (DHCP served elsewhere) reports on L2 alone
        l2 = NetworkAgent(FakeDriver(), _Api(), AgentSettings(host="node1", state_dir=tmp_path, dhcp=False))  # type: ignore[arg-type]
        l2.driver.plug_port(PortSpec("vm-port-1", "net-a", "fa:16:3e:00:00:05"))
        await l2.apply(STATE)
        await l2.wait_converged(5)
        assert l2.wanted_statuses(l2.driver.observe_ports())[("port", "vm-port-1")] == "ACTIVE"
        await agent.stop()
        await l2.stop()

    asyncio.run(go())


def test_linkwatch_wakes_on_a_new_link_in_a_private_netns() -> None:
    import os
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root for a private network namespace")
    script = (
        "import asyncio, subprocess, time\n"
        "from kumo.agents.network import linkwatch\n"
        "async def main():\n"
        "    hits = []\n"
        "    t = asyncio.create_task(linkwatch.watch(lambda: hits.append(1)))\n"
        "    await asyncio.sleep(0.2)\n"
        "    subprocess.run(['ip', 'tuntap', 'add', 'ktap-lwtest', 'mode', 'tap'], check=True)\n"
        "    for _ in range(500):\n"
        "        if hits: break\n"
        "        await asyncio.sleep(0.01)\n"
        "    t.cancel()\n"
        "    print('woken' if hits else 'not woken')\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(["unshare", "-n", sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "woken", out.stderr


def test_kumo_chains_leave_a_longer_prefix_alone(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The all-in-one prefix "KUMO-" is a prefix of every test lab's ("KUMO-T1ea2-"): those
    chains are another agent's and must not be flushed or deleted as stale."""
    from kumo.privileged import iptables

    saved = "\n".join([
        "*filter", ":FORWARD ACCEPT [0:0]", ":KUMO-FORWARD - [0:0]", ":KUMO-I1143e9e8-7 - [0:0]",
        ":KUMO-S1143e9e8-7 - [0:0]", ":KUMO-T1ea2-FORWARD - [0:0]", ":KUMO-T1ea2-I1ea2pab12c - [0:0]",
        ":OTHER - [0:0]", "COMMIT",
    ])
    monkeypatch.setattr(iptables, "run", lambda argv, **_kw: saved)
    assert iptables.kumo_chains(4, "filter", "KUMO-") == {"KUMO-FORWARD", "KUMO-I1143e9e8-7", "KUMO-S1143e9e8-7"}
    assert iptables.kumo_chains(4, "filter", "KUMO-T1ea2-") == {"KUMO-T1ea2-FORWARD", "KUMO-T1ea2-I1ea2pab12c"}
