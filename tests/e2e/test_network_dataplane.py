"""The Linux network driver on real bridges, namespaces, dnsmasq and iptables (no VMs).

"Guests" are namespaces plugged into the network bridges like VMs (a veth whose bridge end
is named like the port's tap). Every test removes what it built (Lab.close: driver removal
plus a sweep of the test's unique token), even on failure.
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import threading
import time

import pytest

from kumo.agents.network.metadata_proxy import sign
from kumo.agents.network.specs import FilterRule, FloatingIPSpec, RouterLeg, RouterSpec
from tests.e2e.netlab import Lab, require_root_tools, sh

ALLOW_ALL_EGRESS = [FilterRule("egress", "IPv4"), FilterRule("egress", "IPv6")]


@pytest.fixture
def lab(tmp_path, request):
    require_root_tools()
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print(lab.dump())  # ip -d link and the filter table, in the failure report
        lab.close()


def ingress_from(cidr: str, protocol: str | None = None) -> FilterRule:
    return FilterRule("ingress", "IPv4", protocol=protocol, remote_ip_prefix=cidr)


def test_guests_get_dhcp_leases_and_ping_each_other(lab: Lab) -> None:
    net, subnet = lab.network("10.91.1.0/24")
    g1, g2 = lab.guest(net, subnet, 11), lab.guest(net, subnet, 12)
    lab.dhcp(net, subnet, [g1, g2])
    group = [ingress_from(subnet.cidr), *ALLOW_ALL_EGRESS]  # like "default": members talk freely
    lab.protect(g1, group)
    lab.protect(g2, group)
    assert g1.dhcp() == "10.91.1.11"
    assert g2.dhcp() == "10.91.1.12"
    routes = sh(["ip", "route"], netns=g1.ns).stdout
    assert "169.254.169.254 via 10.91.1.2" in routes and "default via 10.91.1.1" in routes
    assert g1.ping(g2.ip) and g2.ping(g1.ip)


def test_security_group_blocks_ping_until_icmp_rule_added(lab: Lab) -> None:
    net, subnet = lab.network("10.91.2.0/24")
    g1, g2 = lab.guest(net, subnet, 11), lab.guest(net, subnet, 12)
    lab.dhcp(net, subnet, [g1, g2])
    lab.protect(g1, ALLOW_ALL_EGRESS)
    lab.protect(g2, [FilterRule("ingress", "IPv4", "tcp", 22, 22), *ALLOW_ALL_EGRESS])
    g1.dhcp()
    g2.dhcp()
    assert not g1.ping(g2.ip, count=1), "ping got through a group without an ICMP rule"
    lab.protect(g2, [FilterRule("ingress", "IPv4", "tcp", 22, 22), FilterRule("ingress", "IPv4", "icmp"),
                     *ALLOW_ALL_EGRESS])
    # the echo replies reach g1 although g1 has no ingress rule (stateful) ...
    assert g1.ping(g2.ip)
    # ... but g2's own pings do not
    assert not g2.ping(g1.ip, count=1)
    # anti-spoofing: g1 taking another address cannot talk any more
    sh(["ip", "addr", "flush", "dev", g1.dev], netns=g1.ns)
    sh(["ip", "addr", "add", "10.91.2.99/24", "dev", g1.dev], netns=g1.ns)
    assert not g1.ping(g2.ip, count=1)


def test_tenant_networks_are_isolated_until_a_router_joins_them(lab: Lab) -> None:
    net_a, sub_a = lab.network("10.91.3.0/24")
    net_b, sub_b = lab.network("10.91.4.0/24")
    ga, gb = lab.guest(net_a, sub_a, 11), lab.guest(net_b, sub_b, 11)
    lab.dhcp(net_a, sub_a, [ga])
    lab.dhcp(net_b, sub_b, [gb])
    rules = [ingress_from("10.91.0.0/16", "icmp"), *ALLOW_ALL_EGRESS]
    lab.protect(ga, rules)
    lab.protect(gb, rules)
    ga.dhcp()
    gb.dhcp()
    assert not ga.ping(gb.ip, count=1)
    router = RouterSpec(id=lab.uid("r"), interfaces=(
        RouterLeg(lab.uid("p"), net_a.id, "fa:16:3e:aa:00:01", ("10.91.3.1/24",)),
        RouterLeg(lab.uid("p"), net_b.id, "fa:16:3e:aa:00:02", ("10.91.4.1/24",)),
    ))
    lab.driver.ensure_router(router)
    lab.driver.ensure_router(router)  # idempotent
    assert ga.ping(gb.ip) and gb.ping(ga.ip)
    # detaching an interface separates them again
    lab.driver.ensure_router(RouterSpec(id=router.id, interfaces=router.interfaces[:1]))
    assert not ga.ping(gb.ip, count=1)
    lab.driver.remove_router(lab.driver.router_key(router))
    assert lab.driver.router_key(router) not in lab.driver.observe_routers()


def test_floating_ip_reachable_from_the_external_test_namespace(lab: Lab) -> None:
    pub, pub_sub = lab.network("172.30.91.0/24", external=True)
    net, subnet = lab.network("10.91.5.0/24")
    g = lab.guest(net, subnet, 11)
    lab.dhcp(net, subnet, [g])
    lab.protect(g, [ingress_from("0.0.0.0/0", "icmp"), *ALLOW_ALL_EGRESS])
    g.dhcp()
    router = RouterSpec(
        id=lab.uid("r"),
        interfaces=(RouterLeg(lab.uid("p"), net.id, "fa:16:3e:bb:00:01", ("10.91.5.1/24",)),),
        gateway=RouterLeg(lab.uid("p"), pub.id, "fa:16:3e:bb:00:02", ("172.30.91.10/24",), physical_network="public"),
        gateway_nexthop="172.30.91.1",
        floating_ips=(FloatingIPSpec("172.30.91.50", g.ip),),
    )
    lab.driver.ensure_router(router)
    pubns = lab.config.public_test_namespace
    assert "172.30.91.254/24" in sh(["ip", "-o", "addr"], netns=pubns).stdout
    assert sh(["busybox", "ping", "-c", "2", "-W", "1", "172.30.91.50"], netns=pubns, check=False).returncode == 0
    assert sh(["busybox", "ping", "-c", "1", "-W", "1", g.ip], netns=pubns, check=False).returncode != 0
    # the guest reaches the external test namespace (SNAT as its floating IP)
    assert g.ping("172.30.91.254")
    # the floating IP goes away: unreachable again
    lab.driver.ensure_router(RouterSpec(id=router.id, interfaces=router.interfaces, gateway=router.gateway,
                                        gateway_nexthop="172.30.91.1"))
    assert sh(["busybox", "ping", "-c", "1", "-W", "1", "172.30.91.50"], netns=pubns, check=False).returncode != 0


class _MetadataStub(http.server.BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = json.dumps({"uuid": self.headers.get("X-Instance-ID")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


def test_metadata_proxy_answers_at_169_254_169_254(lab: Lab) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MetadataStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        lab.config.metadata_url = f"http://127.0.0.1:{server.server_port}/compute-metadata"
        net, subnet = lab.network("10.91.6.0/24")
        g = lab.guest(net, subnet, 11)
        lab.dhcp(net, subnet, [g])
        lab.protect(g, ALLOW_ALL_EGRESS)
        g.dhcp()
        url = "http://169.254.169.254/openstack/latest/meta_data.json"
        deadline, out = time.monotonic() + 10, None
        while time.monotonic() < deadline:
            out = sh(["busybox", "wget", "-q", "-O", "-", url], netns=g.ns, check=False, timeout=10)
            if out.returncode == 0:
                break
            time.sleep(0.2)
        assert out is not None and out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"uuid": f"vm-{g.ns}"}
        seen = _MetadataStub.seen[-1]
        assert seen["path"] == "/compute-metadata/openstack/latest/meta_data.json"
        assert seen["x-forwarded-for"] == g.ip and seen["x-tenant-id"] == "proj-1"
        assert seen["x-instance-id-signature"] == sign("s3cret", f"vm-{g.ns}")
    finally:
        server.shutdown()
        server.server_close()


def test_names_are_kumo_prefixed() -> None:
    from kumo.privileged import PrivilegedError, ip

    with pytest.raises(PrivilegedError):
        ip.link_delete("eth0")
    with pytest.raises(PrivilegedError):
        ip.netns_sysctl("krouter-x", "kernel.panic", "1")
    assert ipaddress.ip_address("169.254.169.254")
