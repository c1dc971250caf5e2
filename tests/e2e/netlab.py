"""A throw-away network lab for data-plane tests: the Linux driver with a unique prefix,
guest namespaces plugged like VMs, and a sweep that removes everything carrying the prefix."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from kumo.agents.network import names
from kumo.agents.network.config import AgentSettings
from kumo.agents.network.linux import LinuxDriver
from kumo.agents.network.specs import (
    DhcpHost,
    DhcpSpec,
    FilterRule,
    FirewallSpec,
    MetadataHost,
    NetworkSpec,
    PortFilter,
    SubnetSpec,
)
from kumo.privileged import ip, process

UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    elif [ -n "$router" ]; then
      ip route replace default via "${router%% *}" dev "$interface"
    fi
    ;;
esac
exit 0
"""


def require_root_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("data-plane tests need root")
    missing = [t for t in ("ip", "dnsmasq", "iptables", "iptables-restore", "busybox") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)} (scripts/test.sh installs them)")


def sh(argv: list[str], netns: str | None = None, timeout: float = 20, check: bool = True) -> subprocess.CompletedProcess:
    full = ["ip", "netns", "exec", netns, *argv] if netns else argv
    return subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=check)


class Guest:
    def __init__(self, lab: Lab, name: str, port_id: str, mac: str, ip_address: str) -> None:
        self.lab, self.ns, self.port_id, self.mac, self.ip = lab, name, port_id, mac, ip_address
        self.dev = f"kvt{lab.token}{name[-2:]}"

    def dhcp(self) -> str:
        """Run busybox udhcpc; return the address the guest got."""
        script = self.lab.tmp / "udhcpc.sh"
        sh(["busybox", "udhcpc", "-i", self.dev, "-s", str(script), "-n", "-q", "-t", "8", "-T", "1",
            "-O", "staticroutes"], netns=self.ns, timeout=30)
        return self.address()

    def address(self) -> str:
        out = sh(["ip", "-4", "-o", "addr", "show", "dev", self.dev], netns=self.ns).stdout.split()
        return out[3].split("/")[0] if len(out) > 3 else ""

    def ping(self, target: str, count: int = 2) -> bool:
        self.lab.ahead()
        r = sh(["busybox", "ping", "-c", str(count), "-W", "1", target], netns=self.ns, check=False)
        return r.returncode == 0


class Lab:
    """Everything a test builds, named with its own token, removed by ``close``."""

    def __init__(self, tmp: Path, metadata_url: str = "") -> None:
        self.token = secrets.token_hex(3)  # 6 hex chars at the start of every id, right after a name prefix
        self.tmp = tmp
        (tmp / "udhcpc.sh").write_text(UDHCPC_SCRIPT)
        (tmp / "udhcpc.sh").chmod(0o755)
        t = self.token
        self.config = AgentSettings(
            host="lab", state_dir=tmp / "state", bridge_mappings={"public": f"kbr-{t}pub"},
            public_test_namespace=f"kpub{t}", metadata_url=metadata_url, chain_prefix=f"KUMO-T{t}-",
            firewall_accept=(f"ktap-{t}+", f"kvd{t}+", f"kvr{t}+", f"kvg{t}+", f"kvpub{t}+"),
        )
        (tmp / "secret").write_text("s3cret\n")
        self.driver = LinuxDriver(self.config, metadata_secret_file=tmp / "secret")
        self.guests: list[Guest] = []
        self.filters: dict[str, PortFilter] = {}

    def uid(self, tag: str) -> str:
        return f"{self.token}{tag}{uuid.uuid4().hex[: 32 - len(tag) - len(self.token)]}"

    # -- building ----------------------------------------------------------------------------

    def network(self, cidr: str, *, gateway: bool = True, external: bool = False) -> tuple[NetworkSpec, SubnetSpec]:
        net = ipaddress.ip_network(cidr)
        subnet = SubnetSpec(id=self.uid("s"), cidr=cidr, gateway_ip=str(net[1]) if gateway else None,
                            enable_dhcp=not external, dns_nameservers=("192.0.2.53",))
        spec = NetworkSpec(id=self.uid("n"), network_type="flat" if external else "vxlan",
                           physical_network="public" if external else None, segmentation_id=None if external else 77,
                           external=external, subnets=(subnet,))
        self.driver.ensure_network(spec)
        return spec, subnet

    def dhcp(self, net: NetworkSpec, subnet: SubnetSpec, guests: list[Guest]) -> DhcpSpec:
        prefix = ipaddress.ip_network(subnet.cidr).prefixlen
        spec = DhcpSpec(
            network_id=net.id, mac_address="fa:16:3e:00:00:02",
            addresses=(f"{ipaddress.ip_network(subnet.cidr)[2]}/{prefix}",), subnets=(subnet,),
            hosts=tuple(DhcpHost(g.mac, g.ip, f"host-{g.ip.replace('.', '-')}") for g in guests),
            metadata=tuple(MetadataHost(g.ip, f"vm-{g.ns}", "proj-1") for g in guests),
        )
        self.driver.ensure_dhcp(spec)
        return spec

    def guest(self, net: NetworkSpec, subnet: SubnetSpec, index: int) -> Guest:
        n = len(self.guests)
        ns = f"ktest{self.token}g{n}"
        port_id = self.uid("p")
        mac = f"fa:16:3e:{int(self.token[:2], 16):02x}:{n:02x}:{index:02x}"
        guest = Guest(self, ns, port_id, mac, str(ipaddress.ip_network(subnet.cidr)[index]))
        self.guests.append(guest)
        ip.netns_add(ns)
        # like a VM's tap: the bridge-side end is named as the port's tap
        ip.veth_add(names.tap(port_id), guest.dev, self.driver.bridge_for(net.id, net.physical_network), ns, mac=mac)
        return guest

    def protect(self, guest: Guest, rules: list[FilterRule]) -> None:
        self.filters[guest.port_id] = PortFilter(guest.port_id, names.tap(guest.port_id), guest.mac, (guest.ip,),
                                                 rules=tuple(rules))
        self.driver.ensure_firewall(FirewallSpec(ports=tuple(self.filters.values())))

    def ahead(self) -> None:
        """Keep the lab's FORWARD jump first. A real kumo started on the host during a test puts
        its own jump at the top, and its chain accepts every ``ktap+``/``kv+`` bridge port, lab
        ones included, before the lab's security groups are consulted."""
        if not self.filters:
            return
        chain = f"{self.config.chain_prefix}FORWARD"
        jump = ["-m", "physdev", "--physdev-is-bridged", "-j", chain]
        for tool in ("iptables", "ip6tables"):
            first = sh([tool, "-w", "-S", "FORWARD", "1"], check=False).stdout
            if f"-j {chain}" in first or sh([tool, "-w", "-C", "FORWARD", *jump], check=False).returncode != 0:
                continue
            sh([tool, "-w", "-D", "FORWARD", *jump])
            sh([tool, "-w", "-I", "FORWARD", "1", *jump])

    # -- cleanup -----------------------------------------------------------------------------

    def dump(self) -> str:
        out = [sh(["ip", "-d", "link", "show"], check=False).stdout]
        out.append(sh(["iptables-save", "-t", "filter"], check=False).stdout)
        return "\n".join(out)

    def ours(self, name: str) -> bool:
        """A host object this lab made: a kumo/lab name prefix followed by the lab's token (a kumo
        running beside the lab has random uuids that merely contain the token somewhere)."""
        return re.match(rf"(kdhcp-|krouter-|ktest|kpub|kbr-|ktap-|kvx-|kvpub|kvt|kv[dnrqgh]){self.token}", name) is not None

    def close(self) -> None:
        errors: list[Exception] = []
        steps = [self.driver.remove_firewall]
        steps += [lambda k=k: self.driver.remove_dhcp(k) for k in ip.netns_list("kdhcp-") if self.ours(k)]
        steps += [lambda k=k: self.driver.remove_router(k) for k in ip.netns_list("krouter-") if self.ours(k)]
        for step in steps:
            try:
                step()
            except Exception as exc:
                errors.append(exc)
        for pidfile in (self.tmp / "state").rglob("*.pid"):  # anything remove_dhcp missed
            with contextlib.suppress(Exception):
                process.stop(pidfile, str(pidfile.parent))
        for ns in ip.netns_list("k"):
            if self.ours(ns):
                with contextlib.suppress(Exception):
                    ip.netns_delete(ns)
        for name in sorted(ip.link_names(prefix="k"), key=lambda n: not n.startswith("kv")):
            if self.ours(name):
                with contextlib.suppress(Exception):
                    ip.link_delete(name)
        left = [n for n in [*ip.link_names(prefix="k"), *ip.netns_list("k")] if self.ours(n)]
        if left:
            errors.append(RuntimeError(f"left behind: {left}"))
        if errors:
            raise errors[0]
